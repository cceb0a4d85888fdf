/**
 * The worker thread of the WASM runtime: instantiates a compiled module (sent once per worker),
 * runs one call in a fresh instance and reports the result. See index.ts for the design.
 */
import { parentPort, workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WASI, WASIProcExit, OpenFile, File, ConsoleStdout } from '@bjorn3/browser_wasi_shim';
import {
  runtimeImports,
  setFuel,
  fuelLeft,
  FuelExhaustedError,
  InterruptedError,
  START_EXPORT,
  GROW_FAILED_TABLE,
  SUSPENDING_IMPORTS,
  JSPI_EXPORT_PREFIX,
  JSPI_MODE_EXPORT,
} from '../instrument/index.ts';
import { HOST_BOUNDS, HOST_COSTS, TABLE_ENTRY_BYTES } from '../instrument/costs.ts';
import { lookupContext } from './context-lookup.ts';
import { wrapWasi } from './wasi-guard.ts';
import { WA, type WasmApi, type WasmInstanceObject, type WasmMemoryObject, type WasmModuleObject } from './wasm-api.ts';
import {
  CTL_DOORBELL,
  CTL_HOST_LEN,
  LINGER_MS,
  CTL_HOST_STATE,
  CTL_INTERRUPT,
  CTL_RESULT_ID,
  CTL_RESULT_META_LEN,
  CTL_RESULT_OUT_LEN,
  CTL_RESULT_STATE,
  RESULT_INLINE,
  RESULT_POSTED,
  WORKER_SPIN_US,
  HOST_INLINE,
  HOST_PORT,
  crashed,
  parseOutput,
  type FromWorker,
  type RunMessage,
  type ToWorker,
  type WorkerRunResult,
} from './protocol.ts';
import type { WasmErrorCode, WasmLogLine } from './types.ts';
import {
  PRIVILEGED_HOST_FUNCTIONS,
  type HostCallRecord,
  type HostDispatch,
  type HostErrorCode,
  type PrivilegedHostFunction,
  type WorkerHostFunction,
} from '../host/types.ts';
import { workerHostFunction } from '../host/worker-functions.ts';
import { decodeRequest, errorAnswer, parseReply, recordCall, serveHere, type Answer } from './host-calls.ts';
import { servedInWorker } from '../host/worker-session.ts';
import { ReplayServer, RunRecorder, hookWasiInputs } from './run-record.ts';

const port = parentPort!;
const {
  ctl: ctlBuf,
  data: dataBuf,
  result: resultBuf,
  spinUs,
  hostPort,
  runPort,
  workerFunctionModules,
  jspi,
} = workerData as {
  workerFunctionModules?: string[];
  /** false: never suspend (the runtime's `jspi: false`). */
  jspi?: boolean;
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  result?: SharedArrayBuffer;
  spinUs?: number;
  hostPort: MessagePort;
  runPort: MessagePort;
};
const ctl = new Int32Array(ctlBuf);
const hostData = Buffer.from(dataBuf);
const resultData = resultBuf ? new Uint8Array(resultBuf) : null;
const SPIN_MS = Math.max(0, spinUs ?? WORKER_SPIN_US) / 1000;
/** The JSON text of the last successful run's output (sent as is on the fast result channel). */
let lastOutputText: string | undefined;
const modules = new Map<string, WasmModuleObject>();
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/** The metering imports: stateless (they only read the interrupt flag), so shared by all runs. */
const rtImports = runtimeImports({ interrupt: ctl, index: CTL_INTERRUPT });

/**
 * A full collection, run after a run that used much memory (off the critical path): a dropped
 * instance gives its memory back only when it is collected, and this heap is small, so without it
 * tens of MiB of a finished guest could stay resident until some later collection.
 */
const collect: (() => void) | null = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
})();
const COLLECT_AFTER_BYTES = 16 * 1024 * 1024;

const MAX_LOG_LINES = HOST_BOUNDS.maxLogLines;
const MAX_LOG_BYTES = HOST_BOUNDS.maxLogLineBytes;
const LEVELS: WasmLogLine['level'][] = ['debug', 'info', 'warn', 'error'];
const HOST_SPIN = 2000;
/**
 * A bridged call normally ends at the interrupt the main thread sets at the timeout; this thread
 * also gives up on its own this long after the deadline (a main thread too busy to set the flag).
 */
const DEADLINE_SLACK_MS = 250;

/** An error with a runtime code, raised by the host side of a run. */
class RunError extends Error {
  readonly code: WasmErrorCode;
  constructor(code: WasmErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

// ---- the async bridge -------------------------------------------------------------------------

/**
 * Calls an asynchronous host operation on the main thread and blocks this thread until it answers
 * (spin briefly, then Atomics.wait in slices so that the interrupt flag is still honoured).
 */
export function callHost(op: string, payload: unknown): unknown {
  Atomics.store(ctl, CTL_HOST_STATE, 0);
  post({ type: 'host', op, payload });
  const reply = JSON.parse(awaitHostReply()) as { ok: boolean; value?: unknown; error?: string };
  if (!reply.ok) throw new Error(`host operation ${op} failed: ${reply.error}`);
  return reply.value;
}

/**
 * Blocks until the main thread has answered the bridge call just posted: spins while an answer is
 * likely to come soon (`spinMs`), then Atomics.wait in slices; the interrupt flag (set at the
 * timeout or a cancel, and notified on CTL_HOST_STATE) and the run's own deadline end the wait
 * with InterruptedError.
 */
function awaitHostReply(spinMs = 0): string {
  let state = 0;
  for (let i = 0; i < HOST_SPIN; i++) {
    state = Atomics.load(ctl, CTL_HOST_STATE);
    if (state !== 0) break;
  }
  if (state === 0 && spinMs > 0) {
    const end = performance.now() + spinMs;
    do state = Atomics.load(ctl, CTL_HOST_STATE);
    while (state === 0 && performance.now() < end);
  }
  while (state === 0) {
    Atomics.wait(ctl, CTL_HOST_STATE, 0, 50);
    state = Atomics.load(ctl, CTL_HOST_STATE);
    if (state === 0) {
      const flag = Atomics.load(ctl, CTL_INTERRUPT);
      if (flag !== 0) throw new InterruptedError(flag);
      if (cur !== null && performance.now() > cur.deadline + DEADLINE_SLACK_MS) throw new InterruptedError(1);
    }
  }
  return hostReplyText(state);
}

/** The text of the main thread's answer, once CTL_HOST_STATE says where it is. */
function hostReplyText(state: number): string {
  if (state === HOST_INLINE) {
    const n = Atomics.load(ctl, CTL_HOST_LEN);
    return hostData.toString('utf8', 0, n); // decoded in place (TextDecoder refuses shared memory)
  }
  if (state === HOST_PORT) {
    let m = receiveMessageOnPort(hostPort);
    while (!m) m = receiveMessageOnPort(hostPort); // posted before the notify; cannot be long
    return m.message as string;
  }
  throw new Error(`host bridge: bad state ${state}`);
}

/**
 * How long to spin for the answer to a bridged call of each function before sleeping on it. A
 * futex wake-up costs tens of microseconds on a VM, as much as a short call itself (crypto with a
 * key); spinning pays only when the answer comes within the spin. So: a moving average per
 * function of how long its answers took; spin (at most SPIN_MAX_MS) while that is short, not when
 * it is long (a database round trip, or a loaded machine where the main thread waits for a core:
 * a spinning thread would only take the core from it). Every PROBE_EVERY-th call spins anyway, so
 * that a machine that got quiet again is noticed.
 */
const SPIN_MAX_MS = 0.06;
const PROBE_EVERY = 32;
const replyMs = new Map<string, number>();
let bridgedCalls = 0;
const spinFor = (fn: string): number => {
  const avg = replyMs.get(fn);
  return avg === undefined || avg <= SPIN_MAX_MS || ++bridgedCalls % PROBE_EVERY === 0 ? SPIN_MAX_MS : 0;
};
const noteReply = (fn: string, ms: number): void => {
  const avg = replyMs.get(fn);
  // A slow answer now and then (a scheduling hiccup) moves the average only a little.
  replyMs.set(fn, avg === undefined ? ms : avg * 0.875 + Math.min(ms, 8 * SPIN_MAX_MS) * 0.125);
};

function post(m: FromWorker): void {
  port.postMessage(m);
}

// ---- one run ------------------------------------------------------------------------------------

/** Captured stdout / stderr: one buffer that doubles (never one object per write), capped. */
class Capture {
  private buf = new Uint8Array(0);
  size = 0;
  overflow = false;
  constructor(
    readonly cap: number,
    readonly throwOnOverflow: boolean,
  ) {}
  write(b: Uint8Array): void {
    let n = b.byteLength;
    if (this.size + n > this.cap) {
      this.overflow = true;
      n = this.cap - this.size;
    }
    if (n > 0) {
      if (this.size + n > this.buf.byteLength) {
        const next = new Uint8Array(Math.min(this.cap, Math.max(this.size + n, this.buf.byteLength * 2, 4096)));
        next.set(this.buf.subarray(0, this.size));
        this.buf = next;
      }
      this.buf.set(n === b.byteLength ? b : b.subarray(0, n), this.size);
      this.size += n;
    }
    if (this.overflow && this.throwOnOverflow) throw new RunError('output_too_large', `stdout is larger than the cap of ${this.cap} bytes`);
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.size);
  }
}

/** The state of the run in progress, which the host functions (shared by all runs) work on. */
interface RunState {
  m: RunMessage;
  logs: WasmLogLine[];
  contextWrites: Record<string, unknown>;
  logsDropped: number;
  logBytes: number;
  contextBytes: number;
  memory: WasmMemoryObject | undefined;
  instance: WasmInstanceObject | undefined;
  context: unknown;
  /** get_context answers already encoded, by key (dropped when set_context writes). */
  answers: Map<string, Uint8Array>;
  answerBytes: number;
  /** The fuel globals of the instance, once it exists (host calls charge them). */
  fuel: { value: bigint } | undefined;
  reserve: { value: bigint } | undefined;
  /** performance.now() past which a host call stops the run (the timeout, seen from here). */
  deadline: number;
  /** The privileged host calls so far (HOST_BOUNDS.maxHostCallRecords kept), and the bytes their bounded requests/responses take. */
  hostCalls: HostCallRecord[];
  hostCallSeq: number;
  hostCallsDropped: number;
  recordBytes: number;
  /** The complete record being kept (RunMessage.record), or the record being replayed (RunMessage.replay). */
  recorder: RunRecorder | null;
  replay: ReplayServer | null;
  /** Aborts the I/O of the suspending calls served here (made at the first one). */
  io?: AbortController;
  /** The dispatch of the calls served here (made at the first one). */
  ioDispatch?: HostDispatch;
  /** The run reported a denial or a log line to the main thread (its result then goes on the same port). */
  reported?: boolean;
}
let cur: RunState | null = null;

const mem = (): WasmMemoryObject => {
  const memory = cur!.memory;
  if (!memory) throw new RunError('abi_error', "the module does not export 'memory'");
  return memory;
};
const check = (what: string, ptr: number, len: number): void => {
  const size = mem().buffer.byteLength;
  if (ptr < 0 || len < 0 || ptr + len > size) {
    throw new RunError('abi_error', `${what}: pointer ${ptr} + length ${len} = ${ptr + len} is outside the memory (${size} bytes)`);
  }
};
const read = (what: string, ptr: number, len: number): Uint8Array => {
  ptr >>>= 0;
  len >>>= 0;
  check(what, ptr, len);
  return new Uint8Array(mem().buffer, ptr, len);
};
const guestAlloc = (what: string, bytes: Uint8Array): number => {
  const alloc = cur!.instance!.exports.alloc as (n: number) => number;
  if (typeof alloc !== 'function') throw new RunError('abi_error', "the module does not export 'alloc'");
  const p = alloc(bytes.byteLength) >>> 0;
  check(`${what}: alloc(${bytes.byteLength}) returned a pointer that`, p, bytes.byteLength);
  new Uint8Array(mem().buffer).set(bytes, p);
  return p;
};

/** Stops the run if its interrupt flag is set or its deadline has passed (host calls, before and after). */
function checkStop(): void {
  const flag = Atomics.load(ctl, CTL_INTERRUPT);
  if (flag !== 0) throw new InterruptedError(flag);
  if (cur !== null && performance.now() > cur.deadline) throw new InterruptedError(1);
}

/**
 * Charges a host call's fuel (HOST_COSTS) before it does its work: the counter global goes down
 * by `units`; if the fuel left is then negative the run ends with fuel_exhausted, before the work.
 * (The guest stored its fuel to the global before the call and reloads it after.)
 */
function charge(units: number, stop = true): void {
  if (stop) checkStop();
  const st = cur;
  if (st === null || st.fuel === undefined || st.reserve === undefined) return;
  const c = st.fuel.value - BigInt(Math.ceil(units));
  st.fuel.value = c;
  if (c + st.reserve.value < 0n) throw new FuelExhaustedError();
}

const copyCost = (bytes: number): number => HOST_COSTS.call + bytes / HOST_COSTS.copyBytesPerUnit;
const jsonCost = (bytes: number): number => HOST_COSTS.call + bytes / HOST_COSTS.jsonBytesPerUnit;

function decodeKey(what: string, ptr: number, len: number): string {
  if (len >>> 0 > HOST_BOUNDS.maxKeyBytes)
    throw new RunError('abi_error', `${what}: the key is ${len >>> 0} bytes, above the limit of ${HOST_BOUNDS.maxKeyBytes}`);
  try {
    return utf8.decode(read(what, ptr, len));
  } catch (e) {
    if (e instanceof RunError) throw e;
    throw new RunError('abi_error', `${what}: the key is not valid UTF-8`);
  }
}

// ---- the privileged host functions (issue 15; docs/abi.md, "the calling convention") ---------

/** Worker-served functions loaded at start from WasmRuntimeOptions.workerFunctionModules (they come before the built-in ones). */
const extraWorkerFunctions: WorkerHostFunction[] = [];
for (const url of workerFunctionModules ?? []) {
  const mod = (await import(url)) as { WORKER_HOST_FUNCTIONS?: WorkerHostFunction[] };
  extraWorkerFunctions.push(...(mod.WORKER_HOST_FUNCTIONS ?? []));
}
const workerFunctions = new Map<string, WorkerHostFunction>();
for (const name of PRIVILEGED_HOST_FUNCTIONS) {
  const f = workerHostFunction(name, extraWorkerFunctions);
  if (f) workerFunctions.set(name, f);
}

const pack = (p: number, n: number): bigint => (BigInt(p) << 32n) | BigInt(n);

/** Bridges a call to the run's HostDispatch on the main thread and waits for its answer. */
function bridge(fn: string, text: string): Answer {
  // A reply posted for a call that an earlier run gave up on (its deadline) must not answer this one.
  while (receiveMessageOnPort(hostPort) !== undefined);
  Atomics.store(ctl, CTL_HOST_STATE, 0);
  const t0 = performance.now();
  post({ type: 'hostcall', fn, text });
  const reply = awaitHostReply(spinFor(fn));
  noteReply(fn, performance.now() - t0);
  return parseReply(fn, reply);
}

/**
 * One privileged host call, the same for every function: `(req_ptr, req_len) -> (ptr << 32) | len`.
 * Bounds, then the size cap, then fuel for the request's bytes, then decode; served here or bridged;
 * the answer's size capped and its bytes charged before it is written through `alloc`. Only a
 * broken ABI (pointers out of bounds, no `alloc`) throws out of the guest; every other failure is
 * an `{"error": ...}` answer.
 *
 * This is the path of every call a guest makes (thousands per run), so it allocates little: no
 * message strings unless something fails, the answer encoded straight into guest memory, the
 * record's time kept as a number until the record is kept.
 */
function privileged(fn: PrivilegedHostFunction, ptr: number, len: number): bigint {
  const c = startCall(fn, ptr, len);
  const { st, decoded } = c;
  let a: Answer;
  if ('req' in decoded && st.replay !== null) {
    a = replayed(st.replay, c.seq, fn, decoded.text, c.len);
  } else if ('req' in decoded) {
    const f = workerFunctions.get(fn);
    const here = f ? serveHere(f, decoded.req, st.m.keys) : null;
    if (here) a = here;
    else {
      charge(HOST_COSTS.bridgedCall);
      try {
        a = bridge(fn, decoded.text);
      } catch (e) {
        recordInterrupted(c, e);
        throw e;
      }
    }
  } else {
    a = decoded;
    st.replay?.call(c.seq, fn, null, c.len); // refused here before it was read, in the run as in a replay: only compared
  }
  return finishCall(c, a);
}

/** A call, once its request is in: the same start for every call, wherever it is then served. */
interface CallStart {
  st: RunState;
  fn: string;
  seq: number;
  /** Epoch ms and performance.now() when it started. */
  atMs: number;
  t0: number;
  len: number;
  decoded: { req: Record<string, unknown>; text: string } | Answer;
}

/** Bounds, the stop check and fuel for the request's bytes, the clocks, then the request decoded (or the answer that refuses it). */
function startCall(fn: string, ptr: number, len: number): CallStart {
  ptr >>>= 0;
  len >>>= 0;
  const st = cur!;
  const m = st.m;
  if (!inBounds(ptr, len)) check(`${fn} request`, ptr, len); // throws the abi_error
  // Checks the stop flag and the deadline first (each check costs a clock read: once before, once after the call).
  charge(HOST_COSTS.call + HOST_COSTS.privilegedCall + Math.min(len, m.maxHostRequestBytes) / HOST_COSTS.jsonBytesPerUnit);
  const atMs = Date.now();
  const t0 = performance.now();
  const seq = st.hostCallSeq++;
  const decoded = decodeRequest(fn, len, m.maxHostRequestBytes, () => new Uint8Array(st.memory!.buffer, ptr, len));
  return { st, fn, seq, atMs, t0, len, decoded };
}

/** A call that outlived the run (timeout or cancel): kept in the record, then the run ends (the caller rethrows). */
function recordInterrupted(c: CallStart, e: unknown): void {
  if (!(e instanceof InterruptedError)) return;
  const code: HostErrorCode = e.flag === 2 ? 'cancelled' : 'timeout';
  const dur = Math.round((performance.now() - c.t0) * 1000);
  recordCall(
    c.st,
    { seq: c.seq, function: c.fn, target: null, at: c.atMs, duration_us: dur, bytes_in: c.len, bytes_out: 0, outcome: code, served: 'host' },
    'req' in c.decoded ? c.decoded.req : null,
    null,
    undefined,
    MAX_LOG_LINES,
  );
}

/** The end of every call: the answer's size capped, the call recorded, its bytes charged, the answer written through `alloc`. */
function finishCall(c: CallStart, answer: Answer): bigint {
  const { st, fn, seq, atMs, t0, len, decoded } = c;
  const m = st.m;
  let a = answer;
  let size = utf8Length(a.text);
  if (size > m.maxHostResponseBytes) {
    a = errorAnswer('too_large', `the ${fn} answer is ${size} bytes, above the limit of ${m.maxHostResponseBytes} bytes`, a.served, a.target);
    size = utf8Length(a.text);
  }
  const duration_us = Math.round((performance.now() - t0) * 1000);
  let response: unknown = null;
  let bounded: number | undefined;
  if (a.obj !== undefined) response = a.obj;
  else if (a.rec !== undefined) {
    response = a.rec;
    bounded = a.recBytes ?? HOST_BOUNDS.maxRecordValueBytes;
  }
  st.recorder?.call(seq, fn, 'req' in decoded ? decoded.text : null, len, a);
  recordCall(
    st,
    {
      seq,
      function: fn,
      target: a.target,
      at: atMs,
      duration_us,
      bytes_in: len,
      bytes_out: size,
      outcome: a.outcome,
      ...(a.permission !== undefined ? { permission: a.permission } : {}),
      served: a.served,
    },
    'req' in decoded ? decoded.req : null,
    response,
    bounded,
    MAX_LOG_LINES,
  );
  charge(size / HOST_COSTS.jsonBytesPerUnit, false); // before anything is written to the guest (the stop check comes after)
  const p = guestAllocText(fn, a.text, size);
  checkStop();
  return pack(p, size);
}

// ---- suspending calls (JSPI) ---------------------------------------------------------------------

/**
 * JSPI, V8 11.3's API: present only when node runs with --experimental-wasm-stack-switching (a
 * process-wide flag, see docs/operations.md) and the runtime did not turn it off.
 */
const JSPI_API = WA as unknown as WasmApi & {
  Suspender?: unknown;
  Function: new (type: { parameters: string[]; results: string[] }, f: unknown, o: { suspending?: 'first'; promising?: 'first' }) => unknown;
};
const JSPI_ON = jspi !== false && typeof JSPI_API.Suspender === 'function';

/**
 * A suspending call (http_request, db_query, file_*) of a run with JSPI: checked, charged and decoded
 * as any other; then, while the guest's stack is suspended, served on this thread's event loop
 * (worker-io.ts) or bridged to the main thread without blocking (Atomics.waitAsync). A call refused
 * before it is served (a bad request, a replay) answers at once, without suspending.
 */
function privilegedSuspending(fn: PrivilegedHostFunction, ptr: number, len: number): bigint | Promise<bigint> {
  if (cur!.replay !== null) return privileged(fn, ptr, len);
  const c = startCall(fn, ptr, len);
  const { st, decoded } = c;
  if (!('req' in decoded)) return finishCall(c, decoded);
  charge(HOST_COSTS.bridgedCall);
  const io = st.m.io;
  const served = io !== undefined && servedInWorker(io, fn, decoded.req) ? serveIo(st, fn, decoded.req) : bridgeAsync(fn, decoded.text);
  return served.then(
    (a) => finishCall(c, a),
    (e) => {
      recordInterrupted(c, e);
      throw e;
    },
  );
}

/** The worker's I/O functions (host/worker-io.ts), loaded at the first call served here. */
let ioModule: Promise<typeof import('../host/worker-io.ts')> | null = null;

/**
 * A call served on this thread's event loop while the guest is suspended: the run's own dispatch
 * over the session the main thread sent (made at the first call). The main thread's interrupt
 * message (timeout, cancel) aborts its I/O; the run then ends as a bridged call's would.
 */
async function serveIo(st: RunState, fn: string, request: Record<string, unknown>): Promise<Answer> {
  if (st.ioDispatch === undefined) {
    ioModule ??= import('../host/worker-io.ts');
    const { createWorkerDispatch } = await ioModule;
    st.ioDispatch ??= createWorkerDispatch(st.m.io!, (report) => {
      st.reported = true; // the result then follows the reports on the same port (see deliver)
      post({ type: 'hostreport', id: st.m.id, report });
    });
  }
  const ac = (st.io ??= new AbortController());
  const h = await st.ioDispatch(fn, request, ac.signal);
  if (ac.signal.aborted) throw ac.signal.reason;
  if (cur !== st) throw new InterruptedError(1);
  const { RESPONSE_JSON } = await ioModule!;
  return {
    text: RESPONSE_JSON.get(h.response) ?? JSON.stringify(h.response),
    obj: h.response,
    target: h.target,
    outcome: h.outcome,
    ...(h.permission !== undefined ? { permission: h.permission } : {}),
    served: 'worker',
  };
}

/** Bridges a call to the main thread and waits for the answer on the event loop (the guest is suspended). */
async function bridgeAsync(fn: string, text: string): Promise<Answer> {
  while (receiveMessageOnPort(hostPort) !== undefined);
  Atomics.store(ctl, CTL_HOST_STATE, 0);
  post({ type: 'hostcall', fn, text });
  const st = cur!;
  for (;;) {
    const left = st.deadline + DEADLINE_SLACK_MS - performance.now();
    if (left <= 0) throw new InterruptedError(1);
    // Woken by the main thread's answer, or by its notify at the timeout or a cancel.
    const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: unknown } }).waitAsync(
      ctl,
      CTL_HOST_STATE,
      0,
      left,
    );
    if (w.async) await w.value;
    if (cur !== st) throw new InterruptedError(1);
    const state = Atomics.load(ctl, CTL_HOST_STATE);
    if (state !== 0) return parseReply(fn, hostReplyText(state));
    const flag = Atomics.load(ctl, CTL_INTERRUPT);
    if (flag !== 0) throw new InterruptedError(flag);
  }
}

/** Whether run `m` goes through JSPI (asked for by the main thread, and available here). */
const usesJspi = (m: RunMessage): boolean => m.jspi === true && JSPI_ON;

/** The stop of a run's I/O in flight: at the interrupt message (timeout, cancel) or past the deadline. */
function interruptIo(st: RunState): void {
  // Made here when no call made it yet: a call that starts later (its module still loading) finds it aborted.
  (st.io ??= new AbortController()).abort(new InterruptedError(Atomics.load(ctl, CTL_INTERRUPT) || 1));
}
/** The run is over: anything of its I/O still in flight stops. */
function endIo(st: RunState): void {
  st.io?.abort(new InterruptedError(1));
}

/** The suspending imports (made once: WebAssembly.Function wrappers), and the import objects that use them. */
const suspendingHost: Record<string, unknown> | null = JSPI_ON ? {} : null;
let suspendingPlainImports: Record<string, Record<string, unknown>> | null = null;

/** Whether [ptr, ptr + len) lies in the run's memory (no memory: false, and `check` says why). */
function inBounds(ptr: number, len: number): boolean {
  const memory = cur!.memory;
  return memory !== undefined && ptr + len <= memory.buffer.byteLength;
}

/** UTF-8 bytes of a string (its length when it is ASCII, the common case, without encoding it). */
const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

/** `text` (of `size` UTF-8 bytes) written through the guest's `alloc`, encoded straight into its memory. */
function guestAllocText(fn: string, text: string, size: number): number {
  const alloc = cur!.instance!.exports.alloc as (n: number) => number;
  if (typeof alloc !== 'function') throw new RunError('abi_error', "the module does not export 'alloc'");
  const p = alloc(size) >>> 0;
  if (!inBounds(p, size)) check(`${fn} answer: alloc(${size}) returned a pointer that`, p, size);
  encoder.encodeInto(text, new Uint8Array(mem().buffer, p, size));
  return p;
}

/**
 * A call of a replay, answered from the record (never served here or bridged): charged as the run
 * was (a bridged call's extra cost when the record says it was bridged), or, when the call is not
 * the record's, answered `unavailable` (the divergence is kept).
 */
function replayed(rs: ReplayServer, seq: number, fn: string, text: string, len: number): Answer {
  const rec = rs.call(seq, fn, text, len);
  if (rec === null) return errorAnswer('unavailable', `replay: host call #${seq} (${fn}) is not the one the record holds: not sent`);
  // Every suspending call pays the bridge's cost, served here (JSPI) or bridged: a run's fuel does not depend on where.
  if (rec.served === 'host' || SUSPENDING_IMPORTS.has(fn)) charge(HOST_COSTS.bridgedCall);
  let obj: unknown = null;
  try {
    obj = JSON.parse(rec.response);
  } catch {
    // shown as null in the run's host-call log; the guest gets the text as recorded
  }
  return {
    text: rec.response,
    obj,
    target: rec.target,
    outcome: rec.outcome as Answer['outcome'],
    ...(rec.permission !== undefined ? { permission: rec.permission } : {}),
    served: rec.served,
  };
}

/**
 * get_context in a replay: the answer the record holds for this read (the context itself is not in
 * the record: it holds the job's variables, secrets included, of which the guest reads a few), with
 * the charges the run made (the context's parse on the first lookup, by its recorded size; a cached
 * answer skips it as it did in the run).
 */
function replayContext(st: RunState, rs: ReplayServer, key: string): bigint {
  const text = rs.contextRead(key);
  let bytes = st.answers.get(key);
  if (bytes === undefined && key === '' && Object.keys(st.contextWrites).length === 0) {
    charge(jsonCost(rs.contextChars));
    bytes = encoder.encode(text ?? '{}');
    st.answers.set(key, bytes);
  }
  if (bytes === undefined) {
    if (st.context === undefined) {
      charge(jsonCost(rs.contextChars));
      st.context = null; // parsed, as far as the charges go
    }
    if (text === null) return 0n;
    bytes = encoder.encode(text);
    if (st.answerBytes + bytes.byteLength <= HOST_BOUNDS.maxContextWriteBytes) {
      st.answers.set(key, bytes);
      st.answerBytes += bytes.byteLength;
    }
  }
  charge(jsonCost(bytes.byteLength));
  const p = guestAlloc('get_context', bytes);
  checkStop();
  return (BigInt(p) << 32n) | BigInt(bytes.byteLength);
}

// The suspending ones (instrument.ts SUSPENDING_IMPORTS) take the suspender first; without JSPI the
// shim passes null and the call is bridged as any other.
const privilegedImports: Record<string, (...a: any[]) => bigint> = {};
for (const name of PRIVILEGED_HOST_FUNCTIONS)
  privilegedImports[name] = SUSPENDING_IMPORTS.has(name)
    ? (_s: unknown, ptr: number, len: number) => privileged(name, ptr, len)
    : (ptr: number, len: number) => privileged(name, ptr, len);

/** The vecron host functions (module `vecron`, or `env`): they act on the run in progress. */
const host = {
  log(level: number, ptr: number, len: number): void {
    len >>>= 0;
    const st = cur!;
    const keep = Math.min(len, MAX_LOG_BYTES, Math.max(0, HOST_BOUNDS.maxLogBytes - st.logBytes));
    charge(copyCost(keep));
    const bytes = read('log', ptr, len);
    if (st.logs.length >= MAX_LOG_LINES || keep === 0) {
      st.logsDropped++;
      return;
    }
    let message = utf8Lossy.decode(bytes.subarray(0, keep));
    if (keep < len) message += ` … (${len} bytes, truncated)`;
    st.logBytes += keep;
    st.logs.push({ level: LEVELS[level] ?? (level > 3 ? 'error' : 'debug'), message, at: new Date().toISOString() });
    checkStop();
  },
  get_context(keyPtr: number, keyLen: number): bigint {
    charge(jsonCost(keyLen >>> 0));
    const key = decodeKey('get_context key', keyPtr, keyLen);
    const st = cur!;
    if (st.replay !== null) return replayContext(st, st.replay, key);
    let bytes = st.answers.get(key);
    if (bytes === undefined && key === '' && Object.keys(st.contextWrites).length === 0) {
      // The whole context: its JSON text as given, not parsed and written again.
      const text = st.m.contextJson ?? st.m.inputJson;
      charge(jsonCost(text.length));
      bytes = encoder.encode(text);
      st.answers.set(key, bytes);
    }
    if (bytes === undefined) {
      if (st.context === undefined) {
        const text = st.m.contextJson ?? st.m.inputJson;
        charge(jsonCost(text.length)); // the first lookup parses the context: paid before
        st.context = JSON.parse(text) as unknown;
      }
      const v = lookupContext(st.context, st.contextWrites, key);
      if (v === undefined) {
        st.recorder?.contextRead(key, null);
        return 0n;
      }
      const text = JSON.stringify(v);
      st.recorder?.contextRead(key, text);
      bytes = encoder.encode(text);
      if (st.answerBytes + bytes.byteLength <= HOST_BOUNDS.maxContextWriteBytes) {
        st.answers.set(key, bytes);
        st.answerBytes += bytes.byteLength;
      }
    } else if (st.recorder !== null) st.recorder.contextRead(key, utf8Lossy.decode(bytes)); // a cached answer (or the whole context)
    charge(jsonCost(bytes.byteLength)); // before anything is written to the guest
    const p = guestAlloc('get_context', bytes);
    checkStop();
    return (BigInt(p) << 32n) | BigInt(bytes.byteLength);
  },
  set_context(keyPtr: number, keyLen: number, valPtr: number, valLen: number): number {
    keyLen >>>= 0;
    valLen >>>= 0;
    const st = cur!;
    // Sizes first: nothing is decoded past the cap.
    if (keyLen > HOST_BOUNDS.maxKeyBytes) return 1;
    charge(HOST_COSTS.call);
    if (st.contextBytes + keyLen + valLen > HOST_BOUNDS.maxContextWriteBytes) return 2;
    charge(jsonCost(keyLen + valLen));
    const kb = read('set_context key', keyPtr, keyLen);
    const vb = read('set_context value', valPtr, valLen);
    let key: string;
    let value: unknown;
    try {
      key = utf8.decode(kb);
      value = JSON.parse(utf8.decode(vb));
    } catch {
      return 1;
    }
    st.contextBytes += keyLen + valLen;
    st.contextWrites[key] = value;
    if (st.answers.size > 0) {
      st.answers.clear();
      st.answerBytes = 0;
    }
    checkStop();
    return 0;
  },
};
const allHost = { ...host, ...privilegedImports };
/** The imports of a module without WASI and without an imported memory: the same for every run. */
const plainImports: Record<string, Record<string, unknown>> = { ...rtImports, vecron: allHost, env: { ...allHost } };
if (suspendingHost !== null) {
  Object.assign(suspendingHost, allHost);
  for (const name of SUSPENDING_IMPORTS) {
    suspendingHost[name] = new JSPI_API.Function(
      { parameters: ['externref', 'i32', 'i32'], results: ['i64'] },
      // V8 takes the suspender: the function gets the rest of the arguments.
      (ptr: number, len: number) => privilegedSuspending(name as PrivilegedHostFunction, ptr, len),
      { suspending: 'first' },
    );
  }
  suspendingPlainImports = { ...rtImports, vecron: suspendingHost, env: { ...suspendingHost } };
}

/**
 * An instance made ahead of time, never used: after a run of a module without WASI or an imported
 * memory, the worker instantiates the module again while it waits for the next request, so the
 * next run of the same module finds its fresh instance ready.
 */
let spare: { key: string; jspi: boolean; instance: WasmInstanceObject } | null = null;

function prepareSpare(m: RunMessage): void {
  spare = null;
  if (m.usesWasi || m.importedMemory) return;
  const module = modules.get(m.key);
  if (!module) return;
  try {
    spare = { key: m.key, jspi: usesJspi(m), instance: new WA.Instance(module, usesJspi(m) ? suspendingPlainImports! : plainImports) };
  } catch {
    // The next run instantiates it again and reports the error.
  }
}

/** A call into the guest that the run's driver makes (runSync calls it, runSuspending through JSPI). */
interface GuestCall {
  exports: Record<string, unknown>;
  name: string;
  args: number[];
}

/** Runs a run whose guest calls never suspend (every host call answered before it returns). */
function runSync(m: RunMessage): WorkerRunResult {
  const g = runSteps(m);
  let step = g.next();
  while (!step.done) {
    const c = step.value;
    let v: unknown;
    try {
      v = (c.exports[c.name] as (...a: number[]) => unknown)(...c.args);
    } catch (e) {
      step = g.throw(e);
      continue;
    }
    step = g.next(v);
  }
  return step.value;
}

/**
 * Runs a run with JSPI: each guest call goes through its export's wrapper that takes the suspender
 * (instrument.ts), so that a suspending host call (http_request, db_query, file_*) suspends the guest's
 * stack while this thread's event loop does the call's I/O.
 */
async function runSuspending(m: RunMessage): Promise<WorkerRunResult> {
  const g = runSteps(m);
  let step = g.next(); // sets cur (runSteps' first statement)
  const st = cur!;
  try {
    while (!step.done) {
      const c = step.value;
      let v: unknown;
      try {
        v = await promising(c.exports, c.name, c.args.length)(...c.args);
      } catch (e) {
        step = g.throw(e);
        continue;
      }
      step = g.next(v);
    }
    return step.value;
  } finally {
    endIo(st);
  }
}

/** The export `name` as a JS function that returns a promise (its JSPI wrapper, made promising). */
function promising(exports: Record<string, unknown>, name: string, params: number): (...a: number[]) => Promise<unknown> {
  const f = exports[JSPI_EXPORT_PREFIX + name];
  if (typeof f !== 'function') throw new RunError('abi_error', `the module has no suspending wrapper for '${name}'`);
  return new JSPI_API.Function({ parameters: new Array(params).fill('i32'), results: ['externref'] }, f, { promising: 'first' }) as (
    ...a: number[]
  ) => Promise<unknown>;
}

function* runSteps(m: RunMessage): Generator<GuestCall, WorkerRunResult, unknown> {
  const st: RunState = {
    m,
    logs: [],
    contextWrites: {},
    logsDropped: 0,
    logBytes: 0,
    contextBytes: 0,
    memory: undefined,
    instance: undefined,
    context: undefined,
    answers: new Map(),
    answerBytes: 0,
    fuel: undefined,
    reserve: undefined,
    deadline: performance.now() + m.timeoutMs,
    hostCalls: [],
    hostCallSeq: 0,
    hostCallsDropped: 0,
    recordBytes: 0,
    recorder: m.replay === undefined && m.record !== undefined ? new RunRecorder(m.record) : null,
    replay: m.replay !== undefined ? new ReplayServer(m.replay) : null,
  };
  cur = st;
  const logs = st.logs;
  const contextWrites = st.contextWrites;
  let memory: WasmMemoryObject | undefined;
  let instance: WasmInstanceObject | undefined;
  let initFuelConsumed = 0;
  let fuelConsumed = 0;
  let phase: 'instantiate' | 'init' | 'call' = 'instantiate';
  let exitCode: number | null = null;
  const stdout = new Capture(m.maxOutputBytes, m.form === 'C');
  const stderr = new Capture(Math.min(m.maxOutputBytes, HOST_BOUNDS.maxStderrBytes), false);
  const inputBytes = encoder.encode(m.inputJson);

  let wasi: WASI | undefined;
  const plain = !m.usesWasi && !m.importedMemory;
  const jspiRun = usesJspi(m);
  const hostFns = jspiRun ? suspendingHost! : allHost;
  const imports: Record<string, Record<string, unknown>> = plain
    ? jspiRun
      ? suspendingPlainImports!
      : plainImports
    : { ...rtImports, vecron: hostFns, env: { ...hostFns } };
  if (m.usesWasi) {
    const stdin = new OpenFile(new File(m.form === 'C' ? inputBytes : new Uint8Array(0), { readonly: true }));
    const out = new ConsoleStdout((b: Uint8Array) => stdout.write(b));
    const err = new ConsoleStdout((b: Uint8Array) => stderr.write(b));
    const env = Object.entries(m.env).map(([k, v]) => `${k}=${v}`);
    wasi = new WASI([m.functionName], env, [stdin, out, err], { debug: false });
    const wasiImport = wasi.wasiImport as Record<string, unknown>;
    wasiImport.poll_oneoff = (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number =>
      pollOneoff(mem(), inPtr >>> 0, outPtr >>> 0, nsubs >>> 0, neventsPtr >>> 0);
    if (st.recorder !== null || st.replay !== null) hookWasiInputs(wasiImport, st.recorder, st.replay, mem);
    // Every WASI call: sizes checked and fuel charged before the shim runs, the stop checked after.
    imports.wasi_snapshot_preview1 = wrapWasi(wasiImport as Record<string, (...a: any[]) => unknown>, {
      charge,
      checkStop,
      memorySize: () => (memory ? memory.buffer.byteLength : 0),
      view: () => new DataView(mem().buffer),
    });
  }

  const result = (r: Partial<WorkerRunResult> & { ok: boolean }): WorkerRunResult => {
    if (st.logsDropped > 0) {
      logs.push({ level: 'warn', message: `${st.logsDropped} more log lines dropped (cap ${MAX_LOG_LINES})`, at: new Date().toISOString() });
    }
    return {
      fuelConsumed,
      initFuelConsumed,
      memoryPeakBytes: (memory ? memory.buffer.byteLength : 0) + tableBytes(instance, m),
      logs,
      contextWrites,
      stdout: stdout.size === 0 ? '' : utf8Lossy.decode(stdout.bytes()),
      stderr: stderr.size === 0 ? '' : utf8Lossy.decode(stderr.bytes()),
      exitCode,
      ...(st.hostCallSeq > 0 ? { hostCalls: st.hostCalls, hostCallsDropped: st.hostCallsDropped } : {}),
      ...(st.recorder !== null && !st.recorder.empty ? { record: st.recorder.result() } : {}), // empty: the main thread knows it
      ...(st.recorder !== null ? { inputBytes: inputBytes.byteLength } : {}), // the record's size is counted from it
      ...(st.replay !== null ? { replay: st.replay.report() } : {}),
      ...r,
    };
  };

  let budget = 0;
  let exportsObj: Record<string, unknown> = {};
  const measure = (): number => {
    const left = Number(fuelLeft(exportsObj));
    return budget - left;
  };

  try {
    try {
      if (m.importedMemory) {
        memory = new WA.Memory({ initial: m.importedMemory.min, maximum: m.importedMemory.max });
        imports.env.memory = memory;
      }
      if (plain && spare !== null && spare.key === m.key && spare.jspi === jspiRun) instance = spare.instance;
      else instance = new WA.Instance(modules.get(m.key)!, imports);
      spare = null;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/memory/i.test(msg) && (e instanceof RangeError || /allocat|maximum|size/i.test(msg))) {
        throw new RunError('memory_limit', `instantiation failed within the memory limit: ${msg}`);
      }
      throw new RunError('trap', `instantiation failed: ${msg}`);
    }
    exportsObj = instance.exports;
    if (jspiRun) (exportsObj[JSPI_MODE_EXPORT] as { value: number }).value = 1;
    st.fuel = exportsObj.__vecron_fuel as { value: bigint } | undefined;
    st.reserve = exportsObj.__vecron_fuel_reserve as { value: bigint } | undefined;
    if (!memory && instance.exports.memory) memory = instance.exports.memory as WasmMemoryObject;
    st.instance = instance;
    st.memory = memory;
    if (wasi) (wasi as unknown as { inst: unknown }).inst = { exports: { memory: memory ?? { buffer: new ArrayBuffer(0) } } };

    // Initialisation, with its own budget.
    phase = 'init';
    budget = m.initFuel;
    setFuel(exportsObj, m.initFuel, m.pollInterval);
    if (m.hasStart) {
      yield { exports: exportsObj, name: START_EXPORT, args: [] };
      if (fuelLeft(exportsObj) < 0n) throw new FuelExhaustedError();
    }
    if (m.callInitialize) {
      yield { exports: exportsObj, name: '_initialize', args: [] };
      if (fuelLeft(exportsObj) < 0n) throw new FuelExhaustedError();
    }
    initFuelConsumed = measure();

    phase = 'call';
    budget = m.fuel;
    setFuel(exportsObj, m.fuel, m.pollInterval);
    let outBytes: Uint8Array;
    if (m.form === 'C') {
      try {
        yield { exports: exportsObj, name: '_start', args: [] };
        exitCode = 0;
      } catch (e) {
        if (e instanceof WASIProcExit) exitCode = e.code;
        else throw e;
      }
      fuelConsumed = measure();
      if (fuelLeft(exportsObj) < 0n) throw new FuelExhaustedError();
      if (exitCode !== 0) {
        const tail = utf8Lossy.decode(stderr.bytes()).slice(-2000);
        throw new RunError('trap', `the command exited with code ${exitCode}${tail ? `; stderr: ${tail}` : ''}`);
      }
      outBytes = stdout.bytes();
    } else {
      const ptr = guestAlloc('input', inputBytes);
      const r = yield { exports: exportsObj, name: m.functionName, args: [ptr, inputBytes.byteLength] };
      fuelConsumed = measure();
      if (fuelLeft(exportsObj) < 0n) throw new FuelExhaustedError();
      const size = mem().buffer.byteLength;
      if (m.form === 'A') {
        const v = BigInt.asUintN(64, r as bigint);
        const outPtr = Number(v >> 32n);
        const outLen = Number(v & 0xffffffffn);
        if (outPtr + outLen > size) {
          throw new RunError(
            'abi_error',
            `${m.functionName} returned pointer ${outPtr} + length ${outLen} = ${outPtr + outLen}, outside the memory (${size} bytes)`,
          );
        }
        if (outLen > m.maxOutputBytes) {
          throw new RunError('output_too_large', `the output is ${outLen} bytes, above the cap of ${m.maxOutputBytes}`);
        }
        outBytes = new Uint8Array(mem().buffer, outPtr, outLen);
      } else {
        const p = (r as number) >>> 0;
        if (p >= size) throw new RunError('abi_error', `${m.functionName} returned pointer ${p}, outside the memory (${size} bytes)`);
        const scan = new Uint8Array(mem().buffer, p, Math.min(size - p, m.maxOutputBytes + 1));
        const end = scan.indexOf(0);
        if (end < 0) {
          if (scan.byteLength > m.maxOutputBytes) {
            throw new RunError('output_too_large', `the output string at ${p} has no NUL within the cap of ${m.maxOutputBytes} bytes`);
          }
          throw new RunError('abi_error', `the output string at ${p} is not NUL-terminated before the end of memory (${size} bytes)`);
        }
        outBytes = scan.subarray(0, end);
      }
    }
    let text: string;
    try {
      text = utf8.decode(outBytes);
    } catch {
      throw new RunError('invalid_output', `the output (${outBytes.byteLength} bytes) is not valid UTF-8`);
    }
    if (resultData && text.length * 3 + 8192 <= resultData.byteLength) {
      // Likely to fit the shared result buffer: the main thread parses it (once, there).
      lastOutputText = text;
      return result({ ok: true });
    }
    // A large output is parsed on the main thread, never on this small heap: a guest's JSON can
    // expand tenfold when parsed (`[{},{},...]`), and a heap overflow here would abort the process.
    return result({ ok: true, outputText: text });
  } catch (e) {
    if (phase === 'init') initFuelConsumed = exportsObj.__vecron_fuel ? Math.min(measure(), budget) : 0;
    else if (phase === 'call') fuelConsumed = Math.min(measure(), budget);
    const gf = exportsObj.__vecron_grow_failed as { value: number } | undefined;
    return result({ ok: false, error: classify(e, memory, m, phase, gf === undefined ? 0 : gf.value, tableBytes(instance, m)) });
  }
}

/**
 * WASI `poll_oneoff`, replacing the shim's (which busy-waits and does not write `nevents`): clock
 * subscriptions sleep with Atomics.wait on the interrupt flag, so a timeout still stops a sleeping
 * guest; fd subscriptions are reported ready at once.
 */
function pollOneoff(memory: WasmMemoryObject, inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
  const size = memory.buffer.byteLength;
  if (nsubs === 0) return 28; // EINVAL
  if (inPtr + nsubs * 48 > size || outPtr + nsubs * 32 > size || neventsPtr + 4 > size) return 21; // EFAULT
  const dv = new DataView(memory.buffer);
  let sleepNs = -1n;
  let clockSub = -1;
  const ready: number[] = [];
  for (let i = 0; i < nsubs; i++) {
    const at = inPtr + i * 48;
    const tag = dv.getUint8(at + 8);
    if (tag === 0) {
      const clock = dv.getUint32(at + 16, true);
      let timeout = dv.getBigUint64(at + 24, true);
      const flags = dv.getUint16(at + 40, true);
      if (flags & 1) {
        // absolute
        const now = clock === 0 ? BigInt(Date.now()) * 1_000_000n : BigInt(Math.round(performance.now() * 1e6));
        timeout = timeout > now ? timeout - now : 0n;
      }
      if (sleepNs < 0n || timeout < sleepNs) {
        sleepNs = timeout;
        clockSub = i;
      }
    } else ready.push(i);
  }
  if (ready.length === 0 && sleepNs > 0n) {
    const deadline = performance.now() + Number(sleepNs) / 1e6;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(ctl, CTL_INTERRUPT, 0, Math.min(left, 1000));
      const flag = Atomics.load(ctl, CTL_INTERRUPT);
      if (flag !== 0) throw new InterruptedError(flag);
    }
  }
  const events = ready.length > 0 ? ready : [clockSub];
  let n = 0;
  for (const i of events) {
    const sub = inPtr + i * 48;
    const ev = outPtr + n * 32;
    for (let k = 0; k < 32; k++) dv.setUint8(ev + k, 0);
    dv.setBigUint64(ev, dv.getBigUint64(sub, true), true); // userdata
    dv.setUint16(ev + 8, 0, true); // errno
    dv.setUint8(ev + 10, dv.getUint8(sub + 8)); // type
    n++;
  }
  dv.setUint32(neventsPtr, n, true);
  return 0;
}

function wasmStack(e: Error): string | undefined {
  const lines = (e.stack ?? '').split('\n').filter((l) => l.includes('wasm-function') || l.includes('wasm://'));
  return lines.length > 0 ? lines.map((l) => l.trim()).join('\n') : undefined;
}

/** Bytes of the instance's tables (TABLE_ENTRY_BYTES per entry), counted in memory_used_bytes. */
function tableBytes(instance: WasmInstanceObject | undefined, m: RunMessage): number {
  if (!instance || m.tableExports.length === 0) return 0;
  let n = 0;
  for (const name of m.tableExports) {
    const t = instance.exports[name] as { length?: number } | undefined;
    if (t && typeof t.length === 'number') n += t.length;
  }
  return n * TABLE_ENTRY_BYTES;
}

function classify(
  e: unknown,
  memory: WasmMemoryObject | undefined,
  m: RunMessage,
  phase: string,
  growFailed: number,
  tablesBytes: number,
): { code: WasmErrorCode; message: string; stack?: string } {
  const where = phase === 'init' ? ' during initialisation' : phase === 'instantiate' ? ' during instantiation' : '';
  if (e instanceof RunError) return { code: e.code, message: e.message };
  if (e instanceof FuelExhaustedError) {
    return { code: 'fuel_exhausted', message: `the run used up its fuel${where} (${phase === 'init' ? m.initFuel : m.fuel} units)` };
  }
  if (e instanceof InterruptedError) return { code: 'timeout', message: `the run was interrupted at its timeout${where}` };
  if (e instanceof WASIProcExit) {
    return { code: 'trap', message: `the module called proc_exit(${e.code})${where}` };
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return { code: 'stack_overflow', message: `stack overflow${where}: ${e.message}`, stack: wasmStack(e)?.split('\n').slice(0, 20).join('\n') };
  }
  const atClamp = memory !== undefined && memory.buffer.byteLength >= m.memoryMaxPages * 65536;
  if (e instanceof WA.RuntimeError) {
    if (growFailed === GROW_FAILED_TABLE) {
      return {
        code: 'memory_limit',
        message: `the module trapped (${e.message}) after a table.grow failed: its tables hold ${tablesBytes / TABLE_ENTRY_BYTES} entries, limit ${m.tableMaxEntries} entries (the step's table_limit)${where}`,
        stack: wasmStack(e),
      };
    }
    if (atClamp || growFailed !== 0) {
      const size = memory ? memory.buffer.byteLength : 0;
      return {
        code: 'memory_limit',
        message: `the module trapped (${e.message}) after ${growFailed ? 'a memory.grow failed' : 'its memory reached the limit'}: memory ${size / 65536} pages, limit ${m.memoryMaxPages} pages (${m.memoryMaxPages * 64} KiB)${where}`,
        stack: wasmStack(e),
      };
    }
    return { code: 'trap', message: `${e.message}${where}`, stack: wasmStack(e) };
  }
  if (e instanceof RangeError) {
    // A DataView / typed array access out of bounds in a WASI call.
    if (/memory/i.test(e.message) && /alloc/i.test(e.message)) return { code: 'memory_limit', message: e.message };
    return { code: 'abi_error', message: `a host call was given an out-of-bounds pointer${where}: ${e.message}` };
  }
  if (e instanceof Error) return { code: 'trap', message: `${e.name}: ${e.message}${where}`, stack: wasmStack(e) };
  return { code: 'trap', message: `the module raised ${String(e)}${where}` };
}

/** A run whose guest is suspended (JSPI): the worker goes back to its event loop until it ends. */
let pending: Promise<void> | null = null;

function handle(msg: ToWorker): void {
  if (msg.type === 'interrupt') {
    if (cur !== null && cur.m.id === msg.id) interruptIo(cur);
    return;
  }
  if (msg.type === 'evict') {
    modules.delete(msg.key);
    if (spare !== null && spare.key === msg.key) spare = null;
    return;
  }
  if (msg.type === 'host-test') {
    try {
      post({ type: 'host-test-result', id: msg.id, ok: true, value: callHost(msg.op, msg.payload) });
    } catch (e) {
      post({ type: 'host-test-result', id: msg.id, ok: false, error: (e as Error).message });
    }
    return;
  }
  if (msg.module) modules.set(msg.key, msg.module);
  let res: WorkerRunResult;
  if (!modules.has(msg.key)) {
    res = crashed(`module ${msg.key} was not sent to this worker`);
  } else if (usesJspi(msg)) {
    lastOutputText = undefined;
    pending = runSuspending(msg)
      .catch((e: unknown) => crashed(`the run failed in its worker: ${(e as Error)?.message ?? String(e)}`))
      .then((r) => {
        pending = null;
        deliver(msg, r);
      });
    return;
  } else {
    lastOutputText = undefined;
    res = runSync(msg);
  }
  deliver(msg, res);
}

/** Hands a run's result to the main thread, then gets ready for the next run. */
function deliver(msg: RunMessage, result: WorkerRunResult): void {
  let res = result;
  const text = res.ok ? lastOutputText : undefined;
  lastOutputText = undefined;
  // After reports on the port, the result goes on the port too, so that the main thread has them first.
  if (res.outputText !== undefined || cur?.reported === true || !writeResult(msg.id, res, text)) {
    if (text !== undefined) {
      // Handed over unparsed but did not fit after all: parse it here.
      const parsed = parseOutput(text);
      if (parsed.ok) res.output = parsed.output;
      else res = { ...res, ok: false, error: parsed.error };
    }
    // The state first: once the message is in, the main thread may already dispatch the next run
    // (which resets the state), so nothing may touch it after the post.
    Atomics.store(ctl, CTL_RESULT_STATE, RESULT_POSTED);
    Atomics.notify(ctl, CTL_RESULT_STATE);
    post({ type: 'result', id: msg.id, result: res });
  }
  cur = null;
  // Off the critical path: the main thread is taking the result meanwhile.
  if (collect !== null && res.memoryPeakBytes > COLLECT_AFTER_BYTES) collect();
  if (modules.has(msg.key)) prepareSpare(msg);
}

/**
 * The fast result channel: the result as JSON (the output as the guest's own JSON text, already
 * validated) in the shared result buffer, then the state slot set and notified. False when it does
 * not fit (the caller posts it instead).
 */
function writeResult(id: number, res: WorkerRunResult, outputText: string | undefined): boolean {
  if (!resultData) return false;
  let meta: string;
  try {
    meta = JSON.stringify(outputText !== undefined ? { ...res, output: undefined } : res);
  } catch {
    return false;
  }
  // Worst case 3 bytes per UTF-16 unit.
  if ((meta.length + (outputText?.length ?? 0)) * 3 > resultData.byteLength) return false;
  const a = encoder.encodeInto(meta, resultData);
  let outLen = -1;
  if (outputText !== undefined) outLen = encoder.encodeInto(outputText, resultData.subarray(a.written)).written;
  Atomics.store(ctl, CTL_RESULT_ID, id);
  Atomics.store(ctl, CTL_RESULT_META_LEN, a.written);
  Atomics.store(ctl, CTL_RESULT_OUT_LEN, outLen);
  Atomics.store(ctl, CTL_RESULT_STATE, RESULT_INLINE);
  Atomics.notify(ctl, CTL_RESULT_STATE);
  return true;
}

/**
 * After a message, wait a little on the doorbell (a futex, cheaper to wake than the event loop) and
 * take the next messages synchronously; then go back to the event loop.
 */
function serve(first: ToWorker): void {
  handle(first);
  let deadline = performance.now() + LINGER_MS;
  for (;;) {
    if (pending !== null) return; // a suspended guest's I/O needs the event loop
    const bell = Atomics.load(ctl, CTL_DOORBELL);
    const next = receiveMessageOnPort(runPort);
    if (next) {
      handle(next.message as ToWorker);
      deadline = performance.now() + LINGER_MS;
      continue;
    }
    // Spin briefly (a futex wake-up costs tens of us on a VM), then sleep on the doorbell.
    const spinEnd = performance.now() + SPIN_MS;
    while (Atomics.load(ctl, CTL_DOORBELL) === bell && performance.now() < spinEnd);
    if (Atomics.load(ctl, CTL_DOORBELL) !== bell) continue;
    const left = deadline - performance.now();
    if (left <= 0) return;
    Atomics.wait(ctl, CTL_DOORBELL, bell, left);
  }
}

runPort.on('message', serve);
post({ type: 'ready' });
