/**
 * The privileged host functions served inside the guest's worker (no I/O, no secrets, no
 * permissions: see types.ts). The worker (runtime/worker.ts) looks a call up here first; a function
 * that is not listed, or that returns FORWARD, is bridged to the main thread's HostDispatch.
 *
 * One line per function (time, crypto).
 */
import { cryptoWorker } from './crypto.ts';
import { timeWorker } from './time.ts';
import type { PrivilegedHostFunction, WorkerHostFunction } from './types.ts';

export const WORKER_HOST_FUNCTIONS: WorkerHostFunction[] = [timeWorker, cryptoWorker];

/** The worker-served function of that name, if any (`extra` first: functions a runtime was started with, see WasmRuntimeOptions.workerFunctionModules). */
export function workerHostFunction(name: PrivilegedHostFunction, extra: readonly WorkerHostFunction[] = []): WorkerHostFunction | undefined {
  return extra.find((f) => f.name === name) ?? WORKER_HOST_FUNCTIONS.find((f) => f.name === name);
}
