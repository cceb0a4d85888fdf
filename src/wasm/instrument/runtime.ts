import { OUT_OF_FUEL_IMPORT, POLL_IMPORT, RT_MODULE } from './instrument.ts';

/** Thrown by `vecron_rt.out_of_fuel` (see runtimeImports). */
export class FuelExhaustedError extends Error {
  readonly code = 'fuel_exhausted';
  constructor() {
    super('the run used up its fuel');
    this.name = 'FuelExhaustedError';
  }
}

/** Thrown by `vecron_rt.poll` when the interrupt flag is set (see runtimeImports). */
export class InterruptedError extends Error {
  readonly code = 'timeout';
  /** The flag's value (set by the host: why it interrupted). */
  readonly flag: number;
  constructor(flag: number) {
    super('the run was interrupted');
    this.flag = flag;
    this.name = 'InterruptedError';
  }
}

export interface RuntimeImportOptions {
  /**
   * The interrupt flag: an Int32Array over a SharedArrayBuffer; a non-zero value at `index` makes
   * the next poll throw. Another thread sets it with Atomics.store.
   */
  interrupt?: Int32Array;
  index?: number;
  /** Called on each poll (e.g. for counting); runs before the flag is read. */
  onPoll?: () => void;
}

/** The `vecron_rt` imports an instrumented module needs. */
export function runtimeImports(opts: RuntimeImportOptions = {}): Record<string, Record<string, () => void>> {
  const flag = opts.interrupt;
  const index = opts.index ?? 0;
  const onPoll = opts.onPoll;
  return {
    [RT_MODULE]: {
      [OUT_OF_FUEL_IMPORT]: (): void => {
        throw new FuelExhaustedError();
      },
      [POLL_IMPORT]: (): void => {
        if (onPoll) onPoll();
        if (flag) {
          const v = Atomics.load(flag, index);
          if (v !== 0) throw new InterruptedError(v);
        }
      },
    },
  };
}
