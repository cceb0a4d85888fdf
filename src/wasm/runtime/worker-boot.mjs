// Entry of the runtime's worker threads: registers tsx in this thread (hooks given through execArgv
// `--import` are not in place before a worker's entry module is loaded on Node 20), then loads worker.ts.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
