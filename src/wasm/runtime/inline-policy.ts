/**
 * When a run is tried on the calling thread first (inline-run.ts), and how long it may take there.
 *
 * - Only runs that can be proven equal to the worker's: form A or B (a WASI call spills), no replay, and a
 *   stack limit at least the main thread's V8 stack (so a recursion that fits here fits in the
 *   worker, whose usable stack index.ts makes exactly stackKb).
 * - Bounded per attempt: a fuel slice (INLINE_SLICE_FUEL, at most the run's own fuel) and a
 *   deadline (INLINE_SLICE_MS, or the run's timeout if shorter), checked at every poll of the
 *   instrumented code (every pollInterval fuel units) and every host call. Instantiation is bounded
 *   by the module's size (its data segments) and initial memory, both capped here.
 * - Bounded per turn of the event loop: a caller that awaits inline runs back to back never goes
 *   through the event loop (the results are microtasks); past INLINE_TURN_MS of inline work in one
 *   turn, the next run first yields to it (setImmediate), so timers and I/O still run.
 * - Adaptive per module: a module whose attempt spilled (ran out of its slice, made a privileged
 *   host call, failed) goes straight to a worker for its next runs, a number that doubles with each
 *   further spill (INLINE_BACKOFF_MIN..MAX), and is tried inline again after them.
 */
import type { InlineSlice, SpillReason } from './inline-run.ts';
import type { EntryForm, PreparedModule, ResolvedLimits } from './types.ts';

export const INLINE_SLICE_FUEL = 1_000_000;
export const INLINE_SLICE_MS = 1;
export const INLINE_TURN_MS = 4;
const INLINE_MAX_MODULE_BYTES = 1024 * 1024;
const INLINE_MAX_INITIAL_PAGES = 256;
const INLINE_BACKOFF_MIN = 8;
const INLINE_BACKOFF_MAX = 4096;
const MAX_TRACKED = 10_000;

/** The main thread's V8 stack in KiB: `--stack-size` if given (execArgv, NODE_OPTIONS), else V8's default. */
export function mainStackKb(): number {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  let kb = 984;
  for (const a of args) {
    const m = /^--stack[-_]size=(\d+)$/.exec(a);
    if (m) kb = Number(m[1]);
  }
  return kb;
}

export interface InlineStats {
  inlineRuns: number;
  inlineSpills: Record<SpillReason, number>;
}

export class InlinePolicy {
  private readonly stackKb = mainStackKb();
  private readonly backoff = new Map<string, { skip: number; next: number }>();
  private turnMs = 0;
  private turnReset = false;
  readonly stats: InlineStats = { inlineRuns: 0, inlineSpills: { slice: 0, host_call: 0, failed: 0 } };

  constructor(
    private readonly sliceFuel = INLINE_SLICE_FUEL,
    private readonly sliceMs = INLINE_SLICE_MS,
  ) {}

  /** Whether this run is tried inline (and, for a module backing off, counts one run skipped). */
  eligible(info: Omit<PreparedModule, 'source' | 'prepareMs'>, form: EntryForm, l: ResolvedLimits, replay: boolean): boolean {
    if (form === 'C' || replay) return false;
    if (l.stackKb < this.stackKb) return false;
    if (info.instrumentedBytes > INLINE_MAX_MODULE_BYTES || (info.memory?.min ?? 0) > INLINE_MAX_INITIAL_PAGES) return false;
    const b = this.backoff.get(info.key);
    if (b !== undefined && b.skip > 0) {
      b.skip--;
      return false;
    }
    return true;
  }

  /** The attempt's bounds, from now. */
  slice(l: ResolvedLimits): InlineSlice {
    return { fuel: this.sliceFuel, deadline: performance.now() + Math.min(this.sliceMs, l.timeoutMs) };
  }

  /** True when this turn of the event loop has had its share of inline work: yield before the next. */
  mustYield(): boolean {
    return this.turnMs >= INLINE_TURN_MS;
  }

  /** After an attempt: its time counts against the turn; its outcome against the module. */
  done(key: string, ms: number, spilled: SpillReason | null): void {
    this.turnMs += ms;
    if (!this.turnReset) {
      this.turnReset = true;
      setImmediate(() => {
        this.turnMs = 0;
        this.turnReset = false;
      });
    }
    if (spilled === null) {
      this.stats.inlineRuns++;
      this.backoff.delete(key);
      return;
    }
    this.stats.inlineSpills[spilled]++;
    const b = this.backoff.get(key);
    if (b === undefined && this.backoff.size >= MAX_TRACKED) this.backoff.clear();
    const n = b === undefined ? INLINE_BACKOFF_MIN : Math.min(INLINE_BACKOFF_MAX, b.next);
    this.backoff.set(key, { skip: n, next: n * 2 });
  }
}
