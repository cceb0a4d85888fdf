import { hostname } from 'node:os';
import { Counter, Gauge } from 'prom-client';
import type { Database } from '../db/database.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { writeAudit } from '../audit/audit-log.ts';
import { PRUNE_KINDS, pruneExpired, type PruneResult, type RetentionPeriods } from './prune.ts';
import { startPeriodic } from '../periodic.ts';

// Any constant works; it only has to be the same in every vecron process (migrations use another).
const RETENTION_LOCK_KEY = 7_265_736_533;

export interface RetentionRun extends PruneResult {
  node: string;
  started_at: string;
  finished_at: string;
}

export type RetentionOutcome = { ran: true; run: RetentionRun } | { ran: false; reason: 'busy' | 'not_due' };

export interface RetentionDeps {
  db: Database;
  blobs: BlobStore;
  logger: Logger;
  metrics: Metrics;
  periods: RetentionPeriods;
  intervalSeconds: number;
  node?: string;
}

const counters = new WeakMap<Metrics, { pruned: Counter<'kind'>; last: Gauge }>();

/** The retention metrics, registered once per app registry. */
export function retentionMetrics(metrics: Metrics) {
  let m = counters.get(metrics);
  if (!m) {
    m = {
      pruned: new Counter({
        name: 'vecron_retention_pruned_total',
        help: 'Rows and files removed by retention in this process, by kind (executions, step_runs, wasm_logs, files, audit_entries)',
        labelNames: ['kind'] as const,
        registers: [metrics.registry],
      }),
      last: new Gauge({
        name: 'vecron_retention_last_run_timestamp_seconds',
        help: 'When this process last finished a retention run (Unix seconds); 0 before its first',
        registers: [metrics.registry],
      }),
    };
    for (const kind of PRUNE_KINDS) m.pruned.inc({ kind }, 0);
    counters.set(metrics, m);
  }
  return m;
}

/**
 * Runs retention once if it is this process's turn: one process at a time across the cluster
 * (a session advisory lock, released if the process dies) and, unless `force`, only when no run
 * ended within the interval (retention_runs, cluster-wide). Counts go to the metric, the log and
 * an audit entry (action `retention.prune`, actor `retention`) whenever something was removed.
 */
export async function runRetention(d: RetentionDeps, opts: { force?: boolean; actor?: string } = {}): Promise<RetentionOutcome> {
  const node = d.node ?? `${hostname()}:${process.pid}`;
  return d.db.withSession(async (s) => {
    const got = (await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK_KEY])).rows[0].ok;
    if (!got) return { ran: false, reason: 'busy' } as const;
    try {
      if (!opts.force) {
        const { rows } = await s.query<{ due: boolean }>(
          `SELECT finished_at IS NULL OR finished_at <= now() - make_interval(secs => $1) AS due FROM retention_runs WHERE id`,
          [d.intervalSeconds],
        );
        if (!rows[0]?.due) return { ran: false, reason: 'not_due' } as const;
      }
      const started = (await s.query<{ at: Date }>(`UPDATE retention_runs SET started_at = now(), node = $1 WHERE id RETURNING started_at AS at`, [node]))
        .rows[0].at;
      const result = await pruneExpired(d.db, d.blobs, d.periods);
      const finished = (
        await s.query<{ at: Date }>(`UPDATE retention_runs SET finished_at = now(), pruned = $1 WHERE id RETURNING finished_at AS at`, [
          JSON.stringify(result.counts),
        ])
      ).rows[0].at;
      const run: RetentionRun = { ...result, node, started_at: started.toISOString(), finished_at: finished.toISOString() };
      const m = retentionMetrics(d.metrics);
      for (const kind of PRUNE_KINDS) if (result.counts[kind]) m.pruned.inc({ kind }, result.counts[kind]);
      m.last.set(finished.getTime() / 1000);
      const total = PRUNE_KINDS.reduce((n, k) => n + result.counts[k], 0);
      if (total > 0) {
        d.logger.info({ pruned: result.counts, jobs: result.jobs.length, node }, 'retention: pruned expired executions and audit entries');
        // The audit trail of the deletion itself: what went, of which job, by which period.
        await writeAudit(s, {
          actorName: opts.actor ?? 'retention',
          action: 'retention.prune',
          resourceType: 'retention',
          resourceId: 'cluster',
          outcome: 'success',
          details: {
            counts: result.counts,
            jobs: result.jobs,
            global_retention_days: d.periods.executionsDays,
            audit_retention_days: d.periods.auditDays,
            audit_cutoff: result.audit_cutoff,
            node,
            started_at: run.started_at,
            finished_at: run.finished_at,
          },
        });
      } else {
        d.logger.debug({ node }, 'retention: nothing to prune');
      }
      return { ran: true, run } as const;
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_KEY]);
    }
  });
}

/**
 * The background loop of one process: every min(interval, 60 s) it asks for its turn, so the
 * cluster runs retention about once per interval, on whichever process asks first.
 */
export function startRetention(d: RetentionDeps, onError: (err: unknown) => void): () => Promise<void> {
  retentionMetrics(d.metrics);
  return startPeriodic(() => runRetention(d), Math.min(d.intervalSeconds, 60) * 1000, onError);
}
