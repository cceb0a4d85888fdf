import type { Queryable } from '../db/database.ts';
import { startSteps, type StepStart } from '../state/steps.ts';
import { GroupCommit } from './group-commit.ts';

/** Upper bound on the step starts written by one statement. */
const MAX_BATCH = 256;

/**
 * Group commit for step starts (GroupCommit), as SuccessWriter is for successes. A burst
 * (executions claimed ahead and started together at their fire time) becomes a few statements
 * instead of one per execution: at 1,000 starts a second, a statement and its socket write each
 * cost more CPU than the rest of a start (bench/scale.ts). Each start stays fenced on this worker's
 * lease, and keeps the time it was made at as its step's start.
 */
export class StartWriter {
  private readonly group: GroupCommit<StepStart>;

  constructor(db: Queryable, workerId: string) {
    this.group = new GroupCommit(MAX_BATCH, (items) => startSteps(db, workerId, items));
  }

  /** Resolves once the start is committed: true if this worker still owned the execution. */
  start(item: StepStart): Promise<boolean> {
    return this.group.add(item);
  }
}
