/** Messages between the runtime (main thread) and its workers, and the layout of the shared control block. */
import type { WasmModuleObject } from './wasm-api.ts';
import type { EntryForm, WasmErrorCode, WasmLogLine } from './types.ts';

/** Int32 slots of the per-worker control SharedArrayBuffer. */
export const CTL_INTERRUPT = 0; // non-zero: the run must stop (set by the main thread at the timeout)
export const CTL_HOST_STATE = 1; // async bridge: 0 waiting, 1 result inline, 2 result on the port
export const CTL_HOST_LEN = 2; // byte length of the inline result
export const CTL_DOORBELL = 3; // bumped by the main thread after posting a message on the run port
export const CTL_SLOTS = 4;
/** How long a worker waits on the doorbell after a run before going back to its event loop. */
export const LINGER_MS = 5;
/** Size of the shared buffer for inline host-call results; larger ones go through the port. */
export const HOST_DATA_BYTES = 64 * 1024;

export const HOST_INLINE = 1;
export const HOST_PORT = 2;

export interface RunMessage {
  type: 'run';
  id: number;
  key: string;
  /** Sent once per worker and key. */
  module?: WasmModuleObject;
  form: EntryForm;
  functionName: string;
  inputJson: string;
  fuel: number;
  initFuel: number;
  maxOutputBytes: number;
  memoryMaxPages: number;
  /** The imported memory to create (env.memory), if any. */
  importedMemory?: { min: number; max: number };
  hasStart: boolean;
  callInitialize: boolean;
  usesWasi: boolean;
  pollInterval: number;
  /** What get_context reads, as JSON (parsed in the worker on the first get_context). */
  contextJson: string;
  env: Record<string, string>;
}

export interface EvictMessage {
  type: 'evict';
  key: string;
}

export interface HostTestMessage {
  type: 'host-test';
  id: number;
  op: string;
  payload: unknown;
}

export type ToWorker = RunMessage | EvictMessage | HostTestMessage;

export interface WorkerRunResult {
  ok: boolean;
  output?: unknown;
  error?: { code: WasmErrorCode; message: string; stack?: string };
  fuelConsumed: number;
  initFuelConsumed: number;
  memoryPeakBytes: number;
  logs: WasmLogLine[];
  contextWrites: Record<string, unknown>;
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: WorkerRunResult }
  | { type: 'host-test-result'; id: number; ok: boolean; value?: unknown; error?: string }
  | { type: 'host'; op: string; payload: unknown };
