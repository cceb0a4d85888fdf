/**
 * The contract of replay (issue 20): the complete record of one WASM run, what a replay of it
 * reports, and the functions and API routes that produce and serve them. Helper code (the shadow
 * test, the dashboard's replay button, docs/replay.md) is written against this file.
 *
 * A run is deterministic given what it read: the module's bytes, the function, the limits, the input
 * and context, the WASI environment, the answer of every privileged host call (http_request,
 * db_query, files, crypto, time: served in the worker or bridged), and every WASI input (clock
 * readings, random bytes, stdin). The record holds all of these, in the order the guest read them,
 * as the guest read them (JSON texts kept as text: never re-ordered by jsonb), masked like every
 * other output. A replay re-runs the module with every one of them served from the record - nothing
 * is ever sent live - and compares what came out.
 *
 * What makes a record not replayable (a replay then says `could_not_replay`, exit 2, never pretends):
 * - it was cut by its bounds (`cut` non-empty: a call past the cap, a text past the budget);
 * - masking changed something the guest read (`masked` names it): the guest would read `***`;
 * - the run ended by the wall clock (`timeout`, `cancelled`, `worker_crashed`): not a function of
 *   its inputs;
 * - its version is unknown to this build.
 */

/** Bumped when the shape changes incompatibly; a replay refuses a version it does not know. */
export const WASM_RUN_RECORD_VERSION = 1 as const;

/** When a step records its runs: every run (default), only failed runs, or never. */
export type RecordMode = 'all' | 'failed' | 'off';
export const RECORD_MODES: readonly RecordMode[] = ['all', 'failed', 'off'];

/** One privileged host call as the guest made it and as it was answered, in order. */
export interface RecordedHostCall {
  /** 0-based position among the run's host calls (the index a divergence names). */
  seq: number;
  function: string;
  /** The request's JSON text exactly as the guest wrote it (masked); '' when it was refused before it was read (too_large, not UTF-8). */
  request: string;
  /** The request's size, when `request` is '' (a refusal before decoding). */
  request_bytes?: number;
  /** The answer's JSON text exactly as the guest read it (masked): a result or `{"error": ...}`. */
  response: string;
  /** `ok`, or the error code the guest got. */
  outcome: string;
  /** Served in the worker (time, keyless crypto, a request refused before serving) or bridged to the main thread. */
  served: 'worker' | 'host';
  target: string | null;
  permission?: string;
}

/** One get_context the guest made. */
export interface RecordedContextRead {
  key: string;
  /** The answer's JSON text, or null when the key was not there (get_context answered 0). */
  value: string | null;
}

/** One WASI clock_time_get the guest made: the clock id and the nanoseconds it was answered. */
export interface RecordedClock {
  /** WASI clock id: 0 realtime, 1 monotonic, 2 process cputime, 3 thread cputime. */
  clock: number;
  /** Nanoseconds as a decimal string (a u64 does not fit a JSON number). */
  ns: string;
}

/** Every WASI input the guest read, each list in the order it was read. */
export interface RecordedWasi {
  clocks: RecordedClock[];
  /** One base64 text per random_get call (its length is the call's length). */
  random: string[];
  /**
   * Bytes of stdin the guest read. Stdin is the input's JSON text for a WASI command (`_start`) and
   * empty otherwise, so it is served from `input_json`; the count checks the replay read as much.
   */
  stdin_bytes: number;
}

/** The limits the run had (resolved: every one set). */
export interface RecordedLimits {
  fuel: number;
  init_fuel: number;
  memory_mb: number;
  table_limit: number;
  /** The run's wall-clock limit; a replay uses at least this (time is not what it reproduces). */
  timeout_ms: number;
  stack_kb: number;
  max_output_bytes: number;
  max_host_request_bytes: number;
  max_host_response_bytes: number;
}

/** What the run produced. */
export interface RecordedResult {
  ok: boolean;
  /** The output's JSON text (masked), when ok. */
  output_json?: string;
  /** The error (masked), when not ok. */
  error?: { code: string; message: string };
  fuel_consumed: number;
  init_fuel_consumed: number;
  memory_peak_bytes: number;
  exit_code: number | null;
  /** set_context writes, as a JSON text (masked). */
  context_writes_json: string;
  /** Captured stdout / stderr (masked; stdout is the output of a WASI command). */
  stdout: string;
  stderr: string;
  /** Wall time of the run (informational: never compared). */
  duration_ms: number;
}

/** A cut the record's bounds made: the run is not replayable. */
export interface RecordCut {
  /** Where: `host_calls` (calls past the cap), `host_calls[7].response`, `wasi.random`, `input_json`, ... */
  path: string;
  /** Why, in words (`above the record's budget of 16777216 bytes`, ...). */
  reason: string;
}

/** The complete record of one WASM run (GET .../wasm-record answers it; version WASM_RUN_RECORD_VERSION). */
export interface WasmRunRecord {
  version: typeof WASM_RUN_RECORD_VERSION;
  /** Where it ran (absent for a record made outside a job, e.g. by a test). */
  execution_id?: string;
  job_id?: string;
  step_id?: string;
  attempt?: number;
  /** ISO time the run started. */
  recorded_at: string;
  module: {
    /** Registry id, when the module came from the registry. */
    id: string | null;
    name: string | null;
    version: string | null;
    /** SHA-256 (64 lowercase hex) of the module's original bytes: a replay checks it. */
    hash: string;
  };
  /** The exported function called (`_start` for a WASI command). */
  function: string;
  limits: RecordedLimits;
  /**
   * The input's JSON text exactly as the guest got it (masked). The stored text embeds it as the
   * JSON value `input` instead when masking left it alone (and `result.output` likewise): no
   * escaping of the largest texts; every reader goes through parseRecordText (record.ts), which
   * gives this field back.
   */
  input_json: string;
  /**
   * Every get_context the guest made, in order: the key and the answer's JSON text (null: no such
   * key), masked. The context itself is not kept: it holds the job's variables, secrets decrypted,
   * of which a guest reads a few (a read that masking changed makes the record not replayable).
   */
  context_reads: RecordedContextRead[];
  /** Characters of the context's JSON text (get_context's first lookup is charged by it). */
  context_chars: number;
  /** The WASI environment (JOB_ID, EXECUTION_ID; masked). */
  env: Record<string, string>;
  /** Every privileged host call, in order. */
  host_calls: RecordedHostCall[];
  wasi: RecordedWasi;
  result: RecordedResult;
  /** The bounds' cuts: non-empty means not replayable. */
  cut: RecordCut[];
  /** Paths of guest-read parts that masking changed (`input_json`, `host_calls[2].response`, ...): non-empty means not replayable. */
  masked: string[];
  /** Whether a replay can reproduce the run, and why not (the first reason). */
  replayable: boolean;
  not_replayable_reason?: NotReplayableReason;
}

/** Why a replay could not be made. */
export type NotReplayableReason =
  /** The record was cut by its bounds (`$cut`). */
  | 'record_cut'
  /** Masking changed something the guest read. */
  | 'masked'
  /** The run ended by the wall clock (timeout, cancel, a lost worker). */
  | 'wall_clock'
  /** The record's version is not one this build reads. */
  | 'unsupported_version'
  /** The module's bytes do not have the record's hash (and no other build was asked for). */
  | 'module_mismatch'
  /** The module could not be prepared or run at all here (invalid, unsupported feature). */
  | 'module_unusable'
  /** No record: recording was off for this step or module, or it expired. */
  | 'not_recorded'
  /** The record could not be fetched or read (not found, malformed). */
  | 'record_unavailable';

/** Where a replay first differed from the record. */
export type DivergenceKind =
  /** The replay called another function at this index than the record holds. */
  | 'host_call_function'
  /** Same function, different request text (the record's request and the replay's). */
  | 'host_call_request'
  /** The replay made a host call past the record's last one (answered `unavailable`, never sent live). */
  | 'host_call_extra'
  /** The replay made fewer host calls than the record holds. */
  | 'host_call_missing'
  /** A WASI clock read past the record's, or of another clock id. */
  | 'wasi_clock'
  /** A random_get past the record's, or of another length. */
  | 'wasi_random'
  /** The replay read another amount of stdin. */
  | 'wasi_stdin'
  /** A get_context of another key than the record's at that index, or past its reads (answered: no such key). */
  | 'context_read'
  /** The run ended ok where the record has an error, or the other way, or with another error code. */
  | 'error'
  /** Both ok, different output JSON. */
  | 'output'
  /** Different set_context writes. */
  | 'context_writes'
  /** Different stdout (a WASI command's output is compared as `output`). */
  | 'stdout'
  /** Same everything else, different fuel (call or init). */
  | 'fuel'
  /** Same everything else, different memory peak. */
  | 'memory';

export interface Divergence {
  kind: DivergenceKind;
  /** For a host-call divergence: the call's index (RecordedHostCall.seq). For WASI: the read's index in its list. */
  call_index?: number;
  /** The function the record holds at that index (host calls), or the WASI function. */
  function?: string;
  /** What differed, in one sentence (`request differs at $.sql: "SELECT 1" -> "SELECT 2"`). */
  message: string;
  /** The record's and the replay's values (texts, numbers), bounded for display. */
  expected?: unknown;
  actual?: unknown;
}

/** What the replay run did (for the report, and for the shadow test's per-run comparison). */
export interface ReplayRunSummary {
  /** SHA-256 of the bytes that were replayed (the record's, or another build's with --module). */
  module_hash: string;
  ok: boolean;
  /** The output (parsed), when ok. */
  output?: unknown;
  error?: { code: string; message: string };
  fuel_consumed: number;
  init_fuel_consumed: number;
  memory_peak_bytes: number;
  duration_ms: number;
  /** Host calls the replay made (all answered from the record, or refused as divergences). */
  host_calls: number;
  stdout: string;
}

export type ReplayResult =
  | { status: 'reproduced'; replay: ReplayRunSummary; recorded: RecordedResult }
  | { status: 'diverged'; divergence: Divergence; replay: ReplayRunSummary; recorded: RecordedResult }
  | { status: 'could_not_replay'; reason: NotReplayableReason; message: string };

/** `wasm-cli replay`'s exit code: 0 reproduced, 1 diverged, 2 could not replay. */
export const replayExitCode = (r: ReplayResult): 0 | 1 | 2 => (r.status === 'reproduced' ? 0 : r.status === 'diverged' ? 1 : 2);

export interface ReplayOptions {
  /**
   * Replay with other bytes than the record's (`--module FILE`, a shadow test): their hash may
   * differ from the record's. Without it a hash mismatch is `could_not_replay` (module_mismatch).
   */
  otherBuild?: boolean;
  /** Wall-clock limit of the replay (default: the record's timeout_ms, at least 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The functions src/wasm/replay/ exports (index.ts):
 *
 *   replayRun(runtime: WasmRuntime, bytes: Uint8Array, record: WasmRunRecord, opts?: ReplayOptions): Promise<ReplayResult>
 *     Re-runs `bytes` with the record's function, limits, input and env; every host call, get_context
 *     and WASI input served from the record (a call not in it, or whose request differs, is a
 *     divergence, answered `{"error": {"code": "unavailable"}}`, never sent live); compares the
 *     sequence of host calls, the WASI reads, the error, output, set_context writes, stdout, fuel and
 *     memory, and reports the first difference in that order.
 *
 *   checkReplayable(record: unknown): { ok: true; record: WasmRunRecord } | { ok: false; reason: NotReplayableReason; message: string }
 *     Validates a fetched record's shape and version and whether it is replayable.
 *
 *   replayExitCode(r: ReplayResult): 0 | 1 | 2   (above)
 *
 *   formatReplay(r: ReplayResult): string
 *     The text `wasm-cli replay` prints.
 *
 * The store (src/modules/run-records.ts):
 *
 *   getRunRecord(db, blobs, { executionId, stepId?, attempt? }): Promise<WasmRunRecord | null>
 *     The record of a step's run (the latest attempt unless given; stepId optional when the execution
 *     has one wasm step).
 *   recentRunRecords(db, blobs, { jobId, stepId, limit }): Promise<WasmRunRecord[]>
 *     The last `limit` records of a job's step, newest first (for the shadow test).
 *
 * The API (src/api/routes/wasm-records.ts):
 *
 *   GET /api/v1/executions/{id}/steps/{stepId}/wasm-record[?attempt=N]
 *     -> 200 WasmRunRecord (viewer role); 404 `not_found` when the run has no record.
 *   GET /api/v1/jobs/{id}/steps/{stepId}/wasm-records?limit=N   (N 1..200, default 20)
 *     -> 200 { items: WasmRunRecord[] } newest first.
 *   The module's bytes: the existing GET /api/v1/wasm/modules/{id}/download (hash-checked by the client).
 *
 * The settings (src/config/index.ts, docs/configuration.md):
 *   VECRON_WASM_RECORD (all | failed | off, default all): the default RecordMode;
 *   a wasm step's `record` config (all | failed | off) and a module's `record_mode` override it
 *   (the stricter one wins: off > failed > all);
 *   VECRON_WASM_RECORD_MAX_BYTES: a record's bound (past it: cut, not replayable);
 *   VECRON_WASM_RECORD_INLINE_BYTES: larger records go to the blob store;
 *   VECRON_WASM_RECORD_RETENTION_DAYS: a record's expiry (expires_at; pruned by src/retention).
 */
