/**
 * How many server-side replays and shadow tests one process runs at once
 * (VECRON_WASM_SHADOW_CONCURRENCY). One more is refused at once (429), never queued: a queue of
 * shadow tests would hold requests open for minutes and could starve the job steps of the pool.
 */
export interface Gate {
  /** A release function when a place was free, else null. */
  enter(): (() => void) | null;
  readonly busy: number;
}

export function createGate(max: number): Gate {
  let busy = 0;
  return {
    enter() {
      if (busy >= max) return null;
      busy++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        busy--;
      };
    },
    get busy() {
      return busy;
    },
  };
}
