import type { Queryable } from '../db/database.ts';
import { recordSuccesses, type Success } from '../state/finish.ts';
import { GroupCommit } from './group-commit.ts';

/** Upper bound on the executions recorded by one statement. */
const MAX_BATCH = 64;

/**
 * Group commit for successful executions (GroupCommit): the executions that finish while one
 * statement is on its way go together in the next one (one transaction, one round trip and one
 * wake-up of the listeners for several executions). Each execution's write stays fenced on this
 * worker's lease.
 */
export class SuccessWriter {
  private readonly group: GroupCommit<Success>;

  constructor(db: Queryable, workerId: string) {
    this.group = new GroupCommit(MAX_BATCH, (items) => recordSuccesses(db, workerId, items));
  }

  /** Resolves once the success is committed: true if this worker still owned the execution. */
  record(item: Success): Promise<boolean> {
    return this.group.add(item);
  }
}
