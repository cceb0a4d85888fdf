/**
 * Speculative inline runs (issue 19): a run executed on the CALLING thread, in a fresh instance,
 * within a slice small enough that it cannot hold the event loop (a fuel slice and a deadline),
 * whose result counts only when it is certainly the one the worker would give. Anything else (the
 * slice runs out, a privileged host call that would need the async bridge, any failure at all) is a
 * Spill: everything the attempt did is dropped (it only wrote to its own instance and to buffers of
 * this function: logs, context writes and the record are returned, never published, and no host
 * I/O was started) and the caller runs the request from the start in a worker, with the full limits.
 *
 * Why a success is the worker's result: the runs taken here have no ambient inputs (a WASI call
 * spills before it is served: no clocks, random or stdin; so do privileged host functions), so a run is
 * a function of its module, input and context; fuel is deterministic and the slice is at most the
 * run's fuel, so a run that finishes within the slice finishes within the limit with the same fuel;
 * memory and tables are clamped in the module itself (the instrumenter), the same on any thread;
 * the main thread's stack is no larger than the worker's (index.ts takes only runs whose stackKb
 * is at least the main thread's V8 stack, and gives workers exactly stackKb of usable stack), so a
 * recursion that fits here fits there. Why failures spill: every error code then comes from one
 * place, the worker (its messages, its stack sizes, its tiering), and a failing run is never on the
 * latency-critical path.
 *
 * The host functions below mirror worker.ts (log, get_context, set_context) charge for charge, so
 * the fuel a run reports is the same on either path (test/wasm/runtime-inline.test.ts compares).
 */
import { HOST_BOUNDS, HOST_COSTS, TABLE_ENTRY_BYTES } from '../instrument/costs.ts';
import { FuelExhaustedError, START_EXPORT, fuelLeft, runtimeImports, setFuel } from '../instrument/index.ts';
import { lookupContext } from './context-lookup.ts';
import { parseOutput, type RunMessage, type WorkerRunResult } from './protocol.ts';
import { RunRecorder } from './run-record.ts';
import { WA, type WasmInstanceObject, type WasmMemoryObject, type WasmModuleObject } from './wasm-api.ts';
import type { WasmLogLine } from './types.ts';
import { PRIVILEGED_HOST_FUNCTIONS } from '../host/types.ts';
import { INLINE_MEMORY_MODULE, INLINE_MEMORY_NAME } from './inline-memory.ts';
import { WASI_MODULE, WASI_PREVIEW1_FUNCTIONS } from './imports.ts';

/** Why an inline attempt was given up (the run then goes to a worker). */
export type SpillReason = 'slice' | 'host_call' | 'failed';

export class Spill extends Error {
  constructor(readonly reason: SpillReason) {
    super(`inline run spilled: ${reason}`);
  }
}

export interface InlineSlice {
  /** Fuel of the slice for the call (and, separately, for initialisation): at most the run's own. */
  fuel: number;
  /** performance.now() past which the attempt spills (checked at each poll and host call). */
  deadline: number;
}

const MAX_LOG_LINES = HOST_BOUNDS.maxLogLines;
const MAX_LOG_BYTES = HOST_BOUNDS.maxLogLineBytes;
const LEVELS: WasmLogLine['level'][] = ['debug', 'info', 'warn', 'error'];
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/** The attempt in progress (one at a time: the calling thread runs it to its end). */
interface Attempt {
  m: RunMessage;
  slice: InlineSlice;
  logs: WasmLogLine[];
  logsDropped: number;
  logBytes: number;
  contextWrites: Record<string, unknown>;
  contextBytes: number;
  context: unknown;
  answers: Map<string, Uint8Array>;
  answerBytes: number;
  memory: WasmMemoryObject | undefined;
  instance: WasmInstanceObject | undefined;
  fuel: { value: bigint } | undefined;
  reserve: { value: bigint } | undefined;
  recorder: RunRecorder | null;
  /** The phase in progress runs on a slice smaller than its own fuel (running out is then the slice's end, not the run's). */
  sliced: boolean;
}
let cur: Attempt | null = null;

/** The deadline, seen at every poll of the instrumented code and at every host call. */
function checkStop(): void {
  if (cur !== null && performance.now() > cur.slice.deadline) throw new Spill('slice');
}

function charge(units: number): void {
  checkStop();
  const st = cur;
  if (st === null || st.fuel === undefined || st.reserve === undefined) return;
  const c = st.fuel.value - BigInt(Math.ceil(units));
  st.fuel.value = c;
  if (c + st.reserve.value < 0n) throw new FuelExhaustedError();
}

const copyCost = (bytes: number): number => HOST_COSTS.call + bytes / HOST_COSTS.copyBytesPerUnit;
const jsonCost = (bytes: number): number => HOST_COSTS.call + bytes / HOST_COSTS.jsonBytesPerUnit;

function mem(): WasmMemoryObject {
  const memory = cur!.memory;
  if (!memory) throw new Spill('failed');
  return memory;
}
function read(ptr: number, len: number): Uint8Array {
  ptr >>>= 0;
  len >>>= 0;
  const size = mem().buffer.byteLength;
  if (ptr + len > size) throw new Spill('failed');
  return new Uint8Array(mem().buffer, ptr, len);
}
function guestAlloc(bytes: Uint8Array): number {
  const alloc = cur!.instance!.exports.alloc as (n: number) => number;
  if (typeof alloc !== 'function') throw new Spill('failed');
  const p = alloc(bytes.byteLength) >>> 0;
  if (p + bytes.byteLength > mem().buffer.byteLength) throw new Spill('failed');
  new Uint8Array(mem().buffer).set(bytes, p);
  return p;
}

/** log, get_context and set_context as worker.ts serves them (same charges, same bounds). */
const host = {
  log(level: number, ptr: number, len: number): void {
    len >>>= 0;
    const st = cur!;
    const keep = Math.min(len, MAX_LOG_BYTES, Math.max(0, HOST_BOUNDS.maxLogBytes - st.logBytes));
    charge(copyCost(keep));
    const bytes = read(ptr, len);
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
    if (keyLen >>> 0 > HOST_BOUNDS.maxKeyBytes) throw new Spill('failed');
    let key: string;
    try {
      key = utf8.decode(read(keyPtr, keyLen));
    } catch (e) {
      if (e instanceof Spill) throw e;
      throw new Spill('failed');
    }
    const st = cur!;
    let bytes = st.answers.get(key);
    if (bytes === undefined && key === '' && Object.keys(st.contextWrites).length === 0) {
      const text = st.m.contextJson ?? st.m.inputJson;
      charge(jsonCost(text.length));
      bytes = encoder.encode(text);
      st.answers.set(key, bytes);
    }
    if (bytes === undefined) {
      if (st.context === undefined) {
        const text = st.m.contextJson ?? st.m.inputJson;
        charge(jsonCost(text.length));
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
    } else if (st.recorder !== null) st.recorder.contextRead(key, utf8Lossy.decode(bytes));
    charge(jsonCost(bytes.byteLength));
    const p = guestAlloc(bytes);
    checkStop();
    return (BigInt(p) << 32n) | BigInt(bytes.byteLength);
  },
  set_context(keyPtr: number, keyLen: number, valPtr: number, valLen: number): number {
    keyLen >>>= 0;
    valLen >>>= 0;
    const st = cur!;
    if (keyLen > HOST_BOUNDS.maxKeyBytes) return 1;
    charge(HOST_COSTS.call);
    if (st.contextBytes + keyLen + valLen > HOST_BOUNDS.maxContextWriteBytes) return 2;
    charge(jsonCost(keyLen + valLen));
    const kb = read(keyPtr, keyLen);
    const vb = read(valPtr, valLen);
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

/** A privileged host function or a WASI call needs the worker (served there, or bridged): the attempt spills before it does anything. */
const spillAtCall = (): never => {
  throw new Spill('host_call');
};
const allHost: Record<string, unknown> = { ...host };
for (const name of PRIVILEGED_HOST_FUNCTIONS) allHost[name] = spillAtCall;
/**
 * WASI: a module may import it (wasi-libc links fd_write, fd_seek, ... for stdio) and still never
 * call it on the path a run takes. Any call spills, before the shim would have read a clock,
 * random bytes or stdin, so what runs inline stays a function of module, input and context.
 */
const wasiSpill: Record<string, unknown> = {};
for (const name of WASI_PREVIEW1_FUNCTIONS) wasiSpill[name] = spillAtCall;
const imports: Record<string, Record<string, unknown>> = {
  ...runtimeImports({ onPoll: checkStop }),
  vecron: allHost,
  env: { ...allHost },
  [WASI_MODULE]: wasiSpill,
};

function tableBytes(instance: WasmInstanceObject, m: RunMessage): number {
  let n = 0;
  for (const name of m.tableExports) {
    const t = instance.exports[name] as { length?: number } | undefined;
    if (t && typeof t.length === 'number') n += t.length;
  }
  return n * TABLE_ENTRY_BYTES;
}

/** A phase's budget: the slice, or the run's own fuel when that is smaller (then running out is the run's own result: still spilled, the worker reports it). */
const sliceOf = (own: number, slice: number): number => Math.min(own, slice);

/**
 * Runs `m` (form A or B, no WASI) on this thread within `slice`. Returns the run's result, with its
 * output parsed, or throws Spill. Never lets a guest's exception out as anything but a Spill.
 */
export function runInline(module: WasmModuleObject, m: RunMessage, slice: InlineSlice, memory?: WasmMemoryObject): WorkerRunResult {
  if (cur !== null) throw new Spill('failed'); // not re-entrant (cannot happen: no host function calls out)
  const st: Attempt = {
    m,
    slice,
    logs: [],
    logsDropped: 0,
    logBytes: 0,
    contextWrites: {},
    contextBytes: 0,
    context: undefined,
    answers: new Map(),
    answerBytes: 0,
    memory: undefined,
    instance: undefined,
    fuel: undefined,
    reserve: undefined,
    recorder: m.record !== undefined ? new RunRecorder(m.record) : null,
    sliced: false,
  };
  cur = st;
  try {
    return attempt(module, m, st, memory);
  } catch (e) {
    if (e instanceof Spill) throw e;
    if (e instanceof FuelExhaustedError && st.sliced) throw new Spill('slice');
    // Fuel, a trap, a stack overflow, memory: the worker gives the run's own error.
    throw new Spill('failed');
  } finally {
    cur = null;
  }
}

/**
 * `memory`: a memory from MemoryPool for a module variant that imports it (inline-memory.ts);
 * else the module's own memory, or, for a module that imports one, a new one as the worker makes.
 */
function attempt(module: WasmModuleObject, m: RunMessage, st: Attempt, memory: WasmMemoryObject | undefined): WorkerRunResult {
  let runImports = imports;
  if (memory !== undefined) {
    st.memory = memory;
    runImports = { ...imports, [INLINE_MEMORY_MODULE]: { [INLINE_MEMORY_NAME]: memory } };
  } else if (m.importedMemory) {
    runImports = { ...imports, env: { ...(imports.env as object) } };
    st.memory = new WA.Memory({ initial: m.importedMemory.min, maximum: m.importedMemory.max });
    (runImports.env as Record<string, unknown>).memory = st.memory;
  }
  const instance = new WA.Instance(module, runImports);
  const ex = instance.exports;
  st.instance = instance;
  st.fuel = ex.__vecron_fuel as { value: bigint } | undefined;
  st.reserve = ex.__vecron_fuel_reserve as { value: bigint } | undefined;
  if (!st.memory && ex.memory) st.memory = ex.memory as WasmMemoryObject;

  // Initialisation: its own budget (a slice of it); out of the slice spills even when that is all of initFuel.
  let budget = sliceOf(m.initFuel, st.slice.fuel);
  st.sliced = budget < m.initFuel;
  setFuel(ex, budget, m.pollInterval);
  if (m.hasStart) {
    (ex[START_EXPORT] as () => void)();
    if (fuelLeft(ex) < 0n) throw new FuelExhaustedError();
  }
  if (m.callInitialize) {
    (ex._initialize as () => void)();
    if (fuelLeft(ex) < 0n) throw new FuelExhaustedError();
  }
  const initFuelConsumed = budget - Number(fuelLeft(ex));

  budget = sliceOf(m.fuel, st.slice.fuel);
  st.sliced = budget < m.fuel;
  setFuel(ex, budget, m.pollInterval);
  const input = encoder.encode(m.inputJson);
  const ptr = guestAlloc(input);
  const r = (ex[m.functionName] as (p: number, l: number) => unknown)(ptr, input.byteLength);
  if (fuelLeft(ex) < 0n) throw new FuelExhaustedError();
  const fuelConsumed = budget - Number(fuelLeft(ex));
  const size = mem().buffer.byteLength;
  let out: Uint8Array;
  if (m.form === 'A') {
    const v = BigInt.asUintN(64, r as bigint);
    const outPtr = Number(v >> 32n);
    const outLen = Number(v & 0xffffffffn);
    if (outPtr + outLen > size || outLen > m.maxOutputBytes) throw new Spill('failed');
    out = new Uint8Array(mem().buffer, outPtr, outLen);
  } else {
    const p = (r as number) >>> 0;
    if (p >= size) throw new Spill('failed');
    const scan = new Uint8Array(mem().buffer, p, Math.min(size - p, m.maxOutputBytes + 1));
    const end = scan.indexOf(0);
    if (end < 0) throw new Spill('failed');
    out = scan.subarray(0, end);
  }
  const text = utf8.decode(out); // invalid UTF-8 throws: spilled
  const parsed = parseOutput(text);
  if (!parsed.ok) throw new Spill('failed');
  if (st.logsDropped > 0) {
    st.logs.push({ level: 'warn', message: `${st.logsDropped} more log lines dropped (cap ${MAX_LOG_LINES})`, at: new Date().toISOString() });
  }
  const rec = st.recorder;
  // One literal whether or not the run records (its record fields then undefined): one shape, and
  // no properties added after (this object stays on this thread; resultOf copies what it needs).
  const res: WorkerRunResult & { outputJson?: string; outputBytes?: number } = {
    ok: true,
    output: parsed.output,
    fuelConsumed,
    initFuelConsumed,
    memoryPeakBytes: size + tableBytes(instance, m),
    logs: st.logs,
    contextWrites: st.contextWrites,
    stdout: '',
    stderr: '',
    exitCode: null,
    // Nothing kept (no call, no context read): the main thread knows the empty record, as from a worker.
    record: rec !== null && !rec.empty ? rec.result() : undefined,
    // A recorded run keeps its output as the guest wrote it (the record is written from it), and the sizes.
    outputJson: rec !== null ? text : undefined,
    inputBytes: rec !== null ? input.byteLength : undefined,
    outputBytes: rec !== null ? out.byteLength : undefined,
  };
  return res;
}
