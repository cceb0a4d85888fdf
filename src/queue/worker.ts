import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { QUEUE_CHANNEL } from '../db/channels.ts';
import { claimExecutions, type ClaimedExecution } from '../state/claim.ts';
import { claimLimitedExecutions, pruneExecutionStarts } from '../state/claim-limited.ts';
import { finishAttempt, handBack, type FinishResult, type Outcome } from '../state/finish.ts';
import { reapExpiredLeases } from '../state/reap.ts';
import { renewLeases } from './lease.ts';
import { SuccessWriter } from './success-writer.ts';
import { StartWriter } from './start-writer.ts';
import { LeaseTracker, OutcomeAbandoned, saveOutcome } from './outcome-retry.ts';
import { runExecution, StopRequest, type EngineEnv } from '../engine/run-execution.ts';
import { sleep } from '../engine/sleep.ts';
import { scheduleAfterFinish } from '../scheduler/sync.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { endExecutionSpan, inExecution, startExecutionSpan } from '../tracing/spans.ts';

export interface WorkerOptions {
  concurrency: number;
  leaseSeconds: number;
  pollIntervalMs: number;
  /**
   * Claim executions due within this many ms and hold them until their run_at (0: only what is
   * due). A burst of fire times on one second is then claimed before it is due, and its steps start
   * at the fire time instead of one claim after another once it has come.
   */
  claimAheadMs?: number;
  id?: string;
}

interface Running {
  exec: ClaimedExecution;
  controller: AbortController;
  done: Promise<void>;
}

/** What the steps of an execution came to, for the second phase (recording it) to write. */
type Ended = { outcome: Outcome } | null;

/** How an attempt ended, for its trace span. */
type Traced = (f: { status: string; code?: string }) => void;

/**
 * Claims executions and runs them, up to `concurrency` at once. Woken by NOTIFY when work is
 * queued, and by a polling timer as fallback (a lost notification, a retry whose time has come).
 * While it runs an execution it renews the lease; if the lease is lost (this process stalled and
 * another worker took over) it stops that execution without writing anything more.
 */
export class Worker {
  readonly id: string;
  /** Executions whose steps are running, or that are held until their run_at: what `concurrency` bounds. */
  private readonly running = new Map<string, Running>();
  /** Of those, the ones claimed ahead and not started yet: a shutdown hands them back at once. */
  private readonly held = new Set<string>();
  /**
   * Executions whose steps are done and whose outcome is being committed. They no longer hold a
   * slot (a slot waiting on the group commit would idle through one or two write round trips per
   * execution), but their lease is still renewed until the outcome is written, and stop() waits
   * for them. At most `concurrency` of them: past that, claiming waits for the writes.
   */
  private readonly finishing = new Map<string, Promise<void>>();
  private readonly successes: SuccessWriter;
  private readonly starts: StartWriter;
  /** How long each running execution's lease is known to hold: bounds the retries of its writes. */
  private readonly leases: LeaseTracker;
  private claiming = false;
  /**
   * Whether executions with limits may be queued: their claim (src/state/claim-limited.ts) runs
   * only then, so a queue without them pays nothing for it. Set by a NOTIFY of one, the poll
   * timer, a reconnect and the end of one this worker ran (its slot is free); cleared by a claim
   * that found none queued.
   */
  private limitedWork = true;
  private again = false;
  private stopped = true;
  private timers: NodeJS.Timeout[] = [];
  private unlisten: (() => Promise<void>) | null = null;
  private offReconnect: (() => void) | null = null;

  constructor(
    private readonly env: Omit<EngineEnv, 'workerId'>,
    private readonly opts: WorkerOptions,
  ) {
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.successes = new SuccessWriter(env.db, this.id);
    this.starts = new StartWriter(env.db, this.id);
    this.leases = new LeaseTracker(opts.leaseSeconds * 1000);
  }

  private get claimAheadMs(): number {
    return this.opts.claimAheadMs ?? 0;
  }

  private get db(): Database {
    return this.env.db;
  }
  private get log(): Logger {
    return this.env.logger;
  }
  private get metrics(): Metrics | undefined {
    return this.env.metrics;
  }

  get activeCount(): number {
    return this.running.size + this.finishing.size;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.unlisten = await this.db.listen(QUEUE_CHANNEL, (payload) => {
      // Work queued for later (a fire time enqueued ahead by the scheduler): wake exactly then.
      const [, at, limited] = payload.split(' ');
      if (limited === 'L') this.limitedWork = true;
      const claimAt = Number(at) - this.claimAheadMs;
      const wait = Number.isFinite(claimAt) ? claimAt - Date.now() : 0;
      if (wait > 1) this.wakeAt(claimAt);
      else this.wake();
    });
    // Notifications sent while the listener was away are lost: renew leases and poll at once.
    this.offReconnect = this.db.onReconnect(() => {
      this.limitedWork = true;
      void this.heartbeat();
      this.wake();
    });
    this.timers.push(
      setInterval(() => {
        this.limitedWork = true;
        this.wake();
      }, this.opts.pollIntervalMs),
    );
    this.timers.push(setInterval(() => void this.heartbeat(), Math.max(500, (this.opts.leaseSeconds * 1000) / 3)));
    this.timers.push(setInterval(() => void this.reap(), Math.max(500, (this.opts.leaseSeconds * 1000) / 2)));
    void this.reap();
    this.wake();
  }

  /**
   * Stops claiming, lets running executions finish for up to `graceMs`, then stops the rest and
   * hands them back to the queue (their attempt is not counted).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    this.offReconnect?.();
    this.offReconnect = null;
    await this.unlisten?.();
    this.unlisten = null;
    while (this.claiming) await new Promise((r) => setTimeout(r, 5));
    // Held executions have not started: back to the queue now, not started during the grace period.
    for (const id of this.held) this.running.get(id)?.controller.abort(new StopRequest('shutdown'));
    const all = () => Promise.all([...[...this.running.values()].map((r) => r.done), ...this.finishing.values()]);
    let graceTimer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([all().then(() => false), new Promise<boolean>((r) => (graceTimer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(graceTimer);
    if (timedOut) {
      this.log.warn({ count: this.running.size }, 'grace period over: handing unfinished executions back to the queue');
      for (const r of this.running.values()) r.controller.abort(new StopRequest('shutdown'));
      await all();
    }
  }

  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeTimerAt = Infinity;

  /** Wakes at `at` (epoch ms), keeping only the earliest pending wake-up. */
  private wakeAt(at: number): void {
    if (this.stopped || at >= this.wakeTimerAt) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimerAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = null;
        this.wakeTimerAt = Infinity;
        this.wake();
      },
      Math.max(0, at - Date.now()),
    );
  }

  /** Claims as much work as there are free slots (coalescing concurrent wake-ups). */
  wake(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    void this.claimLoop()
      .catch((err) => this.log.error({ err }, 'claiming executions failed'))
      .finally(() => {
        this.claiming = false;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async claimLoop(): Promise<void> {
    while (!this.stopped) {
      const free = Math.min(this.opts.concurrency - this.running.size, this.opts.concurrency - this.finishing.size);
      if (free <= 0) return;
      const sentAt = Date.now();
      const claimed = await claimExecutions(this.db, this.id, free, this.opts.leaseSeconds, this.claimAheadMs);
      if (claimed.length < free && this.limitedWork) {
        this.limitedWork = false; // a signal that arrives during the claim sets it again
        const limited = await claimLimitedExecutions(this.db, this.id, free - claimed.length, this.opts.leaseSeconds);
        if (limited.waiting) this.limitedWork = true;
        claimed.push(...limited.claimed);
      }
      for (const exec of claimed) {
        this.leases.renewed(exec.id, sentAt);
        this.launch(exec);
      }
      if (claimed.length < free) return;
    }
  }

  private launch(exec: ClaimedExecution): void {
    const controller = new AbortController();
    this.metrics?.executionsStarted.inc();
    this.metrics?.runningExecutions.inc();
    // The attempt's span (null with tracing off), continuing the trace stored with the trigger.
    const span = startExecutionSpan(exec, (exec.job_snapshot as JobDefinition)?.name ?? '');
    let final: { status: string; code?: string } = { status: 'abandoned' };
    const traced: Traced = (f) => (final = f);
    const done = inExecution(span, () => this.runSteps(exec, controller.signal, traced)).then(
      (ended) => {
        // The slot is free once the steps are done; the outcome is committed meanwhile.
        this.running.delete(exec.id);
        this.metrics?.runningExecutions.dec();
        const recorded = (ended ? inExecution(span, () => this.record(exec, ended.outcome, traced)) : Promise.resolve()).finally(() => {
          endExecutionSpan(span, final.status, final.code);
          // A limited execution's key is free once its outcome is committed: look again then.
          if (exec.concurrency_key !== null || exec.rate_key !== null) this.limitedWork = true;
          this.finishing.delete(exec.id);
          this.leases.forget(exec.id);
          this.wake();
        });
        if (ended) this.finishing.set(exec.id, recorded);
        this.wake();
        return recorded;
      },
      // runSteps handles its own errors; this is a last resort that keeps the slot from leaking.
      (err) => {
        endExecutionSpan(span, final.status, final.code);
        if (exec.concurrency_key !== null || exec.rate_key !== null) this.limitedWork = true;
        this.running.delete(exec.id);
        this.leases.forget(exec.id);
        this.metrics?.runningExecutions.dec();
        this.log.error({ err, execution: exec.id }, 'execution crashed');
        this.wake();
      },
    );
    this.running.set(exec.id, { exec, controller, done });
  }

  /** Runs the steps; null when nothing is left to record (lease lost, handed back). */
  private async runSteps(exec: ClaimedExecution, signal: AbortSignal, traced: Traced): Promise<Ended> {
    let outcome: Outcome;
    try {
      await this.holdUntilDue(exec, signal);
      outcome = await runExecution(exec, { ...this.env, workerId: this.id, leases: this.leases, startStep: (start) => this.starts.start(start) }, signal);
    } catch (err) {
      const stop = err instanceof StopRequest ? err : signal.reason instanceof StopRequest ? signal.reason : null;
      if (err instanceof OutcomeAbandoned) {
        // A step's result could not be saved before the lease ran out: another worker takes over.
        this.log.error({ execution: exec.id, err: err.message }, 'could not record a step result while the lease held');
        return null;
      }
      if (stop?.kind === 'lease_lost') {
        traced({ status: 'lease_lost', code: 'lease_lost' });
        this.log.warn({ execution: exec.id }, 'lease lost: another worker owns this execution now');
        return null;
      }
      if (stop?.kind === 'shutdown') {
        traced({ status: 'handed_back' });
        await saveOutcome(() => handBack(this.db, exec.id, this.id), { what: 'the hand-back', executionId: exec.id, leases: this.leases, log: this.log }).catch(
          (e) => this.log.error({ err: e }, 'hand-back failed'),
        );
        return null;
      }
      this.log.error({ err, execution: exec.id }, 'execution crashed');
      outcome = { status: 'failed', error: { code: 'internal', message: `internal error: ${(err as Error)?.message}`, retryable: true } };
    }
    return { outcome };
  }

  /**
   * An execution claimed ahead waits for its run_at here (its lease renewed like any other's); a
   * stop (shutdown, lease lost, cancelled) ends the wait with the signal's reason.
   */
  private async holdUntilDue(exec: ClaimedExecution, signal: AbortSignal): Promise<void> {
    const wait = new Date(exec.run_at).getTime() - Date.now();
    if (!(wait > 0)) return;
    this.held.add(exec.id);
    try {
      await sleep(wait, signal);
    } finally {
      this.held.delete(exec.id);
    }
  }

  /** Commits how the execution ended (and, for fixed_delay, its next fire time). */
  private async record(exec: ClaimedExecution, outcome: Outcome, traced: Traced): Promise<void> {
    const job = exec.job_snapshot as JobDefinition;
    try {
      // Successes go through the group-committing writer; failures are rare and written one by one.
      // Retried through a database outage while the lease holds (the heartbeat keeps renewing it).
      const retry = { what: 'the outcome', executionId: exec.id, leases: this.leases, log: this.log };
      const result: FinishResult = await saveOutcome(
        async (): Promise<FinishResult> =>
          outcome.status === 'succeeded'
            ? { status: 'succeeded', owned: await this.successes.record({ executionId: exec.id, ...outcome }) }
            : await finishAttempt(this.db, exec, this.id, outcome, job.retry_backoff_seconds ?? 5),
        retry,
      );
      // The status events were written with the outcome itself (src/state).
      if (!result.owned) {
        // Stalled past the lease after the last step: the new owner runs it; this result is dropped.
        this.log.warn({ execution: exec.id }, 'lease lost: another worker owns this execution now; its outcome was not written');
        return traced({ status: 'lease_lost', code: 'lease_lost' });
      }
      traced({ status: result.status, code: outcome.status === 'failed' ? outcome.error.code : undefined });
      if (result.status !== 'queued') {
        this.metrics?.executionsFinished.inc({ status: result.status });
        if (job.schedule?.type === 'fixed_delay') {
          const finishedAt = new Date();
          // Not bound by the lease (the execution is finished and unlocked): by one lease length.
          await saveOutcome(() => scheduleAfterFinish(this.db, exec.job_id, exec.job_version, finishedAt), {
            what: 'the next fire time',
            executionId: exec.id,
            log: this.log,
            until: Date.now() + this.opts.leaseSeconds * 1000,
          });
        }
      }
    } catch (err) {
      // Only once the lease is lost or ran out: another worker will pick the execution up again.
      this.log.error({ err, execution: exec.id }, 'could not record the outcome of an execution');
    }
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.running.keys(), ...this.finishing.keys()];
    if (ids.length === 0) return;
    try {
      const sentAt = Date.now();
      const owned = await renewLeases(this.db, this.id, ids, this.opts.leaseSeconds);
      for (const id of ids) {
        if (owned.has(id)) {
          this.leases.renewed(id, sentAt);
          continue;
        }
        // Another worker owns it now: stop it, and stop retrying its writes.
        this.leases.markLost(id);
        this.running.get(id)?.controller.abort(new StopRequest('lease_lost'));
      }
    } catch (err) {
      this.log.warn({ err }, 'lease renewal failed');
    }
  }

  private async reap(): Promise<void> {
    if (this.stopped) return;
    try {
      const reaped = await reapExpiredLeases(this.db);
      for (const r of reaped) {
        this.log.warn({ execution: r.id, worker: r.locked_by, status: r.status }, 'lease expired: execution taken back from its worker');
        if (r.status === 'dead_lettered') this.metrics?.executionsFinished.inc({ status: 'dead_lettered' });
      }
      if (reaped.length) this.wake();
      await pruneExecutionStarts(this.db); // expired rate tokens (src/state/claim-limited.ts)
    } catch (err) {
      this.log.warn({ err }, 'reaping expired leases failed');
    }
  }
}
