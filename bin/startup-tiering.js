// Issue 19's cold start: while `vecron start` starts, V8 tiers the WebAssembly functions that ran
// enough (a "budget" of executed code, --wasm-tiering-budget, 1,800,000 by default) up from Liftoff
// to TurboFan, on background threads. Opening PGlite runs enough of postgres.wasm to queue about
// 0.7-0.8 s of TurboFan compilation of an existing data directory, CPU that competes with the start
// itself for the cores (on a busy machine the process gets about one) and buys nothing before
// /health: those functions then run a few more times at Liftoff speed. So the budget is raised
// while the process starts and put back once every role has started (src/cli/commands.ts calls
// the restore function): instances made after that (the WASM worker threads of the first WASM
// step) count from the usual budget, and PGlite's functions tier up after their first, larger one.
//
// Left alone when the operator chose a tiering flag (NODE_OPTIONS or node's own arguments), or
// when VECRON_STARTUP_WASM_TIERING=normal.
import { setFlagsFromString } from 'node:v8';

/** Budget while starting: about fifty times the default. */
export const STARTUP_TIERING_BUDGET = 100_000_000;
/** V8's default (Node 20, V8 11.3), put back when no flag says otherwise. */
export const DEFAULT_TIERING_BUDGET = 1_800_000;

const TIERING_FLAG = /--(no-)?(wasm[-_]tiering[-_]budget|wasm[-_]dynamic[-_]tiering|wasm[-_]tier[-_]up|liftoff)/;

/**
 * Raises the tiering budget unless a flag or the environment says otherwise; returns the function
 * that puts it back (idempotent), or null when nothing was changed.
 */
export function deferWasmTierUp(execArgv = process.execArgv, env = process.env) {
  if (env.VECRON_STARTUP_WASM_TIERING === 'normal') return null;
  if (execArgv.some((a) => TIERING_FLAG.test(a)) || TIERING_FLAG.test(env.NODE_OPTIONS ?? '')) return null;
  setFlagsFromString(`--wasm-tiering-budget=${STARTUP_TIERING_BUDGET}`);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    setFlagsFromString(`--wasm-tiering-budget=${DEFAULT_TIERING_BUDGET}`);
  };
}
