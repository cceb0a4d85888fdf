/** Messages between the runtime (main thread) and its workers, and the layout of the shared control block. */
import type { WireSession, WorkerSessionReport } from '../host/worker-session.ts';
import type { WasmModuleObject } from './wasm-api.ts';
import type { EntryForm, WasmErrorCode, WasmLogLine } from './types.ts';
import type { HostCallRecord } from '../host/types.ts';
import type { RecordSpec, ReplayFeed, WorkerRecord, WorkerReplayReport } from './run-record.ts';

/** Int32 slots of the per-worker control SharedArrayBuffer. */
export const CTL_INTERRUPT = 0; // non-zero: the run must stop (set by the main thread: 1 at the timeout, 2 at a cancel)
export const CTL_HOST_STATE = 1; // async bridge: 0 waiting, 1 result inline, 2 result on the port
export const CTL_HOST_LEN = 2; // byte length of the inline result
export const CTL_DOORBELL = 3; // bumped by the main thread after posting a message on the run port
export const CTL_RESULT_STATE = 4; // fast result channel: 0 pending, 1 in the result buffer, 2 posted on the port
export const CTL_RESULT_ID = 5; // id of the run whose result is in the result buffer
export const CTL_RESULT_META_LEN = 6; // byte length of the result's JSON (everything but the output)
export const CTL_RESULT_OUT_LEN = 7; // byte length of the output's JSON text (after the meta), -1 if none
export const CTL_SLOTS = 8;
/** Size of the shared buffer for results; larger ones are posted on the port. */
export const RESULT_DATA_BYTES = 64 * 1024;
export const RESULT_PENDING = 0;
export const RESULT_INLINE = 1;
export const RESULT_POSTED = 2;
/** Default time a worker spins on the doorbell after a message before it sleeps on it (us). */
export const WORKER_SPIN_US = 200;
/** Default time the main thread spins for a run's result before it awaits it (us). */
export const RESULT_SPIN_US = 0;
/** Default time the main thread polls for a run's result from setImmediate before it awaits it (us). */
export const RESULT_POLL_US = 0;
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
  tableMaxEntries: number;
  /** Exports holding the module's tables (their sizes count in memoryPeakBytes). */
  tableExports: string[];
  /** The run's timeout: host calls stop the run once it has passed (besides the interrupt flag). */
  timeoutMs: number;
  /** The imported memory to create (env.memory), if any. */
  importedMemory?: { min: number; max: number };
  hasStart: boolean;
  callInitialize: boolean;
  usesWasi: boolean;
  pollInterval: number;
  /** What get_context reads, as JSON (parsed in the worker on the first get_context); absent: inputJson. */
  contextJson?: string;
  env: Record<string, string>;
  /** Bytes of a privileged host call's request (larger: a `too_large` answer, before it is read). */
  maxHostRequestBytes: number;
  /** Bytes of a privileged host call's answer (larger: a `too_large` answer instead). */
  maxHostResponseBytes: number;
  /** Keep the run's complete record (host-call texts, WASI inputs) within these bounds (issue 20). */
  record?: RecordSpec;
  /** Serve every host call and WASI input from this record instead of live (a replay). */
  replay?: ReplayFeed;
  /**
   * The run's worker keys (host/worker-keys.ts): secret name -> value, for crypto served in the
   * worker. Only in the worker's heap: never written to the guest, a record or a log.
   */
  keys?: Record<string, string>;
  /**
   * Run with JSPI (the module has suspending imports and the process has JSPI): the guest is called
   * through its suspender-taking wrappers, so a suspending host call does its I/O while the guest waits.
   */
  jspi?: boolean;
  /** With jspi: the run's session, for the calls the worker serves itself (host/worker-session.ts). */
  io?: WireSession;
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

/** The run `id` was stopped (timeout or cancel): a suspending host call in flight aborts its I/O now. */
export interface InterruptMessage {
  type: 'interrupt';
  id: number;
}

export type ToWorker = RunMessage | EvictMessage | HostTestMessage | InterruptMessage;

export interface WorkerRunResult {
  ok: boolean;
  output?: unknown;
  /** A large output's JSON text (validated UTF-8), parsed on the main thread (see parseOutput). */
  outputText?: string;
  error?: { code: WasmErrorCode; message: string; stack?: string };
  fuelConsumed: number;
  initFuelConsumed: number;
  memoryPeakBytes: number;
  logs: WasmLogLine[];
  contextWrites: Record<string, unknown>;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  /** The run's host-call record (absent: none). */
  hostCalls?: HostCallRecord[];
  /** Host calls past HOST_BOUNDS.maxHostCallRecords, counted, not kept. */
  hostCallsDropped?: number;
  /** The complete record, when RunMessage.record asked for it. */
  record?: WorkerRecord;
  /** What a replay saw, when RunMessage.replay was given. */
  replay?: WorkerReplayReport;
  /** UTF-8 bytes of the input's JSON text, when the run records (the record's size is counted from it). */
  inputBytes?: number;
}

/** The result of a run that never ran or whose worker was lost: no fuel, no output, only the reason. */
export function crashed(message: string): WorkerRunResult {
  return {
    ok: false,
    error: { code: 'worker_crashed', message },
    fuelConsumed: 0,
    initFuelConsumed: 0,
    memoryPeakBytes: 0,
    logs: [],
    contextWrites: {},
    stdout: '',
    stderr: '',
    exitCode: null,
  };
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: WorkerRunResult }
  | { type: 'host-test-result'; id: number; ok: boolean; value?: unknown; error?: string }
  | { type: 'host'; op: string; payload: unknown }
  /** A privileged host call bridged to the run's HostDispatch: the request's JSON text (an object, checked). */
  | { type: 'hostcall'; fn: string; text: string }
  /** A denial or a log line of a call the worker served (before the run's result, on the same port). */
  | { type: 'hostreport'; id: number; report: WorkerSessionReport };

/**
 * The main thread's reply to a `hostcall`, in the host data buffer (or on the host port): the meta
 * JSON, a newline, then the answer's JSON text exactly as the guest gets it (JSON text never
 * holds a raw newline). The meta carries what the worker records of the call.
 */
export interface HostCallReplyMeta {
  target: string | null;
  outcome: string;
  permission?: string;
  /** The answer, bounded for the record (host-record.ts), and about its JSON size. */
  rec: unknown;
  recBytes: number;
}

/**
 * Parses a run's output JSON text (in the worker, or on the main thread when the worker handed the
 * text over unparsed through the shared result buffer).
 */
export function parseOutput(text: string): { ok: true; output: unknown } | { ok: false; error: { code: WasmErrorCode; message: string } } {
  try {
    return { ok: true, output: JSON.parse(text) };
  } catch (e) {
    const head = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    return { ok: false, error: { code: 'invalid_output', message: `the output is not valid JSON (${(e as Error).message}): ${JSON.stringify(head)}` } };
  }
}
