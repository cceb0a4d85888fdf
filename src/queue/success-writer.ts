import type { Queryable } from '../db/database.ts';
import { recordSuccesses, type Success } from '../state/finish.ts';

/** Upper bound on the executions recorded by one statement. */
const MAX_BATCH = 64;

interface Waiting {
  item: Success;
  resolve: (owned: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for successful executions. While one statement is on its way to the database, the
 * executions that finish meanwhile wait and then go together in the next one. An idle worker
 * writes at once, as before; a busy one writes fewer, larger statements (one transaction, one
 * round trip and one wake-up of the listeners for several executions), and the busier it is, the
 * larger the groups. Each execution's write stays fenced on this worker's lease.
 */
export class SuccessWriter {
  private waiting: Waiting[] = [];
  private writing: Promise<void> | null = null;

  constructor(
    private readonly db: Queryable,
    private readonly workerId: string,
  ) {}

  /** Resolves once the success is committed: true if this worker still owned the execution. */
  record(item: Success): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.writing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        try {
          const owned = await recordSuccesses(
            this.db,
            this.workerId,
            batch.map((w) => w.item),
          );
          batch.forEach((w, i) => w.resolve(owned[i]));
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.writing = null;
    }
  }
}
