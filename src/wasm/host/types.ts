/**
 * The contract between the sandbox and the privileged host functions (issue 15, docs/abi.md).
 *
 * A guest imports each function from `vecron` (or `env`) as `(req_ptr: i32, req_len: i32) -> i64`:
 * the request is UTF-8 JSON in guest memory, the answer is JSON written through the guest's `alloc`,
 * returned as `(ptr << 32) | len`. The answer is the result object, or `{"error": {code, message}}`:
 * a refusal or a failure is an answer the guest handles, never a trap. Only a broken ABI (pointers
 * out of bounds, no `alloc`) ends the run, with `abi_error`.
 *
 * Where a call is served:
 * - in the worker (`WorkerHostFunction`): pure work without secrets or I/O (time, most of crypto);
 * - on the main thread (`HostFunction`): everything that needs I/O, secrets or permissions. The worker
 *   blocks on the async bridge (worker.ts `callHost`) while the main thread runs it; the run's
 *   interrupt flag still stops the wait, and the call's AbortSignal aborts its I/O.
 *
 * The worker owns the run's call record (one `HostCallRecord` per call, in order); the main thread
 * tells it what to record of a bridged call (`HostAnswer.target`, `outcome`, `permission`).
 */
import type { Permission, PermissionType } from '../../modules/permissions.ts';
import type { BlobStore } from '../../storage/blob-store.ts';

/** The privileged host functions, in the order docs/abi.md lists them. */
export const PRIVILEGED_HOST_FUNCTIONS = ['http_request', 'db_query', 'file_read', 'file_write', 'file_list', 'crypto', 'time'] as const;
export type PrivilegedHostFunction = (typeof PRIVILEGED_HOST_FUNCTIONS)[number];

/** Stable codes of a refused or failed host call, as the guest reads them in `error.code`. */
export const HOST_ERROR_CODES = [
  'permission_denied',
  'egress_denied',
  'timeout',
  'too_large',
  'bad_request',
  'not_found',
  'upstream_error',
  'unavailable',
  'cancelled',
] as const;
export type HostErrorCode = (typeof HOST_ERROR_CODES)[number];

/** A refused or failed call: becomes `{"error": {code, message}}` in the guest, never a trap. */
export class HostCallError extends Error {
  constructor(
    readonly code: HostErrorCode,
    message: string,
    /** For a denial: the permission that was missing (recorded, audited, counted). */
    readonly permission?: PermissionType,
  ) {
    super(message);
    this.name = 'HostCallError';
  }
}

/** The guest's view of an answer. */
export type HostResponse = Record<string, unknown>;
export const errorResponse = (code: HostErrorCode, message: string): HostResponse => ({ error: { code, message } });

/** One host call as the run's record keeps it (bounded and masked before it is stored). */
export interface HostCallRecord {
  /** 0-based position among the run's host calls. */
  seq: number;
  function: string;
  /** What the call acted on: the URL, `datasource/table`, the file path, the crypto or time op. */
  target: string | null;
  /** ISO time the call started. */
  at: string;
  duration_us: number;
  /** Request and response JSON sizes in bytes. */
  bytes_in: number;
  bytes_out: number;
  /** `ok`, or the error code the guest got. */
  outcome: 'ok' | HostErrorCode;
  /** On a denial, the permission that was missing. */
  permission?: string;
  /** Served in the worker or bridged to the main thread. */
  served: 'worker' | 'host';
  /** The request and the response (bounded: large ones are cut and marked, see the runtime). */
  request: unknown;
  response: unknown;
}

/**
 * The JSON text the dispatch made of a response it answered (to check its size), so that the
 * runtime sends that text to the worker instead of serializing the response a second time.
 */
export const RESPONSE_JSON = new WeakMap<HostResponse, string>();

/** What the main thread answers for one bridged call. */
export interface HostAnswer {
  response: HostResponse;
  target: string | null;
  outcome: 'ok' | HostErrorCode;
  permission?: string;
}

/**
 * Serves a run's bridged host calls (one per run, given in `WasmRunRequest.host`). The signal is
 * aborted when the run times out or is cancelled: the call must stop its I/O at once.
 */
export type HostDispatch = (fn: string, request: unknown, signal: AbortSignal) => Promise<HostAnswer>;

/** Bounds on host calls (config, docs/abi.md). */
export interface HostLimits {
  /** Bytes of one request's JSON; larger is `too_large` before it is decoded. */
  maxRequestBytes: number;
  /** Bytes of one response's JSON (an HTTP body, rows, a file); larger is `too_large`. */
  maxResponseBytes: number;
  /** Rows a db_query returns at most (a request's max_rows is clamped to it). */
  maxRows: number;
  /** Time one http_request or db_query may take at most, whatever the request says. */
  maxCallMs: number;
}

/** Everything a main-thread host function may use for one run. */
export interface HostSession {
  jobId: string;
  executionId: string;
  stepId: string;
  module: { id: string; name: string; version: string };
  permissions: readonly Permission[];
  /** The job's files (`jobs/{job_id}/...`) and the areas a permission names. */
  blobs: BlobStore;
  /** A variable by name (global or job-scoped, secrets decrypted): datasources and crypto keys. */
  variable(name: string): unknown;
  limits: HostLimits;
  /** Epoch ms by which the run must be done (the step's deadline). */
  deadline: number;
  /** Called once per denial: audit row (aggregated per module and minute), metric, log. */
  onDenied(d: { function: string; permission: PermissionType; resource: string; reason: string }): void;
  /** Where a failure the guest only sees as `upstream_error` is logged in full (the step's logger). */
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** What a main-thread host function gets for one call. */
export interface HostCallContext {
  readonly session: HostSession;
  /** Aborted when the run times out or is cancelled. */
  readonly signal: AbortSignal;
  /** Sets what the call record shows as the call's target. */
  target(t: string): void;
  /**
   * Checks a permission of the module; on a refusal reports it (session.onDenied) and throws
   * HostCallError('permission_denied'). Returns the canonical resource that was checked.
   */
  require(permission: PermissionType, resource: string): string;
}

/** A host function served on the main thread (one file per function in src/wasm/host/). */
export interface HostFunction {
  name: PrivilegedHostFunction;
  call(request: Record<string, unknown>, ctx: HostCallContext): Promise<HostResponse>;
}

/** Returned by a worker-served function that cannot answer here (e.g. crypto with a named key). */
export const FORWARD: unique symbol = Symbol('forward to the main thread');

/**
 * A host function served inside the worker: no I/O, no permission checks. Its only secrets are the
 * run's `keys` (worker-keys.ts: the crypto keys the module's `secret:use` grants by a plain name,
 * resolved and checked on the main thread); anything else it FORWARDs.
 */
export interface WorkerHostFunction {
  name: PrivilegedHostFunction;
  /**
   * Answers the request, throws HostCallError, or returns FORWARD to bridge it to the main thread.
   * `keys`: name -> value of the run's worker keys (absent: none); never put in an answer, an error or a record.
   */
  serve(request: Record<string, unknown>, keys?: Readonly<Record<string, string>>): HostResponse | typeof FORWARD;
  /** What the call record shows as the target (e.g. `sha256`, `now Asia/Ho_Chi_Minh`). */
  target(request: Record<string, unknown>): string | null;
}
