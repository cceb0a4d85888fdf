/**
 * The statuses an execution and a step can have, and the transitions between them, as data.
 * Every status change in vecron is one of the transitions below, made by one function of
 * src/state (the SQL of each takes its `from` list from here), and writes its event.
 * test/state/statuses.test.ts holds these lists against the schema's CHECK constraints.
 */

export const EXECUTION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'dead_lettered', 'cancelled', 'skipped'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

export const STEP_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'skipped'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** An execution in one of these will not change any more (except through an operator's retry). */
export const FINAL_EXECUTION_STATUSES = ['succeeded', 'failed', 'dead_lettered', 'cancelled', 'skipped'] as const satisfies readonly ExecutionStatus[];

interface Transition<S extends string> {
  /** Statuses the transition starts from; `null`: the row does not exist yet. */
  from: readonly (S | null)[];
  to: S;
  /** Who makes it. */
  by: string;
}

export const EXECUTION_TRANSITIONS = {
  /** A new execution (schedule, manual trigger, webhook). */
  enqueue: { from: [null], to: 'queued', by: 'scheduler, API' },
  /** A fire time that is recorded but not run: overlap_policy 'skip', or a misfire with misfire_policy 'skip'. */
  skip: { from: [null], to: 'skipped', by: 'scheduler' },
  claim: { from: ['queued'], to: 'running', by: 'worker' },
  succeed: { from: ['running'], to: 'succeeded', by: 'worker' },
  /** A retryable failure with attempts left: queued again with backoff. */
  retry_later: { from: ['running'], to: 'queued', by: 'worker' },
  fail: { from: ['running'], to: 'failed', by: 'worker' },
  dead_letter: { from: ['running'], to: 'dead_lettered', by: 'worker' },
  /** Graceful shutdown: back to the queue without counting the attempt. */
  hand_back: { from: ['running'], to: 'queued', by: 'worker' },
  /** A worker stopped renewing its lease: back to the queue, attempts left. */
  reap: { from: ['running'], to: 'queued', by: 'any worker (reaper)' },
  /** A worker stopped renewing its lease on the last attempt. */
  reap_dead_letter: { from: ['running'], to: 'dead_lettered', by: 'any worker (reaper)' },
  cancel: { from: ['queued', 'running'], to: 'cancelled', by: 'operator (API)' },
  /** An operator runs a failed or dead-lettered execution again, from its failed step. */
  operator_retry: { from: ['failed', 'dead_lettered'], to: 'queued', by: 'operator (API)' },
} as const satisfies Record<string, Transition<ExecutionStatus>>;
export type ExecutionTransition = keyof typeof EXECUTION_TRANSITIONS;

export const STEP_TRANSITIONS = {
  /**
   * A step starts (its row is written then). A rerun restarts it from any status: after a failure,
   * a skip or a lost worker, and after a success when a route loops back to it.
   */
  start: { from: [null, 'pending', 'running', 'succeeded', 'failed', 'skipped'], to: 'running', by: 'worker' },
  succeed: { from: ['running'], to: 'succeeded', by: 'worker' },
  fail: { from: ['running'], to: 'failed', by: 'worker, operator (cancel)' },
  /** Not run: off the route taken, after a failed step, or the execution was cancelled. */
  skip: { from: [null, 'pending'], to: 'skipped', by: 'worker, operator (cancel)' },
  /** The worker running it went away (reaper) or shut down (hand back): it runs again later. */
  reset: { from: ['running'], to: 'pending', by: 'worker, reaper' },
} as const satisfies Record<string, Transition<StepStatus>>;
export type StepTransition = keyof typeof STEP_TRANSITIONS;

/** Reasons recorded with a skipped step. */
export const SKIP_REASONS = {
  afterFailure: 'an earlier step failed',
  /** The execution failed outside any step (a routing or template error before the first step ran). */
  executionFailed: 'the execution failed before this step',
  offRoute: 'not on the route taken',
  cancelled: 'the execution was cancelled',
} as const;

/** `'a', 'b'` for SQL `IN (...)`: the statuses are fixed identifiers from the lists above, never input. */
export function sqlList(statuses: readonly (string | null)[]): string {
  const names = statuses.filter((s): s is string => s !== null);
  for (const s of names) if (!/^[a-z_]+$/.test(s)) throw new Error(`not a status: ${s}`);
  return names.map((s) => `'${s}'`).join(', ');
}

/** The `from` statuses of an execution transition, for SQL. */
export const execFrom = (t: ExecutionTransition): string => sqlList(EXECUTION_TRANSITIONS[t].from);
/** The `from` statuses of a step transition, for SQL. */
export const stepFrom = (t: StepTransition): string => sqlList(STEP_TRANSITIONS[t].from);
