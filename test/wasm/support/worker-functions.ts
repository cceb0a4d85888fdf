// A worker-served host function for the runtime's tests (loaded through WasmRuntimeOptions.workerFunctionModules):
// `crypto` with op `echo` answers in the worker, `fail` throws a HostCallError, anything else is FORWARDed.
import { FORWARD, HostCallError, type WorkerHostFunction } from '../../../src/wasm/host/types.ts';

export const WORKER_HOST_FUNCTIONS: WorkerHostFunction[] = [
  {
    name: 'crypto',
    target: (r) => `test ${String(r.op)}`,
    serve(r) {
      if (r.op === 'echo') return { echoed: r, thread: 'worker' };
      if (r.op === 'fail') throw new HostCallError('permission_denied', 'the test function refused', 'file:read');
      return FORWARD;
    },
  },
];
