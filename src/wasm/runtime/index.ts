/**
 * The WASM sandbox runtime: prepares (validates, checks imports, instruments, compiles, caches) a
 * guest module on the main thread, and runs it in a pool of worker threads, one fresh instance per
 * run, with fuel, memory, time, stack and output limits, the vecron host functions and WASI
 * preview 1 (through @bjorn3/browser_wasi_shim, no host filesystem).
 *
 * - prepare: SHA-256 of the bytes (a run may give it as `hash`: trusted on a cache hit, checked on
 *   a miss); cache key `${hash}:${memoryMaxPages}` (memory LRU bounded by bytes, instrumented
 *   bytes + metadata on disk in `cacheDir`); `new WebAssembly.Module` once.
 * - inline first (issue 19): a run that can be proven equal to the worker's (form A/B, no WASI or
 *   privileged call on its path, a stack limit at least the main thread's) is tried on the calling thread within a fuel slice and
 *   a deadline; only a success counts, anything else is dropped and run in a worker as below
 *   (inline-run.ts, inline-policy.ts; memories reused: inline-memory.ts).
 * - run: the compiled module is posted to a worker once (workers keep a key → module map); the
 *   worker instantiates it, runs `__vecron_start` / `_initialize` with `initFuel`, writes the input
 *   JSON through `alloc`, calls the entry (form A, B or C) and reads the output with every pointer
 *   and length bounds-checked.
 * - the run hot path: the request is posted on the run port and the worker's doorbell rung; a worker
 *   spins on the doorbell for `workerSpinUs` after each message (a futex or event-loop wake-up
 *   costs tens of us on a VM) before it sleeps on it. The result comes back through a shared buffer
 *   (the output as the guest's JSON text, parsed once, on the main thread), learned with
 *   Atomics.waitAsync, optionally after a short synchronous spin (`resultSpinUs`) and/or polling
 *   from setImmediate (`resultPollUs`); results that do not fit are posted (`sharedResults: false`
 *   posts them all). Each run still gets a fresh instance, its own imports and its own limits: after
 *   a run of a module without WASI or an imported memory, the worker instantiates that module again
 *   while it waits (a spare, never used), so the next run of it skips instantiation; the host
 *   functions act on the run in progress. A run that passes the same Uint8Array again gets its
 *   SHA-256 from a memo checked by a byte comparison (see hashOf).
 * - timeout: at `timeoutMs` the main thread sets the worker's interrupt flag (the instrumented guest
 *   polls it and stops with `timeout`); if the worker has not answered 1 s later it is terminated
 *   (still `timeout`) and replaced once its thread has exited (it keeps its place in the pool until
 *   then, and never holds the process); the pool goes on serving. Every operation whose work grows
 *   with an operand, and every host call, is charged before it runs (costs.ts), so none can keep a
 *   thread long after its interrupt.
 * - the async bridge: a host function in the worker posts to the main thread and blocks on
 *   Atomics.wait; the main thread writes the JSON reply into a shared buffer (or posts it on a
 *   MessagePort when it is larger) and notifies. The privileged host functions (docs/abi.md) that are
 *   not served in the worker go through it to the run's `host` dispatch (answerHostCall), with an
 *   AbortSignal per run, aborted at the timeout, a cancel or the loss of the worker; `hostOps` and
 *   `debugHostCall` drive the bare bridge for tests.
 */
import { createHash } from 'node:crypto';
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseModule, WasmFormatError, type WasmModuleInfo } from '../binary/index.ts';
import { instrument, DEFAULT_POLL_INTERVAL, START_EXPORT, type InstrumentMeta } from '../instrument/index.ts';
import { WA, type WasmModuleObject } from './wasm-api.ts';
import { checkImports, WASI_MODULE, type AllowedImports } from './imports.ts';
import { HOST_BOUNDS } from '../instrument/costs.ts';
import { HOST_ERROR_CODES, HostCallError, RESPONSE_JSON, errorResponse, type HostAnswer, type HostDispatch, type HostErrorCode } from '../host/types.ts';
import { boundValue } from './host-record.ts';
import { workerKeysOf } from '../host/worker-keys.ts';
import { applyWorkerReport, workerSessionOf } from '../host/worker-session.ts';
import { tracingOn } from '../../tracing/state.ts';
import { recordPartsOf, type RecordSpec } from './run-record.ts';
import { runInline, Spill } from './inline-run.ts';
import { InlinePolicy, type InlineStats } from './inline-policy.ts';
import { MemoryPool, importMemoryVariant, type MemoryLimits } from './inline-memory.ts';
import {
  CTL_DOORBELL,
  CTL_HOST_LEN,
  CTL_HOST_STATE,
  CTL_INTERRUPT,
  CTL_RESULT_ID,
  CTL_RESULT_META_LEN,
  CTL_RESULT_OUT_LEN,
  CTL_RESULT_STATE,
  CTL_SLOTS,
  RESULT_DATA_BYTES,
  RESULT_INLINE,
  RESULT_PENDING,
  RESULT_SPIN_US,
  RESULT_POLL_US,
  WORKER_SPIN_US,
  HOST_DATA_BYTES,
  HOST_INLINE,
  HOST_PORT,
  crashed,
  parseOutput,
  type FromWorker,
  type HostCallReplyMeta,
  type RunMessage,
  type WorkerRunResult,
} from './protocol.ts';
import {
  DEFAULT_LIMITS,
  RECORD_DEFAULTS,
  WasmModuleError,
  resolveLimits,
  type EntryForm,
  type PreparedExport,
  type PreparedImport,
  type PreparedModule,
  type ResolvedLimits,
  type WasmErrorCode,
  type WasmRunRequest,
  type WasmRunResult,
} from './types.ts';

export * from './types.ts';
export { checkImports, WASI_PREVIEW1_FUNCTIONS, HOST_FUNCTIONS, type AllowedImports } from './imports.ts';

export interface WasmRuntimeOptions {
  /** Worker threads (default 2). */
  poolSize?: number;
  /** Directory for instrumented modules (default none: memory only). */
  cacheDir?: string | null;
  /** Bound of the in-memory cache of prepared modules (default 256 MiB). */
  cacheMaxBytes?: number;
  allowedImports?: AllowedImports;
  /** Default limits for runs that do not say (merged under each request's limits). */
  defaultLimits?: import('./types.ts').WasmLimits;
  /** Asynchronous host operations reachable through the bridge (test hook; not offered to guests yet). */
  hostOps?: Record<string, (payload: any) => Promise<any>>;
  /**
   * Modules (file URLs) each exporting `WORKER_HOST_FUNCTIONS: WorkerHostFunction[]`, loaded by every
   * worker at start: more functions served inside the worker, before the built-in ones (tests, tools).
   */
  workerFunctionModules?: string[];
  /** Fuel units between two polls of the interrupt flag (default 65536). */
  pollInterval?: number;
  /**
   * Suspend the guest during its I/O host calls with JSPI when node runs with
   * --experimental-wasm-stack-switching (default true; false: every such call blocks the guest's
   * worker on the bridge, as without the flag). See docs/operations.md.
   */
  jspi?: boolean;
  /** How long after the interrupt a run that has not stopped gets before its worker is terminated (default 1000 ms). */
  killGraceMs?: number;
  /**
   * Results through a shared buffer (learned with Atomics.waitAsync) rather than postMessage
   * (default true); results too large for the buffer are posted either way.
   */
  sharedResults?: boolean;
  /** How long a worker spins on its doorbell after a message before it sleeps, in us (default 200). */
  workerSpinUs?: number;
  /**
   * How long the main thread spins for a run's result before it awaits it, in us (max 1000). Unset:
   * automatic, a short spin only for modules whose recent runs answered within 150 us, and only while a
   * core is free (see awaitResult).
   */
  resultSpinUs?: number;
  /**
   * Then how long it polls for the result from setImmediate callbacks (the event loop keeps turning,
   * the thread does not go to sleep) before it awaits it with Atomics.waitAsync, in us (default 0, max 10000).
   */
  resultPollUs?: number;
  /**
   * Try short runs on the calling thread first (default true): a fresh instance within a slice of
   * fuel and time (inline-policy.ts); a run that does not finish in it, calls a privileged host
   * function or fails is dropped and run from the start in a worker (inline-run.ts).
   */
  inline?: boolean;
  /** The inline slice's fuel (default 1,000,000; at most the run's own) and time in ms (default 1). */
  inlineSliceFuel?: number;
  inlineSliceMs?: number;
}

interface CacheEntry {
  info: Omit<PreparedModule, 'source' | 'prepareMs'>;
  module: WasmModuleObject;
  size: number;
  /** resolveEntry's answers by function name (an EntryForm or the abi_error it raised). */
  forms?: Map<string, EntryForm | WasmModuleError>;
  /** The instrumented bytes, kept for small modules (inline runs compile a variant from them). */
  bytes?: Uint8Array;
  /** The variant whose memory is imported, for inline runs (inline-memory.ts); null: none (made on the first inline run). */
  inlineVariant?: { module: WasmModuleObject; limits: MemoryLimits } | null;
}

interface DiskMeta {
  info: Omit<PreparedModule, 'source' | 'prepareMs'>;
  instrumentedSha256: string;
  pollInterval: number;
  version: number;
}
const DISK_VERSION = 4; // 3: size-dependent instructions charged before they run, tables clamped; 4: suspending imports (JSPI)

/** A recorded run or a replay keeps its output's text (the record is written from it, a replay compares it). */
const keepsOutputText = (job: Job): boolean => job.kind === 'run' && (job.msg.record !== undefined || job.msg.replay !== undefined);

interface Job {
  kind: 'run' | 'host-test';
  id: number;
  msg: any;
  entry?: CacheEntry;
  stackKb: number;
  timeoutMs: number;
  resolve: (r: any) => void;
  timer?: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
  worker?: PoolWorker;
  /** performance.now() when it was handed to a worker (for the adaptive result spin). */
  dispatchedAt?: number;
  /** Its caller aborted it (WasmRunRequest.signal). */
  cancelled?: boolean;
  /** Serves its bridged privileged host calls (WasmRunRequest.host). */
  host?: HostDispatch;
  /** Aborted when the run ends, times out, is cancelled or loses its worker (made at its first bridged call). */
  abort?: AbortController;
}

interface PoolWorker {
  w: Worker;
  ctl: Int32Array;
  /** The host data buffer (shared with the worker): bridge replies up to its size. */
  data: Buffer;
  result: Uint8Array | null;
  hostPort: MessagePort;
  runPort: MessagePort;
  stackKb: number;
  sent: Set<string>;
  ready: boolean;
  dead: boolean;
  job: Job | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');
type WaitAsyncResult = { async: false; value: string } | { async: true; value: Promise<string> };
/** The memory maximum, in pages, that a memory limit clamps to (part of the cache key). */
const pagesOf = (l: ResolvedLimits): number => Math.min(65536, Math.max(0, Math.floor(l.memoryMb * 16)));
/** The table entries clamp (part of the cache key). */
const tablesOf = (l: ResolvedLimits): number => Math.min(10_000_000, Math.max(0, Math.floor(l.tableLimit)));
const keyOf = (hash: string, l: ResolvedLimits): string => `${hash}:${pagesOf(l)}:${tablesOf(l)}`;

/** Longest the main thread spins for a result in automatic mode (ms). */
const AUTO_SPIN_CAP_MS = 0.15;

const waitAsync = (Atomics as unknown as { waitAsync: (a: Int32Array, i: number, v: number) => WaitAsyncResult }).waitAsync;
const WORKER_URL = new URL('./worker-boot.mjs', import.meta.url);
const KILL_GRACE_MS = 1000;
const WORKER_HEAP_MB = 256;
/** What Node keeps of a worker thread's stack beyond V8's limit (kStackBufferSize, 192 KiB). */
const NODE_STACK_RESERVE_KB = 192;
const HASH_RE = /^[0-9a-f]{64}$/;
/** Hashes of module byte arrays the caller passed before (see WasmRuntime.hashOf). */
const hashMemo = new WeakMap<Uint8Array, { copy: Buffer; hash: string }>();
const HASH_MEMO_MAX_BYTES = 16 * 1024 * 1024;

function sig(params: readonly string[] = [], results: readonly string[] = []): string {
  return `(${params.join(',')})->(${results.join(',')})`;
}

function describe(info: WasmModuleInfo, meta: InstrumentMeta, hash: string, key: string, originalBytes: number, instrumentedBytes: number): CacheEntry['info'] {
  const fnType = (index: number) => info.types[info.functionTypes[index]];
  const exports: PreparedExport[] = info.exports.map((e) => {
    if (e.kind !== 'function') return { name: e.name, kind: e.kind };
    const t = fnType(e.index);
    return { name: e.name, kind: e.kind, params: [...t.params], results: [...t.results] };
  });
  const imports: PreparedImport[] = info.imports.map((i) => {
    if (i.kind !== 'function') return { module: i.module, name: i.name, kind: i.kind };
    const t = info.types[i.typeIndex ?? 0];
    return { module: i.module, name: i.name, kind: i.kind, params: [...t.params], results: [...t.results] };
  });
  const entries: { name: string; form: EntryForm }[] = [];
  for (const e of exports) {
    if (e.kind !== 'function') continue;
    const s = sig(e.params, e.results);
    if (s === '(i32,i32)->(i64)') entries.push({ name: e.name, form: 'A' });
    else if (s === '(i32,i32)->(i32)') entries.push({ name: e.name, form: 'B' });
    else if (e.name === '_start' && s === '()->()') entries.push({ name: e.name, form: 'C' });
  }
  const has = (n: string) => exports.some((e) => e.name === n && e.kind === 'function');
  return {
    hash,
    key,
    memoryMaxPages: meta.memoryMaxPages,
    tableMaxEntries: meta.tableMaxEntries,
    tables: meta.tables,
    exports,
    imports,
    functionCount: info.functionCount,
    entries,
    command: has('_start'),
    reactor: has('_initialize'),
    hasStart: meta.startExport !== undefined,
    ...(meta.jspi !== undefined ? { suspends: true } : {}),
    usesWasi: info.imports.some((i) => i.module === WASI_MODULE),
    memory: meta.memory,
    originalBytes,
    instrumentedBytes,
  };
}

function errorResult(code: WasmErrorCode, message: string, durationMs: number): WasmRunResult {
  return {
    ok: false,
    error: { code, message },
    fuelConsumed: 0,
    initFuelConsumed: 0,
    memoryPeakBytes: 0,
    durationMs,
    logs: [],
    contextWrites: {},
    stdout: '',
    stderr: '',
    exitCode: null,
    hostCalls: [],
    hostCallsDropped: 0,
  };
}

/** The bounds of a run's record: RECORD_DEFAULTS under what the request gave. */
let lastSpec: RecordSpec = RECORD_DEFAULTS;
function recordSpecOf(r: Partial<RecordSpec> | true): RecordSpec {
  if (r === true) return RECORD_DEFAULTS;
  const maxBytes = capOf(r.maxBytes, RECORD_DEFAULTS.maxBytes);
  const maxCalls = capOf(r.maxCalls, RECORD_DEFAULTS.maxCalls);
  // A step's runs ask for the same bounds: the last spec is reused while they match.
  if (lastSpec.maxBytes !== maxBytes || lastSpec.maxCalls !== maxCalls) lastSpec = { maxBytes, maxCalls };
  return lastSpec;
}

/** A size cap given by a run (a positive integer), or the default. */
const capOf = (v: number | undefined, dflt: number): number =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.min(Math.floor(v), 1024 * 1024 * 1024) : dflt;

/** Picks the entry form of a run and checks the module's ABI exports; throws `abi_error`. */
export function resolveEntry(info: CacheEntry['info'], functionName: string): EntryForm {
  const exp = info.exports.find((e) => e.name === functionName);
  const isCommand = info.command && !info.exports.some((e) => e.name === 'alloc');
  if (functionName === '_start' || (!exp && isCommand)) {
    const start = info.exports.find((e) => e.name === '_start');
    if (start?.kind !== 'function') throw new WasmModuleError('abi_error', "the module does not export the WASI command entry '_start'");
    const s = sig(start.params, start.results);
    if (s !== '()->()') throw new WasmModuleError('abi_error', `'_start' has signature ${s}; expected ()->()`);
    return 'C';
  }
  const fnNames = info.exports.filter((e) => e.kind === 'function').map((e) => e.name);
  if (!exp) {
    throw new WasmModuleError('abi_error', `the module does not export a function '${functionName}' (exported functions: ${fnNames.join(', ') || 'none'})`);
  }
  if (exp.kind !== 'function') throw new WasmModuleError('abi_error', `the export '${functionName}' is a ${exp.kind}, not a function`);
  const s = sig(exp.params, exp.results);
  let form: EntryForm;
  if (s === '(i32,i32)->(i64)') form = 'A';
  else if (s === '(i32,i32)->(i32)') form = 'B';
  else {
    throw new WasmModuleError(
      'abi_error',
      `the function '${functionName}' has signature ${s}; expected (i32,i32)->(i64) (form A) or (i32,i32)->(i32) (form B)`,
    );
  }
  const mem = info.exports.find((e) => e.name === 'memory');
  if (!mem) throw new WasmModuleError('abi_error', "the module does not export 'memory'");
  if (mem.kind !== 'memory') throw new WasmModuleError('abi_error', `the export 'memory' is a ${mem.kind}, not a memory`);
  const alloc = info.exports.find((e) => e.name === 'alloc');
  if (!alloc) throw new WasmModuleError('abi_error', "the module does not export 'alloc' (expected alloc(size: i32) -> i32)");
  if (alloc.kind !== 'function') throw new WasmModuleError('abi_error', `the export 'alloc' is a ${alloc.kind}, not a function`);
  const as = sig(alloc.params, alloc.results);
  if (as !== '(i32)->(i32)') throw new WasmModuleError('abi_error', `the function 'alloc' has signature ${as}; expected (i32)->(i32)`);
  return form;
}

export class WasmRuntime {
  private readonly poolSize: number;
  private readonly cacheDir: string | null;
  private readonly cacheMaxBytes: number;
  private readonly allowed: AllowedImports;
  private readonly hostOps: Record<string, (payload: any) => Promise<any>>;
  private readonly workerFunctionModules: string[];
  /** JSPI is on: asked for (WasmRuntimeOptions.jspi) and available in this process. */
  readonly jspi: boolean;
  private readonly pollInterval: number;
  private readonly killGraceMs: number;
  private readonly sharedResults: boolean;
  private readonly workerSpinUs: number;
  private readonly resultSpinMs: number;
  /** No resultSpinUs given: spin only for runs that usually answer within AUTO_SPIN_CAP_MS (see awaitResult). */
  private readonly resultSpinAuto: boolean;
  /** Recent dispatch-to-result time per prepared module (ms, moving average). */
  private readonly recentRunMs = new Map<string, number>();
  private readonly cores = availableParallelism();
  private spinProbe = 0;
  private readonly resultPollMs: number;
  private readonly defaults: ResolvedLimits;
  private readonly cache = new Map<string, CacheEntry>();
  private cacheBytes = 0;
  private readonly inflight = new Map<string, Promise<{ entry: CacheEntry; source: PreparedModule['source'] }>>();
  private workers: PoolWorker[] = [];
  /**
   * Terminated workers whose threads have not exited yet: they still count against the pool size,
   * so a guest that terminate() cannot stop at once never gets the pool a thread more than its size.
   */
  private readonly retiring = new Set<Worker>();
  private queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private startFailures = 0;
  private counters = { cacheHits: 0, cacheMisses: 0, diskHits: 0, compiles: 0, respawns: 0 };
  /** Inline runs (inline-run.ts); null: every run goes to a worker. */
  private readonly inline: InlinePolicy | null;
  private readonly memories = new MemoryPool();

  constructor(opts: WasmRuntimeOptions = {}) {
    this.poolSize = Math.max(1, Math.floor(opts.poolSize ?? 2));
    this.cacheDir = opts.cacheDir ?? null;
    this.cacheMaxBytes = opts.cacheMaxBytes ?? 256 * 1024 * 1024;
    this.allowed = opts.allowedImports ?? {};
    this.hostOps = opts.hostOps ?? {};
    this.workerFunctionModules = [...(opts.workerFunctionModules ?? [])];
    this.jspi = opts.jspi !== false && jspiAvailable();
    this.pollInterval = opts.pollInterval ?? DEFAULT_POLL_INTERVAL;
    this.killGraceMs = Math.max(0, opts.killGraceMs ?? KILL_GRACE_MS);
    this.sharedResults = opts.sharedResults ?? typeof waitAsync === 'function';
    this.workerSpinUs = Math.max(0, Math.min(100_000, opts.workerSpinUs ?? WORKER_SPIN_US));
    this.resultSpinAuto = opts.resultSpinUs === undefined;
    this.resultSpinMs = Math.max(0, Math.min(1000, opts.resultSpinUs ?? RESULT_SPIN_US)) / 1000;
    this.resultPollMs = Math.max(0, Math.min(10_000, opts.resultPollUs ?? RESULT_POLL_US)) / 1000;
    this.defaults = resolveLimits(opts.defaultLimits);
    this.inline = opts.inline === false ? null : new InlinePolicy(opts.inlineSliceFuel, opts.inlineSliceMs);
  }

  // ---- prepare ------------------------------------------------------------------------------

  /**
   * Validates, checks the imports, instruments and compiles a module, cached by the SHA-256 of its
   * bytes and its memory limit. Throws WasmModuleError (`invalid_module`, `unsupported_feature`,
   * `import_not_allowed`, `memory_limit`).
   */
  async prepare(bytes: Uint8Array, limits?: import('./types.ts').WasmLimits): Promise<PreparedModule> {
    const t0 = performance.now();
    const l = this.limits(limits);
    const { entry, source } = await this.prepareEntry(bytes, l);
    return { ...entry.info, source, prepareMs: performance.now() - t0 };
  }

  private limits(l: import('./types.ts').WasmLimits | undefined): ResolvedLimits {
    resolveLimits(l); // validates
    const out = { ...this.defaults, ...definedOnly(l ?? {}) } as ResolvedLimits;
    if (out.memoryMb * 16 > 65536) out.memoryMb = 4096;
    return out;
  }

  /** The memory cache hit for these bytes (synchronous: no promise hop on the hot path), if any. */
  private cached(bytes: Uint8Array, l: ResolvedLimits, vouched: string | undefined): CacheEntry | undefined {
    if (!(bytes instanceof Uint8Array)) return undefined;
    return this.hit(keyOf(vouched ?? this.hashOf(bytes), l));
  }

  /** A memory cache hit under `key` (counted, and moved to the LRU's end), if any. */
  private hit(key: string): CacheEntry | undefined {
    const entry = this.cache.get(key);
    if (entry) {
      this.counters.cacheHits++;
      this.cache.delete(key); // LRU: move to the end
      this.cache.set(key, entry);
    }
    return entry;
  }

  /**
   * SHA-256 of the bytes, hex. A caller that runs the same Uint8Array again gets the hash from a
   * memo kept with that array (weakly), after a byte comparison with a copy taken when it was
   * hashed (far cheaper than hashing again; a changed array is hashed again).
   */
  private hashOf(bytes: Uint8Array): string {
    const memo = hashMemo.get(bytes);
    if (memo !== undefined && memo.copy.length === bytes.byteLength && memo.copy.equals(bytes)) return memo.hash;
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (bytes.byteLength <= HASH_MEMO_MAX_BYTES) hashMemo.set(bytes, { copy: Buffer.from(bytes), hash });
    return hash;
  }

  private async prepareEntry(bytes: Uint8Array, l: ResolvedLimits, vouched?: string): Promise<{ entry: CacheEntry; source: PreparedModule['source'] }> {
    if (!(bytes instanceof Uint8Array)) throw new WasmModuleError('invalid_module', 'the module must be a Uint8Array');
    if (vouched !== undefined && (typeof vouched !== 'string' || !HASH_RE.test(vouched))) {
      throw new WasmModuleError('invalid_module', 'the hash must be the SHA-256 of the bytes, as 64 lowercase hex digits');
    }
    const pages = pagesOf(l);
    const tables = tablesOf(l);
    const hash = this.hashOf(bytes);
    if (vouched !== undefined && vouched !== hash) {
      throw new WasmModuleError('invalid_module', `the given hash ${vouched} is not the SHA-256 of the bytes (${hash})`);
    }
    const key = keyOf(hash, l);
    const hit = this.hit(key);
    if (hit) return { entry: hit, source: 'memory' };
    const pending = this.inflight.get(key);
    if (pending) {
      this.counters.cacheHits++;
      return pending;
    }
    this.counters.cacheMisses++;
    const p = this.build(bytes, hash, key, pages, tables);
    this.inflight.set(key, p);
    try {
      const r = await p;
      this.insert(key, r.entry);
      return r;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async build(
    bytes: Uint8Array,
    hash: string,
    key: string,
    pages: number,
    tables: number,
  ): Promise<{ entry: CacheEntry; source: PreparedModule['source'] }> {
    const fromDisk = await this.readDisk(hash, pages, tables);
    if (fromDisk) {
      // The imports are checked against this runtime's policy, which may differ from the writer's.
      try {
        checkImports(parseModule(bytes, { walkCode: false }), this.allowed);
      } catch (e) {
        throw toModuleError(e);
      }
      this.counters.diskHits++;
      return { entry: fromDisk, source: 'disk' };
    }
    let info: WasmModuleInfo;
    let out: ReturnType<typeof instrument>;
    try {
      // instrument() decodes and validates every body (the checks of parseModule's walk) before it
      // rewrites anything; the import policy is checked right after, so code errors come first.
      out = instrument(bytes, {
        memoryMaxPages: pages,
        tableMaxEntries: tables,
        pollInterval: this.pollInterval,
        trackGrowFailures: true,
        afterValidate: (i) => checkImports(i, this.allowed),
      });
      info = out.info;
    } catch (e) {
      throw toModuleError(e);
    }
    const module = this.compileMetered(out.bytes, bytes, info.importedFunctionCount);
    const desc = describe(info, out.meta, hash, key, bytes.byteLength, out.bytes.byteLength);
    const entry: CacheEntry = { info: desc, module, size: out.bytes.byteLength * 3 + 4096, ...keptBytes(out.bytes) };
    await this.writeDisk(hash, pages, tables, desc, out.bytes);
    return { entry, source: 'fresh' };
  }

  /**
   * Compiles the rewritten module. If the engine refuses it, the message must be about the user's
   * module: the uploaded bytes are compiled as they are, and their error (offsets into the upload)
   * is the answer; if they compile, the refusal came from the rewrite, and it is reported with the
   * user's function index and without offsets into the rewritten bytes.
   */
  private compileMetered(metered: Uint8Array, original: Uint8Array, importedFunctions: number): WasmModuleObject {
    try {
      this.counters.compiles++;
      return new WA.Module(metered);
    } catch (e) {
      const msg = (e as Error).message;
      try {
        new WA.Module(original);
      } catch (orig) {
        throw new WasmModuleError(
          'invalid_module',
          `the module does not compile: ${(orig as Error).message.replace(/^WebAssembly\.Module\(\): /, '')} (byte offsets into the uploaded module)`,
        );
      }
      const own = msg
        .replace(/^WebAssembly\.Module\(\): /, '')
        .replace(/ @\+\d+/g, '')
        .replace(/function #(\d+)/g, (_m, n: string) => `function #${Number(n) >= importedFunctions + 2 ? Number(n) - 2 : n}`);
      throw new WasmModuleError('unsupported_feature', `the module compiles as uploaded, but the engine refuses it once fuel metering is added: ${own}`);
    }
  }

  private compile(bytes: Uint8Array): WasmModuleObject {
    try {
      this.counters.compiles++;
      return new WA.Module(bytes);
    } catch (e) {
      throw new WasmModuleError('invalid_module', `the module does not compile: ${(e as Error).message}`);
    }
  }

  private insert(key: string, entry: CacheEntry): void {
    if (this.cache.has(key)) return;
    this.cache.set(key, entry);
    this.cacheBytes += entry.size;
    for (const [k, e] of this.cache) {
      if (this.cacheBytes <= this.cacheMaxBytes || k === key) break;
      this.cache.delete(k);
      this.cacheBytes -= e.size;
      this.memories.drop(k);
      for (const w of this.workers) {
        if (w.sent.delete(k)) this.send(w, { type: 'evict', key: k });
      }
    }
  }

  private diskPath(hash: string, pages: number, tables: number): string {
    return join(this.cacheDir!, `${hash}-${pages}-t${tables}-p${this.pollInterval}`);
  }

  private async readDisk(hash: string, pages: number, tables: number): Promise<CacheEntry | null> {
    if (!this.cacheDir) return null;
    const base = this.diskPath(hash, pages, tables);
    let meta: DiskMeta;
    let bytes: Uint8Array;
    try {
      meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as DiskMeta;
      bytes = new Uint8Array(await readFile(`${base}.wasm`));
    } catch {
      return null;
    }
    if (meta.version !== DISK_VERSION || meta.pollInterval !== this.pollInterval) return null;
    if (createHash('sha256').update(bytes).digest('hex') !== meta.instrumentedSha256) return null;
    let module: WasmModuleObject;
    try {
      module = this.compile(bytes);
    } catch {
      return null;
    }
    return { info: meta.info, module, size: bytes.byteLength * 3 + 4096, ...keptBytes(bytes) };
  }

  private async writeDisk(hash: string, pages: number, tables: number, info: CacheEntry['info'], bytes: Uint8Array): Promise<void> {
    if (!this.cacheDir) return;
    try {
      await mkdir(this.cacheDir, { recursive: true });
      const base = this.diskPath(hash, pages, tables);
      const tmp = `${base}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(`${tmp}.wasm`, bytes);
      await rename(`${tmp}.wasm`, `${base}.wasm`);
      const meta: DiskMeta = {
        info,
        instrumentedSha256: createHash('sha256').update(bytes).digest('hex'),
        pollInterval: this.pollInterval,
        version: DISK_VERSION,
      };
      await writeFile(`${tmp}.json`, JSON.stringify(meta));
      await rename(`${tmp}.json`, `${base}.json`);
    } catch {
      // The disk cache is an optimisation only.
    }
  }

  // ---- run ----------------------------------------------------------------------------------

  async run(req: WasmRunRequest): Promise<WasmRunResult> {
    const t0 = performance.now();
    const elapsed = () => performance.now() - t0;
    if (this.closed) return errorResult('worker_crashed', 'the runtime is closed', elapsed());
    let l: ResolvedLimits;
    try {
      l = this.limits(req.limits);
    } catch (e) {
      return errorResult('abi_error', (e as Error).message, elapsed());
    }
    let entry: CacheEntry;
    let form: EntryForm;
    let inputJson: string;
    try {
      const vouched = req.hash;
      if (vouched !== undefined && (typeof vouched !== 'string' || !HASH_RE.test(vouched))) {
        throw new WasmModuleError('invalid_module', 'the hash must be the SHA-256 of the bytes, as 64 lowercase hex digits');
      }
      entry = this.cached(req.bytes, l, vouched) ?? (await this.prepareEntry(req.bytes, l, vouched)).entry;
      let forms = entry.forms;
      if (!forms) forms = entry.forms = new Map();
      let f = forms.get(req.functionName);
      if (f === undefined) {
        try {
          f = resolveEntry(entry.info, req.functionName);
        } catch (e) {
          f = toModuleError(e);
        }
        if (typeof req.functionName === 'string' && forms.size < 1024) forms.set(req.functionName, f);
      }
      if (f instanceof WasmModuleError) throw f;
      form = f;
    } catch (e) {
      const me = toModuleError(e);
      return errorResult(me.code, me.message, elapsed());
    }
    try {
      inputJson = JSON.stringify(req.input === undefined ? null : req.input);
    } catch (e) {
      return errorResult('abi_error', `the input is not JSON-serializable: ${(e as Error).message}`, elapsed());
    }
    const info = entry.info;
    let contextJson: string;
    try {
      contextJson =
        req.context !== undefined && req.context !== null
          ? JSON.stringify(req.context)
          : req.input !== null && typeof req.input === 'object'
            ? inputJson
            : '{}';
    } catch (e) {
      return errorResult('abi_error', `the context is not JSON-serializable: ${(e as Error).message}`, elapsed());
    }
    const msg: Omit<RunMessage, 'id' | 'module'> = {
      type: 'run',
      key: info.key,
      form,
      functionName: req.functionName,
      inputJson,
      fuel: Math.floor(l.fuel),
      initFuel: Math.floor(l.initFuel),
      maxOutputBytes: Math.floor(l.maxOutputBytes),
      memoryMaxPages: info.memoryMaxPages,
      tableMaxEntries: info.tableMaxEntries,
      tableExports: info.tables.map((t) => t.export),
      timeoutMs: l.timeoutMs,
      importedMemory: info.memory?.imported ? { min: info.memory.min, max: info.memory.max } : undefined,
      hasStart: info.hasStart,
      callInitialize: info.reactor && form !== 'C',
      usesWasi: info.usesWasi,
      pollInterval: this.pollInterval,
      contextJson: contextJson === inputJson ? undefined : contextJson, // not sent twice
      env: { ...(req.env ?? {}) },
      maxHostRequestBytes: capOf(req.hostLimits?.maxRequestBytes, HOST_BOUNDS.maxHostRequestBytes),
      maxHostResponseBytes: capOf(req.hostLimits?.maxResponseBytes, HOST_BOUNDS.maxHostResponseBytes),
    };
    // Optional fields set only when present (no spreads: this runs once per run).
    if (req.replay !== undefined) msg.replay = req.replay;
    else {
      if (req.record) msg.record = recordSpecOf(req.record);
      const keys = workerKeysOf(req.host);
      if (keys !== undefined) msg.keys = keys;
      // A suspended guest runs on a stack of V8's own (--wasm-stack-switching-stack-size, one size for
      // the process): only a run whose stack limit is that size may use it, so that the limit holds.
      if (this.jspi && info.suspends === true && l.stackKb === jspiStackKb()) {
        msg.jspi = true;
        // The worker serves http_request and db_query itself over this (host/worker-session.ts);
        // not while tracing, whose spans and traceparent headers the main thread's dispatch makes.
        const side = workerSessionOf(req.host);
        if (side !== undefined && !tracingOn()) msg.io = side.wire();
      }
    }
    if (req.signal?.aborted) return errorResult('cancelled', 'the run was cancelled before it started', elapsed());
    let r: WorkerRunResult | null = null;
    if (this.inline?.eligible(info, form, l, req.replay !== undefined)) {
      if (this.inline.mustYield()) await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.closed && !req.signal?.aborted) r = this.runHere(entry, msg, l);
    }
    r ??= await this.runInWorker(req, msg, entry, l);
    return this.resultOf(r, msg, info.hash, l, elapsed());
  }

  /**
   * The run's result from what the worker (or the inline run) gave back: its fields copied one by
   * one (no spread and no rest pattern: this runs once per run), with the record's parts when the
   * run recorded. The guest's output text (kept only when a record or a replay needs it) is not part
   * of the result.
   */
  private resultOf(r: WorkerRunResult, msg: Omit<RunMessage, 'id' | 'module'>, moduleHash: string, l: ResolvedLimits, durationMs: number): WasmRunResult {
    const { outputJson, outputBytes } = r as WorkerRunResult & { outputJson?: string; outputBytes?: number };
    const hostCalls = r.hostCalls ?? [];
    const hostCallsDropped = r.hostCallsDropped ?? 0;
    // Two literals, one per outcome, so that every result of a kind has one shape.
    const res: WasmRunResult = r.ok
      ? {
          ok: true,
          output: r.output,
          fuelConsumed: r.fuelConsumed,
          initFuelConsumed: r.initFuelConsumed,
          memoryPeakBytes: r.memoryPeakBytes,
          durationMs,
          logs: r.logs,
          contextWrites: r.contextWrites,
          stdout: r.stdout,
          stderr: r.stderr,
          exitCode: r.exitCode,
          hostCalls,
          hostCallsDropped,
        }
      : {
          ok: false,
          error: r.error!,
          fuelConsumed: r.fuelConsumed,
          initFuelConsumed: r.initFuelConsumed,
          memoryPeakBytes: r.memoryPeakBytes,
          durationMs,
          logs: r.logs,
          contextWrites: r.contextWrites,
          stdout: r.stdout,
          stderr: r.stderr,
          exitCode: r.exitCode,
          hostCalls,
          hostCallsDropped,
        };
    if (r.replay !== undefined) {
      res.replay = r.replay;
      if (r.ok && outputJson !== undefined) r.replay.outputJson = outputJson;
    }
    if (msg.record !== undefined) {
      res.record = recordPartsOf({
        worker: r.record,
        moduleHash,
        functionName: msg.functionName,
        limits: l,
        maxHostRequestBytes: msg.maxHostRequestBytes,
        maxHostResponseBytes: msg.maxHostResponseBytes,
        inputJson: msg.inputJson,
        contextJson: msg.contextJson,
        env: msg.env,
        outputJson: r.ok ? outputJson : undefined,
        inputBytes: r.inputBytes,
        outputBytes: r.ok ? outputBytes : undefined,
      });
    }
    return res;
  }

  /**
   * The run on this thread (inline-run.ts), or null when it spilled: then nothing it did is kept
   * and the caller sends the request to a worker as if this had never been tried.
   */
  private runHere(entry: CacheEntry, msg: Omit<RunMessage, 'id' | 'module'>, l: ResolvedLimits): WorkerRunResult | null {
    const policy = this.inline!;
    const t0 = performance.now();
    if (entry.inlineVariant === undefined) entry.inlineVariant = inlineVariantOf(entry);
    const v = entry.inlineVariant;
    const memory = v !== null ? this.memories.acquire(msg.key, v.limits) : undefined;
    try {
      const r = runInline(v !== null ? v.module : entry.module, msg as RunMessage, policy.slice(l), memory);
      policy.done(msg.key, performance.now() - t0, null);
      return r;
    } catch (e) {
      policy.done(msg.key, performance.now() - t0, e instanceof Spill ? e.reason : 'failed');
      return null;
    } finally {
      if (memory !== undefined) this.memories.release(msg.key, memory, v!.limits);
    }
  }

  private async runInWorker(req: WasmRunRequest, msg: Omit<RunMessage, 'id' | 'module'>, entry: CacheEntry, l: ResolvedLimits): Promise<WorkerRunResult> {
    let onAbort: (() => void) | undefined;
    return new Promise<WorkerRunResult>((resolve) => {
      // A replay never reaches a live host function (every call is answered from its record in the worker).
      const host = req.replay === undefined ? req.host : undefined;
      const job: Job = { kind: 'run', id: this.nextId++, msg, entry, stackKb: l.stackKb, timeoutMs: l.timeoutMs, resolve, host };
      if (req.signal) {
        onAbort = () => this.cancel(job);
        req.signal.addEventListener('abort', onAbort, { once: true });
      }
      this.enqueue(job);
    }).finally(() => {
      if (onAbort) req.signal!.removeEventListener('abort', onAbort);
    });
  }

  /** Test hook: has a worker call the async bridge with `op` and returns what came back. */
  debugHostCall(op: string, payload: unknown): Promise<{ ok: boolean; value?: unknown; error?: string }> {
    return new Promise((resolve) => {
      this.enqueue({
        kind: 'host-test',
        id: this.nextId++,
        msg: { type: 'host-test', op, payload },
        stackKb: this.defaults.stackKb,
        timeoutMs: this.defaults.timeoutMs,
        resolve,
      });
    });
  }

  stats(): {
    cacheHits: number;
    cacheMisses: number;
    workers: number;
    busy: number;
    diskHits: number;
    compiles: number;
    respawns: number;
    cacheBytes: number;
    queued: number;
    retiring: number;
  } & InlineStats {
    return {
      inlineRuns: this.inline?.stats.inlineRuns ?? 0,
      inlineSpills: { ...(this.inline?.stats.inlineSpills ?? { slice: 0, host_call: 0, failed: 0 }) },
      retiring: this.retiring.size,
      cacheHits: this.counters.cacheHits,
      cacheMisses: this.counters.cacheMisses,
      workers: this.workers.filter((w) => !w.dead).length,
      busy: this.workers.filter((w) => w.job !== null).length,
      diskHits: this.counters.diskHits,
      compiles: this.counters.compiles,
      respawns: this.counters.respawns,
      cacheBytes: this.cacheBytes,
      queued: this.queue.length,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const q = this.queue;
    this.queue = [];
    for (const j of q) this.finish(j, crashed('the runtime was closed'));
    const ws = this.workers;
    this.workers = [];
    await Promise.all(
      ws.map(async (pw) => {
        pw.dead = true;
        if (pw.job) this.finish(pw.job, crashed('the runtime was closed'));
        pw.hostPort.close();
        pw.runPort.close();
        Atomics.notify(pw.ctl, CTL_RESULT_STATE);
        await pw.w.terminate();
      }),
    );
  }

  // ---- the pool -----------------------------------------------------------------------------

  private enqueue(job: Job): void {
    if (this.closed) {
      this.finish(job, crashed('the runtime is closed'));
      return;
    }
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    if (this.closed) return;
    while (this.queue.length > 0) {
      const job = this.queue[0];
      const w = this.workers.find((x) => x.ready && !x.dead && x.job === null && x.stackKb === job.stackKb);
      if (w) {
        this.queue.shift();
        this.dispatch(w, job);
        continue;
      }
      const alive = this.workers.filter((x) => !x.dead);
      const starting = alive.filter((x) => !x.ready && x.stackKb === job.stackKb).length;
      const waiting = this.queue.filter((j) => j.stackKb === job.stackKb).length;
      if (starting < waiting) {
        if (alive.length + this.retiring.size < this.poolSize) {
          this.spawn(job.stackKb);
          continue;
        }
        // Replace an idle worker of another stack size, if any.
        const idle = alive.find((x) => x.ready && x.job === null && x.stackKb !== job.stackKb);
        if (idle) {
          this.retire(idle);
          this.spawn(job.stackKb);
          continue;
        }
      }
      return; // wait for a worker to be ready or free
    }
  }

  /** Starts the pool's workers now rather than at the first runs. */
  async warmup(): Promise<void> {
    while (this.workers.filter((x) => !x.dead).length < this.poolSize) this.spawn(this.defaults.stackKb);
    await Promise.all(
      this.workers.map(
        (pw) =>
          new Promise<void>((resolve) => {
            if (pw.ready || pw.dead) return resolve();
            const check = () => (pw.ready || pw.dead ? resolve() : setTimeout(check, 5));
            check();
          }),
      ),
    );
  }

  private spawn(stackKb: number): PoolWorker {
    const ctlBuf = new SharedArrayBuffer(CTL_SLOTS * 4);
    const dataBuf = new SharedArrayBuffer(HOST_DATA_BYTES);
    const resultBuf = this.sharedResults ? new SharedArrayBuffer(RESULT_DATA_BYTES) : undefined;
    const { port1, port2 } = new MessageChannel();
    const run = new MessageChannel();
    const w = new Worker(WORKER_URL, {
      workerData: {
        ctl: ctlBuf,
        data: dataBuf,
        result: resultBuf,
        spinUs: this.workerSpinUs,
        hostPort: port2,
        runPort: run.port2,
        workerFunctionModules: this.workerFunctionModules,
        jspi: this.jspi,
      },
      transferList: [port2, run.port2],
      execArgv: [],
      // The usable stack is exactly stackKb: Node keeps NODE_STACK_RESERVE_KB of a worker's thread
      // stack out of V8's reach, so the thread gets that much more. (Inline runs rely on it: the main
      // thread's stack is then no larger than the worker's, see inline-policy.ts.)
      // The guest's memory is off this heap; the heap holds what the host builds for it (the output
      // parsed, logs, context values), all bounded (HOST_BOUNDS, the output cap) well below this.
      resourceLimits: { stackSizeMb: Math.max(0.25, (stackKb + NODE_STACK_RESERVE_KB) / 1024), maxOldGenerationSizeMb: WORKER_HEAP_MB },
      stdout: false,
      stderr: false,
    });
    const pw: PoolWorker = {
      w,
      ctl: new Int32Array(ctlBuf),
      data: Buffer.from(dataBuf),
      result: resultBuf ? new Uint8Array(resultBuf) : null,
      hostPort: port1,
      runPort: run.port1,
      stackKb,
      sent: new Set(),
      ready: false,
      dead: false,
      job: null,
    };
    this.workers.push(pw);
    w.on('message', (m: FromWorker) => this.onMessage(pw, m));
    w.on('error', (err) => this.onDeath(pw, `the worker failed: ${err.message}`));
    w.on('exit', (code) => this.onDeath(pw, `the worker exited with code ${code}`));
    return pw;
  }

  private retire(pw: PoolWorker): void {
    pw.dead = true;
    this.workers = this.workers.filter((x) => x !== pw);
    pw.hostPort.close();
    pw.runPort.close();
    Atomics.notify(pw.ctl, CTL_RESULT_STATE); // settles a pending waitAsync
    // Until its thread has exited it still holds its place in the pool; it never holds the process.
    this.retiring.add(pw.w);
    pw.w.unref();
    pw.w.once('exit', () => {
      this.retiring.delete(pw.w);
      this.pump();
    });
    void pw.w.terminate();
  }

  private onDeath(pw: PoolWorker, why: string): void {
    if (pw.dead) return;
    pw.dead = true;
    this.workers = this.workers.filter((x) => x !== pw);
    pw.hostPort.close();
    pw.runPort.close();
    Atomics.notify(pw.ctl, CTL_RESULT_STATE);
    this.counters.respawns++;
    const job = pw.job;
    pw.job = null;
    if (job) this.finish(job, crashed(why));
    if (!pw.ready) {
      // It died while starting: do not respawn in a loop; fail what waits.
      this.startFailures++;
      if (this.startFailures >= 3) {
        this.startFailures = 0;
        const q = this.queue;
        this.queue = [];
        for (const j of q) this.finish(j, crashed(`the worker does not start: ${why}`));
        return;
      }
    }
    this.pump();
  }

  private dispatch(pw: PoolWorker, job: Job): void {
    pw.job = job;
    job.worker = pw;
    pw.w.ref();
    Atomics.store(pw.ctl, CTL_INTERRUPT, 0);
    Atomics.store(pw.ctl, CTL_HOST_STATE, 0);
    Atomics.store(pw.ctl, CTL_RESULT_STATE, RESULT_PENDING);
    let m = { ...job.msg, id: job.id };
    if (job.kind === 'run') {
      const key = job.msg.key as string;
      if (!pw.sent.has(key)) {
        m = { ...m, module: job.entry!.module };
        pw.sent.add(key);
      }
    }
    job.timer = setTimeout(() => this.onTimeout(pw, job), job.timeoutMs);
    job.dispatchedAt = performance.now();
    this.send(pw, m);
    if (job.kind === 'run' && pw.result) this.awaitResult(pw, job);
  }

  /**
   * The fast result channel: spin a little (if configured), then Atomics.waitAsync on the result
   * state. A result posted on the port instead (too large) is taken by onMessage.
   */
  private awaitResult(pw: PoolWorker, job: Job): void {
    const spinMs = this.resultSpinAuto ? this.autoSpinMs(job) : this.resultSpinMs;
    if (spinMs > 0) {
      const end = performance.now() + spinMs;
      do {
        if (Atomics.load(pw.ctl, CTL_RESULT_STATE) !== RESULT_PENDING) {
          this.takeResult(pw, job);
          return;
        }
      } while (performance.now() < end);
    }
    if (this.resultPollMs > 0) {
      const end = performance.now() + this.resultPollMs;
      const tick = (): void => {
        if (pw.dead || pw.job !== job) return;
        if (Atomics.load(pw.ctl, CTL_RESULT_STATE) !== RESULT_PENDING) this.takeResult(pw, job);
        else if (performance.now() < end) setImmediate(tick);
        else this.waitResult(pw, job);
      };
      setImmediate(tick);
      return;
    }
    this.waitResult(pw, job);
  }

  /**
   * How long to spin for this run's result before sleeping on it. Waking the main thread costs
   * ~40-80 us on a VM, more than a short run itself: for a module whose runs have been answering
   * within AUTO_SPIN_CAP_MS, spinning a little longer than it usually takes gets the result without
   * that wake-up. Never when the spinning thread would take a core from a busy worker (every other
   * core runs a guest), and never for slow modules, so a busy or slow pool does not burn CPU.
   */
  private autoSpinMs(job: Job): number {
    let busy = 0;
    for (const w of this.workers) if (w.job) busy++;
    if (busy >= this.cores) return 0;
    const recent = this.recentRunMs.get(job.msg.key as string);
    // A module not known to be fast is still given a full spin now and then, so that a slow spell
    // (a busy machine: no spin, so slow answers, so no spin) does not switch spinning off for good.
    if (recent === undefined || recent > AUTO_SPIN_CAP_MS) return ++this.spinProbe % 16 === 0 ? AUTO_SPIN_CAP_MS : 0;
    return Math.min(AUTO_SPIN_CAP_MS, recent * 1.5 + 0.01);
  }

  private noteRunTime(job: Job): void {
    if (job.kind !== 'run' || job.dispatchedAt === undefined) return;
    const key = job.msg.key as string;
    const took = performance.now() - job.dispatchedAt;
    const prev = this.recentRunMs.get(key);
    if (prev === undefined && this.recentRunMs.size > 10_000) this.recentRunMs.clear();
    this.recentRunMs.set(key, prev === undefined ? took : prev * 0.8 + took * 0.2);
  }

  private waitResult(pw: PoolWorker, job: Job): void {
    const w = waitAsync(pw.ctl, CTL_RESULT_STATE, RESULT_PENDING);
    if (!w.async) this.takeResult(pw, job);
    else void w.value.then(() => this.takeResult(pw, job));
  }

  private takeResult(pw: PoolWorker, job: Job): void {
    if (pw.dead || pw.job !== job) return;
    const state = Atomics.load(pw.ctl, CTL_RESULT_STATE);
    if (state === RESULT_PENDING) {
      this.waitResult(pw, job); // a stray wake-up
      return;
    }
    if (state !== RESULT_INLINE) return; // posted: onMessage takes it
    if (Atomics.load(pw.ctl, CTL_RESULT_ID) !== job.id) return;
    const metaLen = Atomics.load(pw.ctl, CTL_RESULT_META_LEN);
    const outLen = Atomics.load(pw.ctl, CTL_RESULT_OUT_LEN);
    const buf = pw.result!;
    let r: WorkerRunResult;
    try {
      r = JSON.parse(decoder.decode(buf.subarray(0, metaLen))) as WorkerRunResult;
      if (outLen >= 0) {
        const text = decoder.decode(buf.subarray(metaLen, metaLen + outLen));
        const parsed = parseOutput(text);
        if (parsed.ok) {
          r.output = parsed.output;
          if (keepsOutputText(job)) {
            // the record is written from it (and its size counted from its bytes)
            (r as { outputJson?: string }).outputJson = text;
            (r as { outputBytes?: number }).outputBytes = outLen;
          }
        } else r = { ...r, ok: false, error: parsed.error };
      }
    } catch (e) {
      r = crashed(`the worker's result could not be read: ${(e as Error).message}`);
    }
    this.complete(pw, job, r);
  }

  private complete(pw: PoolWorker, job: Job, r: any): void {
    this.noteRunTime(job);
    if (job.abort) job.abort.abort(new Error('the run is over'));
    if (job.cancelled && !r.ok) r = { ...r, error: { code: 'cancelled', message: 'the run was cancelled by its caller (the step was aborted)' } };
    pw.job = null;
    pw.w.unref();
    if (job.timer) clearTimeout(job.timer);
    if (job.killTimer) clearTimeout(job.killTimer);
    job.resolve(r);
    this.pump();
  }

  private send(pw: PoolWorker, m: unknown): void {
    pw.runPort.postMessage(m);
    Atomics.add(pw.ctl, CTL_DOORBELL, 1);
    Atomics.notify(pw.ctl, CTL_DOORBELL);
  }

  /** The caller gave up on a run: drop it if it waits, else stop it like a timeout. */
  private cancel(job: Job): void {
    job.cancelled = true;
    const i = this.queue.indexOf(job);
    if (i !== -1) {
      this.queue.splice(i, 1);
      this.finish(job, crashed('cancelled'));
      return;
    }
    const pw = job.worker;
    if (pw && pw.job === job && !job.killTimer) {
      if (job.timer) clearTimeout(job.timer);
      this.onTimeout(pw, job, 2);
    }
  }

  /** Stops a run at its timeout (flag 1) or at a cancel (flag 2: the worker records an interrupted host call as `cancelled`). */
  private onTimeout(pw: PoolWorker, job: Job, flag = 1): void {
    if (pw.job !== job) return;
    // A bridged host call in progress stops its I/O now.
    if (job.abort) job.abort.abort(new Error(flag === 2 ? 'the run was cancelled' : 'the run timed out'));
    Atomics.store(pw.ctl, CTL_INTERRUPT, flag);
    // A suspended guest's call served in the worker stops its I/O at this message (the flag first).
    if (job.msg.jspi === true) pw.runPort.postMessage({ type: 'interrupt', id: job.id });
    Atomics.notify(pw.ctl, CTL_INTERRUPT); // a guest sleeping in poll_oneoff
    Atomics.notify(pw.ctl, CTL_HOST_STATE); // a host call waiting for the main thread
    job.killTimer = setTimeout(() => {
      if (pw.job !== job) return;
      pw.job = null;
      this.retire(pw);
      this.counters.respawns++;
      const r = crashed(`the run did not stop within ${this.killGraceMs} ms of its timeout (${job.timeoutMs} ms); its worker was terminated`);
      r.error = { code: 'timeout', message: r.error!.message };
      this.finish(job, r);
      this.pump();
    }, this.killGraceMs);
  }

  private finish(job: Job, r: WorkerRunResult): void {
    if (job.abort) job.abort.abort(new Error('the run is over: its worker was lost or stopped'));
    if (job.cancelled && !r.ok) r = { ...r, error: { code: 'cancelled', message: 'the run was cancelled by its caller (the step was aborted)' } };
    if (job.timer) clearTimeout(job.timer);
    if (job.killTimer) clearTimeout(job.killTimer);
    if (job.kind === 'host-test') job.resolve({ ok: false, error: `${r.error?.code}: ${r.error?.message}` });
    else job.resolve(r);
  }

  private onMessage(pw: PoolWorker, m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        pw.ready = true;
        this.startFailures = 0;
        this.pump();
        if (pw.job === null) pw.w.unref(); // idle workers do not keep the process alive
        return;
      case 'host':
        void this.answerHost(pw, m.op, m.payload);
        return;
      case 'hostcall':
        void this.answerHostCall(pw, m.fn, m.text);
        return;
      case 'hostreport': {
        const job = pw.job;
        const side = job?.kind === 'run' && job.id === m.id ? workerSessionOf(job.host) : undefined;
        if (side !== undefined) applyWorkerReport(side, m.report);
        return;
      }
      case 'result':
      case 'host-test-result': {
        const job = pw.job;
        if (!job || job.id !== m.id) return;
        let r: any = m.type === 'result' ? m.result : { ok: m.ok, value: m.value, error: m.error };
        if (m.type === 'result' && r.outputText !== undefined) {
          // A large output, parsed here (the workers' heaps are small on purpose).
          const parsed = parseOutput(r.outputText);
          const { outputText: t, ...rest } = r;
          r = parsed.ok ? { ...rest, output: parsed.output, ...(keepsOutputText(job) ? { outputJson: t } : {}) } : { ...rest, ok: false, error: parsed.error };
        }
        this.complete(pw, job, r);
        return;
      }
    }
  }

  /**
   * A privileged host call bridged from the worker: handed to the run's HostDispatch with the run's
   * AbortSignal; whatever it does (throws, answers garbage, never answers) the worker gets an answer
   * or is released by the run's interrupt, and nothing escapes to the process.
   */
  private async answerHostCall(pw: PoolWorker, fn: string, text: string): Promise<void> {
    const job = pw.job;
    if (job?.kind !== 'run') return;
    let answer: HostAnswer;
    if (!job.host) {
      answer = {
        response: errorResponse('unavailable', `${fn} is not available here: this run was given no host functions`),
        target: null,
        outcome: 'unavailable',
      };
    } else {
      const abort = (job.abort ??= new AbortController());
      try {
        const got = await job.host(fn, JSON.parse(text), abort.signal);
        answer = checkedAnswer(fn, got);
      } catch (e) {
        if (e instanceof HostCallError) {
          answer = { response: errorResponse(e.code, e.message), target: null, outcome: e.code, ...(e.permission ? { permission: e.permission } : {}) };
        } else if (abort.signal.aborted) {
          const code: HostErrorCode = job.cancelled ? 'cancelled' : 'timeout';
          answer = {
            response: errorResponse(code, `${fn} was stopped: the run ${job.cancelled ? 'was cancelled' : 'timed out'}`),
            target: null,
            outcome: code,
          };
        } else {
          answer = {
            response: errorResponse('unavailable', `${fn} failed: ${e instanceof Error ? e.message : String(e)}`),
            target: null,
            outcome: 'unavailable',
          };
        }
      }
    }
    if (pw.dead || pw.job !== job) return; // the run is over (timeout, crash)
    let responseText: string;
    try {
      // The dispatch serialized the response already (to check its size): that text is sent.
      responseText = RESPONSE_JSON.get(answer.response) ?? JSON.stringify(answer.response);
    } catch (e) {
      answer = {
        ...answer,
        response: errorResponse('unavailable', `${fn} answered something that is not JSON: ${(e as Error).message}`),
        outcome: 'unavailable',
      };
      responseText = JSON.stringify(answer.response);
    }
    const max = job.msg.maxHostResponseBytes as number;
    if (responseText.length > max / 3 && Buffer.byteLength(responseText) > max) {
      const size = Buffer.byteLength(responseText);
      answer = { ...answer, response: errorResponse('too_large', `the ${fn} answer is ${size} bytes, above the limit of ${max} bytes`), outcome: 'too_large' };
      responseText = JSON.stringify(answer.response);
    }
    const rec = boundValue(answer.response);
    const meta: HostCallReplyMeta = {
      target: answer.target,
      outcome: answer.outcome,
      ...(answer.permission !== undefined ? { permission: answer.permission } : {}),
      rec: rec.value,
      recBytes: rec.bytes,
    };
    const reply = `${JSON.stringify(meta)}\n${responseText}`;
    // Encoded straight into the shared buffer when it fits (UTF-8 takes at most 3 bytes per unit).
    const size = reply.length * 3 <= pw.data.byteLength ? -1 : Buffer.byteLength(reply);
    if (size <= pw.data.byteLength) {
      const n = pw.data.write(reply, 0, 'utf8');
      Atomics.store(pw.ctl, CTL_HOST_LEN, n);
      Atomics.store(pw.ctl, CTL_HOST_STATE, HOST_INLINE);
    } else {
      pw.hostPort.postMessage(reply);
      Atomics.store(pw.ctl, CTL_HOST_STATE, HOST_PORT);
    }
    Atomics.notify(pw.ctl, CTL_HOST_STATE);
  }

  private async answerHost(pw: PoolWorker, op: string, payload: unknown): Promise<void> {
    const job = pw.job;
    let reply: string;
    try {
      const handler = Object.hasOwn(this.hostOps, op) ? this.hostOps[op] : undefined;
      if (!handler) throw new Error(`no host operation '${op}'`);
      const value = await handler(payload);
      reply = JSON.stringify({ ok: true, value: value === undefined ? null : value });
    } catch (e) {
      reply = JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
    if (pw.dead || pw.job !== job) return; // the run is over (timeout, crash)
    const bytes = encoder.encode(reply);
    if (bytes.byteLength <= pw.data.byteLength) {
      pw.data.set(bytes);
      Atomics.store(pw.ctl, CTL_HOST_LEN, bytes.byteLength);
      Atomics.store(pw.ctl, CTL_HOST_STATE, HOST_INLINE);
    } else {
      pw.hostPort.postMessage(reply);
      Atomics.store(pw.ctl, CTL_HOST_STATE, HOST_PORT);
    }
    Atomics.notify(pw.ctl, CTL_HOST_STATE);
  }
}

/** Instrumented bytes up to this size stay in the cache entry (for the inline variant). */
const KEEP_BYTES_MAX = 1024 * 1024;
const keptBytes = (b: Uint8Array): { bytes?: Uint8Array } => (b.byteLength <= KEEP_BYTES_MAX ? { bytes: b } : {});

/** The variant of a module with its memory imported (inline-memory.ts), or null when it has none that can be. */
function inlineVariantOf(entry: CacheEntry): { module: WasmModuleObject; limits: MemoryLimits } | null {
  if (entry.bytes === undefined || entry.info.memory === undefined || entry.info.memory.imported) return null;
  try {
    const v = importMemoryVariant(entry.bytes);
    return v === null ? null : { module: new WA.Module(v.bytes), limits: v.limits };
  } catch {
    return null;
  }
}

/** A dispatch's answer as the worker may take it; anything else becomes an `unavailable` answer. */
function checkedAnswer(fn: string, a: unknown): HostAnswer {
  const bad = (why: string): HostAnswer => ({
    response: errorResponse('unavailable', `${fn}: the host function answered ${why}`),
    target: null,
    outcome: 'unavailable',
  });
  if (a === null || typeof a !== 'object') return bad(`a ${a === null ? 'null' : typeof a}, not an answer`);
  const { response, target, outcome, permission } = a as Partial<HostAnswer>;
  if (response === null || typeof response !== 'object' || Array.isArray(response)) return bad('without a response object');
  if (outcome !== 'ok' && !(HOST_ERROR_CODES as readonly string[]).includes(outcome as string)) return bad(`an unknown outcome ${JSON.stringify(outcome)}`);
  return {
    response,
    target: typeof target === 'string' ? target : null,
    outcome: outcome as HostAnswer['outcome'],
    ...(typeof permission === 'string' ? { permission } : {}),
  };
}

function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (!o) return out;
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = v;
  return out;
}

function toModuleError(e: unknown): WasmModuleError {
  if (e instanceof WasmModuleError) return e;
  if (e instanceof WasmFormatError) {
    if (e.code === 'memory_limit') return new WasmModuleError('memory_limit', e.message);
    if (e.code === 'unsupported_feature') return new WasmModuleError('unsupported_feature', e.message);
    return new WasmModuleError('invalid_module', e.message);
  }
  return new WasmModuleError('invalid_module', e instanceof Error ? e.message : String(e));
}

/** JSPI (V8 11.3's API) exists only when node was started with --experimental-wasm-stack-switching. */
export function jspiAvailable(): boolean {
  return typeof (WA as unknown as { Suspender?: unknown }).Suspender === 'function';
}

const V8_JSPI_STACK_KB = 984; // V8 11.3's default

/**
 * The size of a suspendable stack in this process, in KiB (its node flag, else V8's default).
 * `vecron` starts node with 1024 (bin/vecron.js, package.json, scripts/run-tests.mjs): the default
 * stack limit (DEFAULT_LIMITS.stackKb).
 */
export function jspiStackKb(): number {
  const flag = [...process.execArgv].reverse().find((a) => /^--wasm[-_]stack[-_]switching[-_]stack[-_]size=/.test(a));
  const n = flag === undefined ? Number.NaN : Number(flag.split('=')[1]);
  return Number.isInteger(n) && n > 0 ? n : V8_JSPI_STACK_KB;
}

export { DEFAULT_LIMITS, START_EXPORT };
