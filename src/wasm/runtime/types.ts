/** Public types of the WASM sandbox runtime (see index.ts). */
import type { HostCallRecord, HostDispatch } from '../host/types.ts';
import type { RecordSpec, ReplayFeed, WorkerRecord, WorkerReplayReport } from './run-record.ts';

export type WasmErrorCode =
  | 'fuel_exhausted'
  | 'timeout'
  | 'memory_limit'
  | 'stack_overflow'
  | 'trap'
  | 'invalid_output'
  | 'abi_error'
  | 'import_not_allowed'
  | 'invalid_module'
  | 'unsupported_feature'
  | 'output_too_large'
  | 'worker_crashed'
  | 'cancelled';

export interface WasmLimits {
  /** Fuel for the call (≈ 1 unit per instruction). Default 1,000,000. */
  fuel?: number;
  /** Memory limit in MiB (the memory maximum is clamped to memoryMb * 16 pages). Default 64. */
  memoryMb?: number;
  /**
   * Clamp of the module's table entries, all tables together (a step's `table_limit`). Default
   * 100,000; tables count TABLE_ENTRY_BYTES (8) per entry in memoryPeakBytes.
   */
  tableLimit?: number;
  /** Wall-clock limit of the whole run. Default 30,000. */
  timeoutMs?: number;
  /** Stack size of the worker thread running the guest, in KiB. Default 1024. */
  stackKb?: number;
  /** Cap on the output (and on stdout). Default 16 MiB. */
  maxOutputBytes?: number;
  /** Fuel for module initialisation (the start function, `_initialize`). Default 20,000,000. */
  initFuel?: number;
}

export interface WasmLogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  at: string;
}

export interface WasmRunRequest {
  bytes: Uint8Array;
  functionName: string;
  input: unknown;
  limits?: WasmLimits;
  /** What `get_context` reads (the job context). Defaults to `input` when that is an object. */
  context?: Record<string, unknown>;
  /** WASI environment, e.g. JOB_ID, EXECUTION_ID. */
  env?: Record<string, string>;
  /**
   * The SHA-256 of `bytes` (64 lowercase hex digits), when the caller already knows it: a memory
   * cache hit under this hash then skips hashing the bytes. The caller vouches for it: on a hit the
   * bytes are not looked at. On a miss the bytes are hashed and a wrong hash is an `invalid_module`.
   */
  hash?: string;
  /**
   * Aborting it stops the run the way a timeout does (the interrupt flag, then the worker as a
   * backstop) and ends it with `cancelled`; a run still waiting for a worker is dropped.
   */
  signal?: AbortSignal;
  /**
   * Serves the privileged host calls that are not served in the worker (http_request, db_query,
   * files, crypto with a key): called with an AbortSignal that is aborted when the run times out,
   * is cancelled or loses its worker. Absent: every such call is answered `unavailable`.
   */
  host?: HostDispatch;
  /** Size caps of privileged host calls (defaults HOST_BOUNDS.maxHostRequestBytes / maxHostResponseBytes). */
  hostLimits?: { maxRequestBytes?: number; maxResponseBytes?: number };
  /**
   * Keep the run's complete record (issue 20: every host call's request and answer text, every WASI
   * input), within these bounds (`true`: RECORD_DEFAULTS); returned as `record`.
   */
  record?: Partial<RecordSpec> | boolean;
  /**
   * A replay: every privileged host call and WASI input is served from this record instead of live
   * (`host` is not called); what the replay saw is returned as `replay`.
   */
  replay?: ReplayFeed;
}

/** Default bounds of a run's complete record (the server's come from config). */
export const RECORD_DEFAULTS: RecordSpec = { maxBytes: 16 * 1024 * 1024, maxCalls: 10_000 };

/** The runtime's part of a run's complete record (src/wasm/replay/record.ts builds the stored record from it). */
export interface RunRecordParts extends WorkerRecord {
  /** SHA-256 of the module's bytes. */
  moduleHash: string;
  functionName: string;
  limits: ResolvedLimits & { maxHostRequestBytes: number; maxHostResponseBytes: number };
  /** The input's JSON text as the guest got it. */
  inputJson: string;
  /** Characters of the context's JSON text (what get_context's first lookup is charged by). */
  contextChars: number;
  env: Record<string, string>;
  /**
   * The output's JSON text exactly as read from the guest (absent: the run failed, or the text was
   * not kept; the record then serializes `output`). Kept so that the record is written from the
   * texts the run already has, never by serializing the parsed output again.
   */
  outputJson?: string;
  /** UTF-8 bytes of `inputJson` and of `outputJson`, when the run counted them (it encoded the one and decoded the other): the record's size is counted from them. */
  inputBytes?: number;
  outputBytes?: number;
}

export interface WasmRunStats {
  /** Fuel used by the call (and, for a WASI command, by the whole `_start`). */
  fuelConsumed: number;
  /** Fuel used by the start function and `_initialize`. */
  initFuelConsumed: number;
  /** Linear memory plus tables (8 bytes per entry) at the end of the run. */
  memoryPeakBytes: number;
  durationMs: number;
}

export type WasmRunResult = ({ ok: true; output: unknown } | { ok: false; error: { code: WasmErrorCode; message: string; stack?: string } }) &
  WasmRunStats & {
    logs: WasmLogLine[];
    contextWrites: Record<string, unknown>;
    stdout: string;
    stderr: string;
    exitCode: number | null;
    /** One record per privileged host call, in order (bounded: docs/abi.md, "the record"). */
    hostCalls: HostCallRecord[];
    /** Calls past the record's cap (HOST_BOUNDS.maxHostCallRecords): counted, not kept. */
    hostCallsDropped: number;
    /** The complete record, when the request asked for it (and the run reached a worker). */
    record?: RunRecordParts;
    /** What a replay saw, when the request was one. */
    replay?: WorkerReplayReport;
  };

export type ValTypeName = string;

export interface PreparedExport {
  name: string;
  kind: 'function' | 'table' | 'memory' | 'global';
  params?: ValTypeName[];
  results?: ValTypeName[];
}

export interface PreparedImport {
  module: string;
  name: string;
  kind: 'function' | 'table' | 'memory' | 'global';
  params?: ValTypeName[];
  results?: ValTypeName[];
}

/** Entry forms: A `(i32,i32)->i64`, B `(i32,i32)->i32`, C a WASI command (`_start`). */
export type EntryForm = 'A' | 'B' | 'C';

export interface PreparedModule {
  /** SHA-256 (hex) of the original bytes. */
  hash: string;
  /** Cache key: `${hash}:${memoryMaxPages}:${tableMaxEntries}`. */
  key: string;
  memoryMaxPages: number;
  tableMaxEntries: number;
  /** The tables after the clamp, with the exports the runtime reads their sizes from. */
  tables: { min: number; max: number; export: string }[];
  exports: PreparedExport[];
  imports: PreparedImport[];
  functionCount: number;
  /** Exported functions usable as entries, with their form. */
  entries: { name: string; form: EntryForm }[];
  /** Exports `_start` (a WASI command). */
  command: boolean;
  /** Exports `_initialize` (a reactor). */
  reactor: boolean;
  /** Had a start function (exported as `__vecron_start` after the rewrite). */
  hasStart: boolean;
  /** Imports a suspending host function (http_request, db_query, file_*): can run with JSPI. */
  suspends?: boolean;
  usesWasi: boolean;
  /** The memory after the clamp, when there is one. */
  memory?: { min: number; max: number; imported: boolean };
  originalBytes: number;
  instrumentedBytes: number;
  /** Where this preparation came from. */
  source: 'memory' | 'disk' | 'fresh';
  /** Time spent in prepare for this call. */
  prepareMs: number;
}

/** Raised by prepare (and reported by run as the error of the result). */
export class WasmModuleError extends Error {
  readonly code: WasmErrorCode;
  constructor(code: WasmErrorCode, message: string) {
    super(message);
    this.name = 'WasmModuleError';
    this.code = code;
  }
}

export const DEFAULT_LIMITS = {
  fuel: 1_000_000,
  memoryMb: 64,
  tableLimit: 100_000,
  timeoutMs: 30_000,
  stackKb: 1024,
  maxOutputBytes: 16 * 1024 * 1024,
  initFuel: 20_000_000,
} as const;

export type ResolvedLimits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

export function resolveLimits(l: WasmLimits | undefined): ResolvedLimits {
  const out = { ...DEFAULT_LIMITS } as ResolvedLimits;
  if (l) {
    for (const k of Object.keys(DEFAULT_LIMITS) as (keyof ResolvedLimits)[]) {
      const v = l[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`limit ${k} must be a non-negative number, got ${v}`);
      out[k] = v;
    }
  }
  if (out.memoryMb * 16 > 65536) out.memoryMb = 4096;
  if (out.tableLimit > 10_000_000) out.tableLimit = 10_000_000;
  return out;
}
