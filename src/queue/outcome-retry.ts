import type { Logger } from '../logger.ts';
import { describeDbError, isTransientDbError } from '../db/transient.ts';

/**
 * How long this worker's leases are known to hold. The worker records the moment it sent each
 * claim and each lease renewal that the database confirmed: the lease holds until that moment
 * plus the lease length (measured from the send, so never later than the database's own expiry).
 * A renewal that found the execution owned by someone else marks it lost at once.
 */
export class LeaseTracker {
  private readonly until = new Map<string, number>();
  private readonly lostIds = new Set<string>();

  constructor(private readonly leaseMs: number) {}

  /** The database confirmed the lease (claim or renewal) of a statement sent at `sentAt`. */
  renewed(executionId: string, sentAt: number): void {
    const t = sentAt + this.leaseMs;
    if (t > (this.until.get(executionId) ?? 0)) this.until.set(executionId, t);
  }

  /** Another worker owns it now (a renewal did not find it): stop trying to write for it. */
  markLost(executionId: string): void {
    this.lostIds.add(executionId);
  }

  isLost(executionId: string): boolean {
    return this.lostIds.has(executionId);
  }

  /** Epoch ms until which the lease surely holds; 0 when unknown. */
  heldUntil(executionId: string): number {
    return this.until.get(executionId) ?? 0;
  }

  forget(executionId: string): void {
    this.until.delete(executionId);
    this.lostIds.delete(executionId);
  }
}

/** The write was given up: the lease ran out (or was lost) while the database stayed away. */
export class OutcomeAbandoned extends Error {
  constructor(
    readonly what: string,
    readonly tries: number,
    cause: unknown,
    readonly reason: 'lease_lost' | 'lease_expired' | 'deadline',
  ) {
    super(`could not save ${what} after ${tries} tries (${reason.replace('_', ' ')}): ${describeDbError(cause)}`, { cause });
  }
}

export interface OutcomeRetryOptions {
  /** What is written, for logs ("the outcome", "step 'b' succeeded"). */
  what: string;
  executionId: string;
  /** The lease that bounds the retries; without one, `until` bounds them. */
  leases?: LeaseTracker;
  /** Epoch ms: no new try after this (the lease's end when `leases` is given). */
  until?: number;
  log?: Logger;
  /** First and longest wait between tries (exponential with jitter). */
  minDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: () => void;
}

/**
 * Writes an outcome (a step's result, an execution's status) through a database outage: a
 * transient error (connection lost, server restarting) is retried with exponential backoff for as
 * long as this worker's lease holds. The worker keeps renewing the lease meanwhile (its heartbeat
 * runs on, and the first one after the database is back extends the bound here). Only when the
 * lease is lost, or has run out with the database still away, is the write given up: then, and
 * only then, may another worker take the execution over and run the step again.
 *
 * The writes are fenced on the lease (`locked_by`), so a retry of a write that did commit but whose
 * answer was lost changes nothing, and reports "not owned" (the caller treats it as done).
 */
export async function saveOutcome<T>(write: () => Promise<T>, opts: OutcomeRetryOptions): Promise<T> {
  const minDelay = opts.minDelayMs ?? 100;
  const maxDelay = opts.maxDelayMs ?? 2_000;
  const bound = () => Math.max(opts.leases ? opts.leases.heldUntil(opts.executionId) : 0, opts.until ?? 0);
  let tries = 0;
  let firstFailure = 0;
  for (;;) {
    tries++;
    try {
      const r = await write();
      if (tries > 1)
        opts.log?.info({ execution: opts.executionId, tries, afterMs: Date.now() - firstFailure }, `saved ${opts.what} after the database came back`);
      return r;
    } catch (err) {
      if (!isTransientDbError(err)) throw err;
      if (tries === 1) {
        firstFailure = Date.now();
        opts.log?.warn({ execution: opts.executionId, err: describeDbError(err) }, `could not save ${opts.what}; retrying while the lease holds`);
      }
      if (opts.leases?.isLost(opts.executionId)) throw new OutcomeAbandoned(opts.what, tries, err, 'lease_lost');
      const exp = Math.min(maxDelay, minDelay * 2 ** Math.min(tries - 1, 16));
      const wait = exp / 2 + Math.random() * (exp / 2);
      if (Date.now() + wait > bound()) throw new OutcomeAbandoned(opts.what, tries, err, opts.leases ? 'lease_expired' : 'deadline');
      opts.onRetry?.();
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
