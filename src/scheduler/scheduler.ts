import { hostname } from 'node:os';
import type { Database, Queryable } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { toJobRecord } from '../jobs/repository.ts';
import { JOBS_CHANNEL } from '../db/channels.ts';
import { type EnqueueItem, enqueueExecutions } from '../state/enqueue-many.ts';
import { planFires } from './plan.ts';
import { SYNC_BATCH, syncSchedules } from './sync.ts';
import { describeDbError, isTransientDbError } from '../db/transient.ts';
import { readFiringPause, readJobPauses } from '../maintenance/state.ts';
import { missedDuringPause } from './pause.ts';

export interface SchedulerOptions {
  /** Longest sleep between rounds; the scheduler also wakes at the next fire time and on job changes. */
  intervalMs: number;
  misfireThresholdMs: number;
  /** Fire times this close are queued ahead, to run at their exact time (workers wake by timer). */
  lookaheadMs?: number;
  /** Due schedules per transaction (default 500). */
  batchSize?: number;
  name?: string;
}

const DEFAULT_BATCH = 500;
/**
 * A notified change is looked for among the jobs updated this recently (updated_at is the start of
 * the writing transaction, the NOTIFY follows its commit). One that commits later still, or comes
 * without a NOTIFY, is found by the next full sync.
 */
const RECENT_S = 60;
/** Every job is compared with its schedule at least this often, whatever was notified. */
const FULL_SYNC_MS = 30_000;

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
  /** A job change was notified since the last sync. */
  private syncPending = false;
  /** Every job must be compared (start, reconnect: changes may have gone unnoticed). */
  private fullSyncPending = true;
  private lastFullSyncAt = 0;
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
    this.fullSyncPending = true;
    this.unlisten = await this.db.listen(JOBS_CHANNEL, () => this.jobsChanged());
    // Job changes notified while the listener was away are lost, and fire times came due: a round now.
    this.offReconnect = this.db.onReconnect(() => {
      this.fullSyncPending = true;
      this.wake();
    });
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
    await this.besideRounds;
  }

  private jobsChanged(): void {
    this.syncPending = true;
    this.wake();
  }

  private besideRounds: Promise<void> | null = null;

  /** A full sync concurrent with the rounds (the version guard in syncSchedules makes that safe). */
  private fullSyncBeside(): void {
    if (this.besideRounds) return;
    this.lastFullSyncAt = Date.now();
    this.besideRounds = syncSchedules(this.db, new Date())
      .then((n) => {
        if (n >= SYNC_BATCH) this.fullSyncPending = true;
        if (n > 0) this.wake();
      })
      .catch((err) => this.logger.warn({ err: describeDbError(err) }, 'scheduler: comparing jobs with their schedules failed'))
      .finally(() => {
        this.besideRounds = null;
      });
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
    // Start, reconnect or a full batch left: compare every job now. A job change notified: look at
    // the recently updated jobs only. And every FULL_SYNC_MS every job, beside the rounds (a job
    // written without a NOTIFY), so that its cost never delays a fire time.
    const sync = this.fullSyncPending ? 'full' : this.syncPending ? 'recent' : 'none';
    if (sync !== 'full' && Date.now() - this.lastFullSyncAt >= FULL_SYNC_MS) this.fullSyncBeside();
    void this.round({ sync })
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

  /**
   * One round: sync changed jobs, fire what is due; returns how long to sleep. `sync`: 'full'
   * compares every job with its schedule (the default); 'recent' only the jobs updated in the last
   * RECENT_S (after a notified change); 'none' skips it. Reading every job is the one part of a round
   * whose cost grows with the job count, not with the fire times due (issue 19): the wake-up loop
   * does it only at start, on reconnect, and every FULL_SYNC_MS beside the rounds.
   */
  async round(opts: { sync?: 'full' | 'recent' | 'none' } = {}): Promise<number> {
    const now = new Date();
    const sync = opts.sync ?? 'full';
    if (sync !== 'none') {
      const started = Date.now();
      this.syncPending = false;
      if (sync === 'full') this.fullSyncPending = false;
      let n: number;
      try {
        n = await syncSchedules(this.db, now, sync === 'recent' ? { recentSeconds: RECENT_S } : {});
      } catch (err) {
        // Not synced: the next round tries again.
        if (sync === 'full') this.fullSyncPending = true;
        else this.syncPending = true;
        throw err;
      }
      if (sync === 'full') this.lastFullSyncAt = started;
      // A full batch: more changed jobs wait, sync again next round (the same kind).
      if (n >= SYNC_BATCH) {
        if (sync === 'full') this.fullSyncPending = true;
        else this.syncPending = true;
      }
    }
    let fired = 0;
    do {
      fired = await this.db.transaction((tx) => this.fireDue(tx));
    } while (fired >= (this.opts.batchSize ?? DEFAULT_BATCH) && !this.stopped);
    // Maintenance mode: nothing fires until a resume, which wakes every scheduler (NOTIFY).
    if (fired < 0) return this.opts.intervalMs;
    // Wake when the earliest schedule enters the lookahead window ('skip' jobs: at their fire time).
    // Read from the schedules_due_idx order, the first rows only (not a scan of every job): the wake
    // time is a hint, as a round also runs every intervalMs.
    const { rows } = await this.db.query<{ next: Date | null }>(
      `SELECT min(CASE WHEN d.skip THEN d.next_fire_at ELSE d.next_fire_at - make_interval(secs => $1) END) AS next
       FROM (SELECT s.next_fire_at, j.definition->>'overlap_policy' = 'skip' AS skip
             FROM schedules s JOIN jobs j ON j.id = s.job_id
             WHERE s.next_fire_at IS NOT NULL AND j.enabled
               AND NOT EXISTS (SELECT 1 FROM job_pauses p WHERE p.job_id = s.job_id AND p.paused)
             ORDER BY s.next_fire_at LIMIT 100) d`,
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
      [this.opts.batchSize ?? DEFAULT_BATCH, (this.opts.lookaheadMs ?? 0) / 1000],
    );
    const now = new Date();
    const horizon = new Date(now.getTime() + (this.opts.lookaheadMs ?? 0));
    let handled = 0;
    const fires: EnqueueItem[] = [];
    const moved: { jobId: string; next: Date | null; last: Date | null }[] = [];
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
        fires.push({
          job,
          opts: {
            trigger: { type: 'schedule', time: first.toISOString() },
            fireTime: first,
            skip: { code: 'misfire', message: `not run: ${span} ${why}; misfire_policy ${def.misfire_policy})` },
          },
        });
      }
      // overlap_policy skip: a fire time is skipped while an earlier one is queued or running,
      // including one queued by this same plan (a catch-up of several fire times runs one).
      let active = def.overlap_policy === 'skip' && plan.fire.length > 0 ? await hasActiveExecution(tx, job.id) : false;
      for (const f of plan.fire) {
        fires.push({
          job,
          opts: {
            trigger: { type: 'schedule', time: f.at.toISOString(), ...(f.misfired ? { misfired: true } : {}) },
            fireTime: f.at,
            runAt: f.at > now ? f.at : undefined,
            serial: def.overlap_policy === 'queue',
            skip: active
              ? { code: 'overlap_skipped', message: 'not run: the previous execution of this job was still queued or running (overlap_policy skip)' }
              : undefined,
          },
        });
        if (def.overlap_policy === 'skip') active = true;
      }
      const lastFire = plan.fire.length ? plan.fire[plan.fire.length - 1].at : null;
      moved.push({ jobId: job.id, next: plan.next, last: lastFire });
    }
    // One statement for all fire times of the batch, one for the schedules they moved (issue 19).
    await enqueueExecutions(tx, fires);
    if (moved.length)
      await tx.query(
        `UPDATE schedules s SET next_fire_at = u.next, last_fire_at = coalesce(u.last, s.last_fire_at), updated_at = now()
         FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS u(job_id, next, last)
         WHERE s.job_id = u.job_id`,
        [moved.map((m) => m.jobId), moved.map((m) => m.next), moved.map((m) => m.last)],
      );
    return handled;
  }
}

async function hasActiveExecution(tx: Queryable, jobId: string): Promise<boolean> {
  const { rows } = await tx.query(`SELECT 1 FROM executions WHERE job_id = $1 AND status IN ('queued', 'running') LIMIT 1`, [jobId]);
  return rows.length > 0;
}
