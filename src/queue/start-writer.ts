import type { Queryable } from '../db/database.ts';
import { startSteps, type StepStart } from '../state/steps.ts';

/** Upper bound on the step starts written by one statement. */
const MAX_BATCH = 256;

interface Waiting {
  item: StepStart;
  resolve: (applied: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for step starts, as SuccessWriter is for successes: while one statement is on its
 * way, the starts made meanwhile wait and go together in the next one. An idle worker writes at
 * once; a burst (executions claimed ahead and started together at their fire time) becomes a few
 * statements instead of one per execution: at 1,000 starts a second, a statement and its socket
 * write each cost more CPU than the rest of a start (bench/scale.ts). Each start stays fenced on
 * this worker's lease, and keeps the time it was made at as its step's start.
 */
export class StartWriter {
  private waiting: Waiting[] = [];
  private writing: Promise<void> | null = null;

  constructor(
    private readonly db: Queryable,
    private readonly workerId: string,
  ) {}

  /** Resolves once the start is committed: true if this worker still owned the execution. */
  start(item: StepStart): Promise<boolean> {
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
          const applied = await startSteps(
            this.db,
            this.workerId,
            batch.map((w) => w.item),
          );
          batch.forEach((w, i) => w.resolve(applied[i]));
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.writing = null;
    }
  }
}
