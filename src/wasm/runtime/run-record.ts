/**
 * The worker's side of the complete run record (issue 20, src/wasm/replay/types.ts): while a run
 * records, every privileged host call (request and answer texts, exactly as the guest wrote and
 * read them) and every WASI input (clock readings, random bytes, stdin) is kept, in order, within
 * the record's bounds; past a bound nothing more is kept and the cut is named (the run is then not
 * replayable). While a run replays, the same things are served from a record instead of live, and
 * the first place where the guest asks for something the record does not hold is kept as the
 * divergence (the guest gets an `unavailable` answer, never a live one).
 *
 * Kept apart from worker.ts so that the host-call path there only gains a few hooks.
 */
import type { ResolvedLimits, RunRecordParts } from './types.ts';
import type { Divergence, RecordCut, RecordedClock, RecordedContextRead, RecordedHostCall, RecordedWasi } from '../replay/types.ts';

/** Bounds of one run's record (config: VECRON_WASM_RECORD_MAX_BYTES; the calls cap). */
export interface RecordSpec {
  /** About the bytes of all kept texts together (requests, answers, random bytes as base64). */
  maxBytes: number;
  /** Host calls kept at most. */
  maxCalls: number;
}

/** What the worker hands back of a recorded run. */
export interface WorkerRecord {
  host_calls: RecordedHostCall[];
  context_reads: RecordedContextRead[];
  wasi: RecordedWasi;
  cut: RecordCut[];
  /** About the bytes kept. */
  bytes: number;
}

/** What a replay is served from: the record's host calls and WASI inputs. */
export interface ReplayFeed {
  host_calls: RecordedHostCall[];
  wasi: RecordedWasi;
  context_reads: RecordedContextRead[];
  /** The size the run's context had (its parse is charged by it). */
  context_chars: number;
}

/** What the worker hands back of a replayed run. */
export interface WorkerReplayReport {
  /** The first divergence seen while the run went (host calls and WASI reads, in the order they happened). */
  divergence: Divergence | null;
  host_calls: number;
  clocks: number;
  random: number;
  stdin_bytes: number;
  context_reads: number;
  /** The replay's output JSON text exactly as read from the guest (set where the run's output was read; absent: not kept). */
  outputJson?: string;
}

/** One answered call as the worker has it (host-calls.ts Answer, the parts the record keeps). */
export interface CallAnswer {
  text: string;
  outcome: string;
  served: 'worker' | 'host';
  target: string | null;
  permission?: string;
}

/** The empty record: a recorded run that kept nothing (no call, no WASI input, or it ended before its worker sent one). */
const NONE = Object.freeze([]) as unknown as never[];
const EMPTY_RECORD: WorkerRecord = Object.freeze({
  host_calls: NONE,
  context_reads: NONE,
  wasi: Object.freeze({ clocks: NONE, random: NONE, stdin_bytes: 0 }),
  cut: NONE,
  bytes: 0,
});

/**
 * The runtime's part of a recorded run's record, wherever the run executed (a worker, or the calling
 * thread): what the recorder kept plus the texts the run already had. Nothing is serialized or
 * copied here: the record is written from these texts later (src/wasm/replay/record.ts).
 */
export function recordPartsOf(o: {
  /** RunRecorder.result() of the run (undefined: nothing was kept). */
  worker: WorkerRecord | undefined;
  moduleHash: string;
  functionName: string;
  limits: ResolvedLimits;
  maxHostRequestBytes: number;
  maxHostResponseBytes: number;
  /** The input's JSON text as the guest got it. */
  inputJson: string;
  /** The context's JSON text when it is not the input's (its length is what get_context is charged by). */
  contextJson: string | undefined;
  env: Record<string, string>;
  /** The output's JSON text as read from the guest (undefined: failed, or not kept). */
  outputJson: string | undefined;
  /** UTF-8 bytes of the input's and the output's texts, when the run counted them. */
  inputBytes?: number;
  outputBytes?: number;
}): RunRecordParts {
  const w = o.worker ?? EMPTY_RECORD; // frozen: shared by every run that kept nothing
  const l = o.limits;
  // Field by field, no spreads: this runs once per recorded run.
  const parts: RunRecordParts = {
    host_calls: w.host_calls,
    context_reads: w.context_reads,
    wasi: w.wasi,
    cut: w.cut,
    bytes: w.bytes,
    moduleHash: o.moduleHash,
    functionName: o.functionName,
    limits: {
      fuel: l.fuel,
      memoryMb: l.memoryMb,
      tableLimit: l.tableLimit,
      timeoutMs: l.timeoutMs,
      stackKb: l.stackKb,
      maxOutputBytes: l.maxOutputBytes,
      initFuel: l.initFuel,
      maxHostRequestBytes: o.maxHostRequestBytes,
      maxHostResponseBytes: o.maxHostResponseBytes,
    },
    inputJson: o.inputJson,
    contextChars: (o.contextJson ?? o.inputJson).length,
    env: o.env,
  };
  if (o.outputJson !== undefined) {
    parts.outputJson = o.outputJson;
    if (o.outputBytes !== undefined) parts.outputBytes = o.outputBytes;
  }
  if (o.inputBytes !== undefined) parts.inputBytes = o.inputBytes;
  return parts;
}

/** Bounded length of a text shown in a divergence. */
const SHOW = 2000;
const show = (s: string): string => (s.length > SHOW ? `${s.slice(0, SHOW)}… (${s.length} chars)` : s);

export class RunRecorder {
  // Each list is made on its first entry (most runs keep none: a recorder costs a run almost nothing).
  private calls: RecordedHostCall[] | null = null;
  private reads: RecordedContextRead[] | null = null;
  private clocks: RecordedClock[] | null = null;
  private random: string[] | null = null;
  private stdinBytes = 0;
  private cuts: RecordCut[] | null = null;
  private bytes = 0;
  private full = false;

  constructor(private readonly spec: RecordSpec) {}

  private cut(c: RecordCut): void {
    this.full = true;
    (this.cuts ??= []).push(c);
  }

  private room(n: number, path: string): boolean {
    if (this.full) return false;
    if (this.bytes + n > this.spec.maxBytes) {
      this.cut({ path, reason: `the record reached its bound of ${this.spec.maxBytes} bytes (VECRON_WASM_RECORD_MAX_BYTES)` });
      return false;
    }
    this.bytes += n;
    return true;
  }

  /** A privileged host call: `request` is its text when it was decoded (null: refused before, e.g. too_large). */
  call(seq: number, fn: string, request: string | null, requestBytes: number, a: CallAnswer): void {
    if (this.full) return;
    if ((this.calls?.length ?? 0) >= this.spec.maxCalls) {
      this.cut({ path: 'host_calls', reason: `more than ${this.spec.maxCalls} host calls` });
      return;
    }
    const req = request ?? '';
    if (!this.room(req.length + a.text.length + 128, `host_calls[${seq}]`)) return;
    const c: RecordedHostCall = { seq, function: fn, request: req, response: a.text, outcome: a.outcome, served: a.served, target: a.target };
    if (request === null) c.request_bytes = requestBytes;
    if (a.permission !== undefined) c.permission = a.permission;
    (this.calls ??= []).push(c);
  }

  clock(clock: number, ns: bigint): void {
    if (this.room(32, `wasi.clocks[${this.clocks?.length ?? 0}]`)) (this.clocks ??= []).push({ clock, ns: ns.toString() });
  }

  randomBytes(b: Uint8Array): void {
    if (this.room(Math.ceil(b.byteLength / 3) * 4 + 4, `wasi.random[${this.random?.length ?? 0}]`)) {
      (this.random ??= []).push(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64'));
    }
  }

  stdin(n: number): void {
    this.stdinBytes += n;
  }

  contextRead(key: string, value: string | null): void {
    if (this.room(key.length + (value?.length ?? 4) + 16, `context_reads[${this.reads?.length ?? 0}]`)) (this.reads ??= []).push({ key, value });
  }

  /** Nothing kept (no host call, read, WASI input or cut): the worker then sends no record at all. */
  get empty(): boolean {
    return this.calls === null && this.reads === null && this.clocks === null && this.random === null && this.stdinBytes === 0 && this.cuts === null;
  }

  result(): WorkerRecord {
    return {
      host_calls: this.calls ?? [],
      context_reads: this.reads ?? [],
      wasi: { clocks: this.clocks ?? [], random: this.random ?? [], stdin_bytes: this.stdinBytes },
      cut: this.cuts ?? [],
      bytes: this.bytes,
    };
  }
}

/** Serves a replay from a record, keeping the first divergence. */
export class ReplayServer {
  private nextCall = 0;
  private nextClock = 0;
  private nextRandom = 0;
  private nextRead = 0;
  private stdinBytes = 0;
  divergence: Divergence | null = null;

  constructor(private readonly feed: ReplayFeed) {}

  private diverge(d: Divergence): void {
    if (this.divergence === null) this.divergence = d;
  }

  /**
   * The recorded answer of the call at this position, or null when the replay's call differs from
   * the record's (function, request) or is past its end: the divergence is kept, and the caller
   * answers `unavailable`, never live. `request` null: the call was refused before it was decoded.
   */
  call(seq: number, fn: string, request: string | null, requestBytes: number): RecordedHostCall | null {
    this.nextCall = seq + 1;
    const rec = this.feed.host_calls[seq];
    if (rec === undefined) {
      this.diverge({
        kind: 'host_call_extra',
        call_index: seq,
        function: fn,
        message: `host call #${seq} (${fn}) is not in the record, which holds ${this.feed.host_calls.length} calls: answered 'unavailable', not sent`,
        actual: request === null ? { request_bytes: requestBytes } : show(request),
      });
      return null;
    }
    if (rec.function !== fn) {
      this.diverge({
        kind: 'host_call_function',
        call_index: seq,
        function: rec.function,
        message: `host call #${seq}: the record has ${rec.function}, the replay called ${fn}`,
        expected: rec.function,
        actual: fn,
      });
      return null;
    }
    const same = request === null ? rec.request === '' && (rec.request_bytes ?? requestBytes) === requestBytes : rec.request === request;
    if (!same) {
      this.diverge({
        kind: 'host_call_request',
        call_index: seq,
        function: fn,
        message: `host call #${seq} (${fn}): the request differs${request !== null ? `: ${describeTextDiff(rec.request, request)}` : ''}`,
        expected: show(rec.request),
        actual: request === null ? { request_bytes: requestBytes } : show(request),
      });
      return null;
    }
    return rec;
  }

  /** The recorded reading of a clock, or null (divergence kept) when the record has none there or another clock. */
  clock(clock: number): bigint | null {
    const i = this.nextClock++;
    const rec = this.feed.wasi.clocks[i];
    if (rec === undefined || rec.clock !== clock) {
      this.diverge({
        kind: 'wasi_clock',
        call_index: i,
        function: 'clock_time_get',
        message:
          rec === undefined
            ? `clock reading #${i} (clock ${clock}) is past the record's ${this.feed.wasi.clocks.length} readings`
            : `clock reading #${i}: the record read clock ${rec.clock}, the replay clock ${clock}`,
        expected: rec?.clock,
        actual: clock,
      });
      return null;
    }
    return BigInt(rec.ns);
  }

  /** The recorded bytes of a random_get of `len` bytes, or null (divergence kept). */
  random(len: number): Uint8Array | null {
    const i = this.nextRandom++;
    const rec = this.feed.wasi.random[i];
    const bytes = rec === undefined ? undefined : Buffer.from(rec, 'base64');
    if (bytes === undefined || bytes.byteLength !== len) {
      this.diverge({
        kind: 'wasi_random',
        call_index: i,
        function: 'random_get',
        message:
          bytes === undefined
            ? `random_get #${i} (${len} bytes) is past the record's ${this.feed.wasi.random.length} reads`
            : `random_get #${i}: the record read ${bytes.byteLength} bytes, the replay ${len}`,
        expected: bytes?.byteLength,
        actual: len,
      });
      return null;
    }
    return bytes;
  }

  stdin(n: number): void {
    this.stdinBytes += n;
  }

  get contextChars(): number {
    return this.feed.context_chars;
  }

  /** The recorded answer of this get_context (null: no such key, or a read the record does not hold: the divergence is kept). */
  contextRead(key: string): string | null {
    const i = this.nextRead++;
    const rec = this.feed.context_reads[i];
    if (rec === undefined || rec.key !== key) {
      this.diverge({
        kind: 'context_read',
        call_index: i,
        function: 'get_context',
        message:
          rec === undefined
            ? `get_context #${i} (${JSON.stringify(key)}) is past the record's ${this.feed.context_reads.length} reads`
            : `get_context #${i}: the record read ${JSON.stringify(rec.key)}, the replay ${JSON.stringify(key)}`,
        expected: rec?.key,
        actual: key,
      });
      return null;
    }
    return rec.value;
  }

  /** At the end of the run: fewer calls or reads than the record holds is a divergence too. */
  report(): WorkerReplayReport {
    const f = this.feed;
    if (this.nextCall < f.host_calls.length) {
      const rec = f.host_calls[this.nextCall];
      this.diverge({
        kind: 'host_call_missing',
        call_index: this.nextCall,
        function: rec.function,
        message: `the replay made ${this.nextCall} host calls; the record holds ${f.host_calls.length} (the first one not made: #${this.nextCall}, ${rec.function})`,
        expected: f.host_calls.length,
        actual: this.nextCall,
      });
    }
    if (this.nextClock < f.wasi.clocks.length) {
      this.diverge({
        kind: 'wasi_clock',
        call_index: this.nextClock,
        function: 'clock_time_get',
        message: `the replay read the clock ${this.nextClock} times; the record ${f.wasi.clocks.length} times`,
        expected: f.wasi.clocks.length,
        actual: this.nextClock,
      });
    }
    if (this.nextRandom < f.wasi.random.length) {
      this.diverge({
        kind: 'wasi_random',
        call_index: this.nextRandom,
        function: 'random_get',
        message: `the replay called random_get ${this.nextRandom} times; the record ${f.wasi.random.length} times`,
        expected: f.wasi.random.length,
        actual: this.nextRandom,
      });
    }
    if (this.nextRead < f.context_reads.length) {
      this.diverge({
        kind: 'context_read',
        call_index: this.nextRead,
        function: 'get_context',
        message: `the replay called get_context ${this.nextRead} times; the record ${f.context_reads.length} times`,
        expected: f.context_reads.length,
        actual: this.nextRead,
      });
    }
    if (this.stdinBytes !== f.wasi.stdin_bytes) {
      this.diverge({
        kind: 'wasi_stdin',
        function: 'fd_read',
        message: `the replay read ${this.stdinBytes} bytes of stdin; the record ${f.wasi.stdin_bytes}`,
        expected: f.wasi.stdin_bytes,
        actual: this.stdinBytes,
      });
    }
    return {
      divergence: this.divergence,
      host_calls: this.nextCall,
      clocks: this.nextClock,
      random: this.nextRandom,
      stdin_bytes: this.stdinBytes,
      context_reads: this.nextRead,
    };
  }
}

/** Where two JSON request texts first differ, in a few words (`at $.sql: "a" -> "b"`), or where the texts do. */
export function describeTextDiff(expected: string, actual: string): string {
  try {
    const d = firstJsonDiff(JSON.parse(expected), JSON.parse(actual), '$');
    if (d) return d;
  } catch {
    // not JSON: the texts
  }
  let i = 0;
  while (i < expected.length && i < actual.length && expected[i] === actual[i]) i++;
  return `the texts differ at character ${i}: ${JSON.stringify(expected.slice(i, i + 40))} -> ${JSON.stringify(actual.slice(i, i + 40))}`;
}

function firstJsonDiff(a: unknown, b: unknown, path: string): string | null {
  if (a === b) return null;
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(a) !== kind(b) || typeof a !== 'object' || a === null) {
    const s = (v: unknown) => {
      const t = JSON.stringify(v) ?? 'undefined';
      return t.length > 120 ? `${t.slice(0, 120)}…` : t;
    };
    return `at ${path}: ${s(a)} -> ${s(b)}`;
  }
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    for (let i = 0; i < Math.max(a.length, bb.length); i++) {
      if (i >= a.length) return `at ${path}[${i}]: an item more`;
      if (i >= bb.length) return `at ${path}[${i}]: an item less`;
      const d = firstJsonDiff(a[i], bb[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])];
  for (const k of keys) {
    const p = /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
    if (!(k in ao)) return `at ${p}: a key more`;
    if (!(k in bo)) return `at ${p}: a key less`;
    const d = firstJsonDiff(ao[k], bo[k], p);
    if (d) return d;
  }
  // Same values, other key order or spacing.
  return 'the same JSON value, another text (key order or spacing)';
}

type WasiFn = (...a: any[]) => unknown;

/**
 * Puts the record (or the replay) between the guest and the WASI inputs of the shim: clock_time_get,
 * random_get and stdin's fd_read. Called on the shim's functions before the guard wraps them (the
 * guard's size checks and charges stay in front, the same in a replay as in the run).
 */
export function hookWasiInputs(wasi: Record<string, unknown>, rec: RunRecorder | null, rep: ReplayServer | null, memory: () => { buffer: ArrayBuffer }): void {
  const clock = wasi.clock_time_get as WasiFn;
  const random = wasi.random_get as WasiFn;
  const fdRead = wasi.fd_read as WasiFn;
  if (rep !== null) {
    wasi.clock_time_get = (id: number, _precision: bigint, ptr: number): number => {
      const v = rep.clock(id >>> 0);
      new DataView(memory().buffer).setBigUint64(ptr >>> 0, v ?? 0n, true); // past the record: 0, and the divergence is kept
      return 0;
    };
    wasi.random_get = (ptr: number, len: number): number => {
      const b = rep.random(len >>> 0);
      const dst = new Uint8Array(memory().buffer, ptr >>> 0, len >>> 0);
      if (b === null) dst.fill(0);
      else dst.set(b);
      return 0;
    };
  } else if (rec !== null) {
    wasi.clock_time_get = (id: number, precision: bigint, ptr: number): unknown => {
      const r = clock(id, precision, ptr);
      if (r === 0) rec.clock(id >>> 0, new DataView(memory().buffer).getBigUint64(ptr >>> 0, true));
      return r;
    };
    wasi.random_get = (ptr: number, len: number): unknown => {
      const r = random(ptr, len);
      rec.randomBytes(new Uint8Array(memory().buffer, ptr >>> 0, len >>> 0));
      return r;
    };
  }
  const sink = rep ?? rec;
  if (sink !== null) {
    wasi.fd_read = (fd: number, iovs: number, n: number, nreadPtr: number): unknown => {
      const r = fdRead(fd, iovs, n, nreadPtr);
      if (fd === 0 && r === 0) sink.stdin(new DataView(memory().buffer).getUint32(nreadPtr >>> 0, true));
      return r;
    };
  }
}
