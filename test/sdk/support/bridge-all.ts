// Loaded by the SDK tests' "bridged" runtime (WasmRuntimeOptions.workerFunctionModules): the worker
// serves nothing itself, so every host call of the module reaches the test's dispatch, which records
// the exact requests the SDK sends (the real time and crypto would answer inside the worker).
import { FORWARD, type WorkerHostFunction } from '../../../src/wasm/host/types.ts';

export const WORKER_HOST_FUNCTIONS: WorkerHostFunction[] = [
  { name: 'time', target: () => null, serve: () => FORWARD },
  { name: 'crypto', target: () => null, serve: () => FORWARD },
];
