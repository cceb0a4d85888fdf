/**
 * Group commit: while one statement is on its way to the database, the items that come meanwhile
 * wait and then go together in the next one (at most `maxBatch` per statement). An idle caller
 * writes at once; a busy one writes fewer, larger statements, and the busier it is, the larger the
 * groups. `write` answers, in input order, whether each item was applied.
 */
export class GroupCommit<T> {
  private waiting: { item: T; resolve: (applied: boolean) => void; reject: (err: unknown) => void }[] = [];
  private writing: Promise<void> | null = null;

  constructor(
    private readonly maxBatch: number,
    private readonly write: (items: T[]) => Promise<boolean[]>,
  ) {}

  /** Resolves once the item's statement is committed: whether it was applied. */
  add(item: T): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.writing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.maxBatch);
        try {
          const applied = await this.write(batch.map((w) => w.item));
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
