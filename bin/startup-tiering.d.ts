// Types of bin/startup-tiering.js (plain JavaScript), for the tests that use it.
export const STARTUP_TIERING_BUDGET: number;
export const DEFAULT_TIERING_BUDGET: number;
export function deferWasmTierUp(execArgv?: string[], env?: Record<string, string | undefined>): (() => void) | null;
