import { hostname } from 'node:os';
import type { Database, Queryable } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { toJobRecord } from '../jobs/repository.ts';
import { JOBS_CHANNEL } from '../db/channels.ts';
import { enqueueExecution } from '../state/enqueue.ts';
import { planFires } from './plan.ts';
import { syncSchedules } from './sync.ts';
import { describeDbError, isTransientDbError } from '../db/transient.ts';
import { readFiringPause, readJobPauses } from '../maintenance/state.ts';
import { missedDuringPause } from './pause.ts';

export interface SchedulerOptions {
  /** Longest sleep between rounds; the scheduler also wakes at the next fire time and on job changes. */
  intervalMs: number;
  misfireThresholdMs: number;
  /** Fire times this close are queued ahead, to run at their exact time (workers wake by timer). */
  lookaheadMs?: number;
  batchSize?: number;
  name?: string;
}

/**
 * Turns due fire times into executions. Any number of schedulers may run against one database:
 * each round locks the due schedule rows it works on (`FOR UPDATE SKIP LOCKED`, so they share the
 * work), and the unique key (job_id, fire_time) on executions makes a fire time produce exactly one
 * execution even if two schedulers ever computed the same one.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  private stopped = true;
  private unlisten: (() => Promise<void>) | null = null;
  private offReconnect: (() => void) | null = null;
  readonly name: string;

  constructor(
    private readonly db: Database,
    private readonly opts: SchedulerOptions,
    private readonly logger: Logger,
    _metrics?: Metrics, // accepted from app.ts; the scheduler records no metric of its own yet
  ) {
    this.name = opts.name ?? `${hostname()}:${process.pid}:scheduler`;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.unlisten = await this.db.listen(JOBS_CHANNEL, () => this.wake());
    // Job changes notified while the listener was away are lost, and fire times came due: a round now.
    this.offReconnect = this.db.onReconnect(() => this.wake());
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.offReconnect?.();
    this.offReconnect = null;
    await this.unlisten?.();
    this.unlisten = null;
    while (this.running) await new Promise((r) => setTimeout(r, 5));
  }

  /** Runs a round now (coalescing concurrent wake-ups). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = true;
    void this.round()
      .catch((err) => {
        // The database is away: try again every second (onReconnect wakes it as soon as it is back).
        if (isTransientDbError(err)) {
          this.logger.warn({ err: describeDbError(err) }, 'scheduler round failed: database unavailable');
          return Math.max(this.opts.intervalMs, 1000);
        }
        this.logger.error({ err }, 'scheduler round failed');
        return this.opts.intervalMs;
      })
      .then((sleepMs) => {
        this.running = false;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          return this.wake();
        }
        this.timer = setTimeout(() => this.wake(), sleepMs);
      });
  }

  /** One round: sync changed jobs, fire what is due; returns how long to sleep. */
  async round(): Promise<number> {
    const now = new Date();
    await syncSchedules(this.db, now);
    let fired = 0;
    do {
      fired = await this.db.transaction((tx) => this.fireDue(tx));
    } while (fired >= (this.opts.batchSize ?? 100) && !this.stopped);
    // Maintenance mode: nothing fires until a resume, which wakes every scheduler (NOTIFY).
    if (fired < 0) return this.opts.intervalMs;
    // Wake when the earliest schedule enters the lookahead window ('skip' jobs: at their fire time).
    const { rows } = await this.db.query<{ next: Date | null }>(
      `SELECT min(CASE WHEN j.definition->>'overlap_policy' = 'skip' THEN s.next_fire_at
                       ELSE s.next_fire_at - make_interval(secs => $1) END) AS next
       FROM schedules s JOIN jobs j ON j.id = s.job_id
       WHERE s.next_fire_at IS NOT NULL AND j.enabled
         AND NOT EXISTS (SELECT 1 FROM job_pauses p WHERE p.job_id = s.job_id AND p.paused)`,
      [(this.opts.lookaheadMs ?? 0) / 1000],
    );
    const next = rows[0]?.next;
    if (!next) return this.opts.intervalMs;
    return Math.max(0, Math.min(this.opts.intervalMs, next.getTime() - Date.now()));
  }

  /** Fires what is due; returns how many schedules it handled, or -1 while firing is paused cluster-wide. */
  private async fireDue(tx: Queryable): Promise<number> {
    const pause = await readFiringPause(tx);
    if (pause.clusterPaused) return -1;
    const { rows } = await tx.query<any>(
      `SELECT s.job_id, s.job_version, s.next_fire_at, j.*
       FROM schedules s JOIN jobs j ON j.id = s.job_id
       WHERE s.next_fire_at <= now() + make_interval(secs => $2) AND j.enabled AND s.job_version = j.version
         AND NOT EXISTS (SELECT 1 FROM job_pauses p WHERE p.job_id = s.job_id AND p.paused)
       ORDER BY s.next_fire_at
       LIMIT $1
       FOR UPDATE OF s SKIP LOCKED`,
      [this.opts.batchSize ?? 100, (this.opts.lookaheadMs ?? 0) / 1000],
    );
    const now = new Date();
    const horizon = new Date(now.getTime() + (this.opts.lookaheadMs ?? 0));
    let handled = 0;
    // Read after the rows are locked: a job pause committed meanwhile is seen here (see pause.ts).
    const jobPauses = await readJobPauses(
      tx,
      rows.map((r: any) => r.job_id),
    );
    for (const row of rows) {
      const job = toJobRecord(row);
      const def = row.definition as JobDefinition;
      if (!def.schedule) continue;
      const jobPause = jobPauses.get(job.id);
      if (jobPause?.paused) continue;
      // Fire times that came due during a pause are misfires, whatever the threshold.
      const paused = missedDuringPause(row.next_fire_at, now, [pause.clusterResumedAt, jobPause?.resumedAt ?? null]);
      // overlap_policy 'skip' decides at the fire time whether the previous run is still going,
      // so such jobs are not planned ahead.
      const ahead = def.overlap_policy !== 'skip';
      if (!ahead && row.next_fire_at > now) continue;
      handled++;
      const plan = planFires(def.schedule, row.next_fire_at, now, {
        misfirePolicy: def.misfire_policy,
        thresholdMs: paused ? Math.min(this.opts.misfireThresholdMs, paused.thresholdMs) : this.opts.misfireThresholdMs,
        anchor: row.next_fire_at,
        horizon: ahead ? horizon : now,
      });
      if (plan.missed) {
        // Missed fire times are not run (misfire_policy skip, or fire_once with a run on time), but
        // they stay visible: one skipped execution at the first of them, saying how many.
        const { first, last, count } = plan.missed;
        const span = count === 1 ? `the fire time ${first.toISOString()}` : `${count} fire times from ${first.toISOString()} to ${last.toISOString()}`;
        this.logger.warn(
          { job: job.name, dueAt: first, missed: count, policy: def.misfire_policy, paused: !!paused },
          'misfire: missed fire times were skipped',
        );
        const why = paused
          ? `came due while firing was paused (maintenance mode, resumed at ${paused.resumedAt.toISOString()}`
          : `passed more than ${this.opts.misfireThresholdMs / 1000} s ago (the scheduler was down or stalled`;
        await enqueueExecution(tx, job, {
          trigger: { type: 'schedule', time: first.toISOString() },
          fireTime: first,
          skip: {
            code: 'misfire',
            message: `not run: ${span} ${why}; misfire_policy ${def.misfire_policy})`,
          },
        });
      }
      for (const f of plan.fire) {
        const active = def.overlap_policy === 'allow' ? false : await hasActiveExecution(tx, job.id);
        await enqueueExecution(tx, job, {
          trigger: { type: 'schedule', time: f.at.toISOString(), ...(f.misfired ? { misfired: true } : {}) },
          fireTime: f.at,
          runAt: f.at > now ? f.at : undefined,
          serial: def.overlap_policy === 'queue',
          skip:
            def.overlap_policy === 'skip' && active
              ? { code: 'overlap_skipped', message: 'not run: the previous execution of this job was still queued or running (overlap_policy skip)' }
              : undefined,
        });
      }
      const lastFire = plan.fire.length ? plan.fire[plan.fire.length - 1].at : null;
      await tx.query(`UPDATE schedules SET next_fire_at = $2, last_fire_at = coalesce($3, last_fire_at), updated_at = now() WHERE job_id = $1`, [
        job.id,
        plan.next,
        lastFire,
      ]);
    }
    return handled;
  }
}

async function hasActiveExecution(tx: Queryable, jobId: string): Promise<boolean> {
  const { rows } = await tx.query(`SELECT 1 FROM executions WHERE job_id = $1 AND status IN ('queued', 'running') LIMIT 1`, [jobId]);
  return rows.length > 0;
}
