/**
 * The host functions served inside the worker (no I/O, no secrets, no permissions): the worker looks
 * a call up here first; a function not listed, or one that returns FORWARD, is bridged to the main
 * thread's dispatch (src/wasm/host/index.ts).
 */
import { cryptoWorker } from './crypto.ts';
import { timeWorker } from './time.ts';
import type { WorkerHostFunction } from './types.ts';

export const WORKER_HOST_FUNCTIONS: readonly WorkerHostFunction[] = [timeWorker, cryptoWorker];
