/**
 * SIGTERM/SIGINT handling from the first moment of the process. bin/vecron.js installs the
 * handlers before it loads anything else (src/cli/vecron.ts does, when run directly); a command
 * takes them over with onShutdownSignal(). Until one does, nothing has been started, so a signal
 * exits at once with code 0, instead of killing the process by signal while modules still load.
 */
interface SignalState {
  delegate: ((signal: NodeJS.Signals) => void) | null;
}

const KEY = Symbol.for('vecron.signals');

export function installSignalHandlers(): SignalState {
  const g = globalThis as unknown as Record<symbol, SignalState | undefined>;
  let state = g[KEY];
  if (!state) {
    const s: SignalState = { delegate: null };
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.on(sig, () => (s.delegate ? s.delegate(sig) : process.exit(0)));
    }
    g[KEY] = state = s;
  }
  return state;
}

/** Routes SIGTERM/SIGINT to `fn` from now on. */
export function onShutdownSignal(fn: (signal: NodeJS.Signals) => void): void {
  installSignalHandlers().delegate = fn;
}
