/**
 * The replay engine: re-runs a module with a record's function, limits, input, context and
 * environment, every privileged host call and WASI input served from the record in the worker
 * (runtime RunMessage.replay; nothing is sent live, a call the record does not hold is answered
 * `unavailable` and is the divergence), and compares what came out with what the record holds, in
 * this order: the host calls and WASI reads (as they happened), the error, the output, the
 * set_context writes, stdout, the fuel, the memory. The first difference is the answer.
 */
import { createHash } from 'node:crypto';
import type { WasmRuntime } from '../runtime/index.ts';
import type { WasmRunResult } from '../runtime/types.ts';
import { describeTextDiff } from '../runtime/run-record.ts';
import { notReplayable, WALL_CLOCK_ERRORS } from './record.ts';
import {
  WASM_RUN_RECORD_VERSION,
  type Divergence,
  type NotReplayableReason,
  type ReplayOptions,
  type ReplayResult,
  type ReplayRunSummary,
  type WasmRunRecord,
} from './types.ts';

const HASH_RE = /^[0-9a-f]{64}$/;
/** Divergences the worker finds only when the run is over (it asked for less than the record holds). */
const END_OF_RUN: ReadonlySet<string> = new Set(['host_call_missing', 'wasi_stdin']);
/** A replay's wall-clock limit when the record's was shorter (a laptop is not the server). */
const MIN_REPLAY_TIMEOUT_MS = 30_000;

type Check = { ok: true; record: WasmRunRecord } | { ok: false; reason: NotReplayableReason; message: string };

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The shape problem of a fetched record, or null. */
function shapeProblem(r: Record<string, unknown>): string | null {
  const mod = r.module;
  if (!isObj(mod) || typeof mod.hash !== 'string' || !HASH_RE.test(mod.hash)) return 'module.hash must be 64 lowercase hex digits';
  if (typeof r.function !== 'string' || r.function === '') return 'function must be a non-empty string';
  const l = r.limits;
  if (!isObj(l)) return 'limits must be an object';
  for (const k of [
    'fuel',
    'init_fuel',
    'memory_mb',
    'table_limit',
    'timeout_ms',
    'stack_kb',
    'max_output_bytes',
    'max_host_request_bytes',
    'max_host_response_bytes',
  ]) {
    if (!isNum(l[k])) return `limits.${k} must be a non-negative number`;
  }
  if (typeof r.input_json !== 'string') return 'input_json must be a string';
  if (!isNum(r.context_chars)) return 'context_chars must be a non-negative number';
  if (
    !Array.isArray(r.context_reads) ||
    r.context_reads.some((c) => !isObj(c) || typeof c.key !== 'string' || (c.value !== null && typeof c.value !== 'string'))
  ) {
    return 'context_reads must be an array of {key, value}';
  }
  if (!isObj(r.env) || Object.values(r.env).some((v) => typeof v !== 'string')) return 'env must be an object of strings';
  if (!Array.isArray(r.host_calls)) return 'host_calls must be an array';
  for (let i = 0; i < r.host_calls.length; i++) {
    const c = r.host_calls[i] as Record<string, unknown>;
    if (!isObj(c) || typeof c.function !== 'string' || typeof c.request !== 'string' || typeof c.response !== 'string') {
      return `host_calls[${i}] must have function, request and response strings`;
    }
    if (c.served !== 'worker' && c.served !== 'host') return `host_calls[${i}].served must be 'worker' or 'host'`;
  }
  const w = r.wasi;
  if (!isObj(w) || !Array.isArray(w.clocks) || !Array.isArray(w.random) || !isNum(w.stdin_bytes)) return 'wasi must hold clocks, random and stdin_bytes';
  for (let i = 0; i < w.clocks.length; i++) {
    const c = w.clocks[i] as Record<string, unknown>;
    if (!isObj(c) || !isNum(c.clock) || typeof c.ns !== 'string' || !/^\d{1,20}$/.test(c.ns)) return `wasi.clocks[${i}] must be {clock, ns}`;
  }
  if (w.random.some((b) => typeof b !== 'string')) return 'wasi.random must hold base64 strings';
  const res = r.result;
  if (!isObj(res) || typeof res.ok !== 'boolean' || !isNum(res.fuel_consumed) || !isNum(res.init_fuel_consumed) || !isNum(res.memory_peak_bytes)) {
    return 'result must hold ok, fuel_consumed, init_fuel_consumed and memory_peak_bytes';
  }
  if (!Array.isArray(r.cut) || !Array.isArray(r.masked)) return 'cut and masked must be arrays';
  return null;
}

/** Whether a fetched record can be replayed: its shape, its version, its cuts, its masking, how the run ended. */
export function checkReplayable(record: unknown): Check {
  if (!isObj(record)) return { ok: false, reason: 'record_unavailable', message: 'the record is not a JSON object' };
  if (record.version !== WASM_RUN_RECORD_VERSION) {
    return {
      ok: false,
      reason: 'unsupported_version',
      message: `the record's version is ${JSON.stringify(record.version)}; this build replays version ${WASM_RUN_RECORD_VERSION}`,
    };
  }
  const problem = shapeProblem(record);
  if (problem) return { ok: false, reason: 'record_unavailable', message: `the record is malformed: ${problem}` };
  const r = record as unknown as WasmRunRecord;
  const why = notReplayable(r);
  if (why === 'record_cut') {
    const first = r.cut[0];
    return {
      ok: false,
      reason: why,
      message: `the record was cut by its bounds ($cut at ${first.path}: ${first.reason}${r.cut.length > 1 ? `, and ${r.cut.length - 1} more` : ''}): not replayable`,
    };
  }
  if (why === 'masked') {
    return {
      ok: false,
      reason: why,
      message: `masking changed what the guest read (${r.masked.slice(0, 5).join(', ')}${r.masked.length > 5 ? ', ...' : ''}): the replay would read '***', not replayable`,
    };
  }
  if (why === 'wall_clock') {
    return {
      ok: false,
      reason: why,
      message: `the run ended by the wall clock (${r.result.error?.code}), which is not a function of its inputs: not replayable`,
    };
  }
  return { ok: true, record: r };
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const SHOW = 2000;
const show = (s: string): string => (s.length > SHOW ? `${s.slice(0, SHOW)}… (${s.length} chars)` : s);

function summary(hash: string, r: WasmRunResult): ReplayRunSummary {
  return {
    module_hash: hash,
    ok: r.ok,
    ...(r.ok ? { output: r.output } : { error: { code: r.error.code, message: r.error.message } }),
    fuel_consumed: r.fuelConsumed,
    init_fuel_consumed: r.initFuelConsumed,
    memory_peak_bytes: r.memoryPeakBytes,
    duration_ms: r.durationMs,
    host_calls: r.replay?.host_calls ?? 0,
    stdout: r.stdout,
  };
}

/**
 * Whether the replay's output is the record's: the same text as the guest wrote it (both kept by the
 * runtime), or, for a record or a replay whose text was not kept (a record of an older build held
 * the serialized value), the same JSON value serialized the same way.
 */
function sameOutput(recorded: string | undefined, r: WasmRunResult & { ok: true }): boolean {
  if (recorded === undefined) return false;
  const text = r.replay?.outputJson;
  if (text !== undefined && text === recorded) return true;
  const out = JSON.stringify(r.output === undefined ? null : r.output);
  if (out === recorded) return true;
  try {
    return JSON.stringify(JSON.parse(recorded)) === out;
  } catch {
    return false;
  }
}

/** The first difference between the replay's result and the record's (after the host calls and WASI reads), or null. */
export function compareResult(rec: WasmRunRecord['result'], r: WasmRunResult): Divergence | null {
  if (rec.ok !== r.ok) {
    return {
      kind: 'error',
      message: rec.ok
        ? `the record ended ok; the replay failed with ${r.ok ? '' : `${r.error.code}: ${r.error.message}`}`
        : `the record failed with ${rec.error?.code}; the replay ended ok`,
      expected: rec.ok ? 'ok' : rec.error,
      actual: r.ok ? 'ok' : { code: r.error.code, message: r.error.message },
    };
  }
  if (!rec.ok && !r.ok && (rec.error?.code !== r.error.code || rec.error?.message !== r.error.message)) {
    return {
      kind: 'error',
      message:
        rec.error?.code !== r.error.code ? `another error: ${rec.error?.code} -> ${r.error.code}` : `the same error code (${r.error.code}), another message`,
      expected: rec.error,
      actual: { code: r.error.code, message: r.error.message },
    };
  }
  if (r.ok && !sameOutput(rec.output_json, r)) {
    const out = r.replay?.outputJson ?? JSON.stringify(r.output === undefined ? null : r.output);
    return {
      kind: 'output',
      message: `the output differs: ${describeTextDiff(rec.output_json ?? 'null', out)}`,
      expected: show(rec.output_json ?? ''),
      actual: show(out),
    };
  }
  const writes = Object.keys(r.contextWrites).length > 0 ? JSON.stringify(r.contextWrites) : '{}';
  if (writes !== rec.context_writes_json) {
    return {
      kind: 'context_writes',
      message: `the set_context writes differ: ${describeTextDiff(rec.context_writes_json, writes)}`,
      expected: show(rec.context_writes_json),
      actual: show(writes),
    };
  }
  if (r.stdout !== rec.stdout)
    return { kind: 'stdout', message: `stdout differs: ${describeTextDiff(rec.stdout, r.stdout)}`, expected: show(rec.stdout), actual: show(r.stdout) };
  if (r.fuelConsumed !== rec.fuel_consumed || r.initFuelConsumed !== rec.init_fuel_consumed) {
    const what = r.fuelConsumed !== rec.fuel_consumed ? 'fuel' : 'initialisation fuel';
    return {
      kind: 'fuel',
      message: `the same output, another ${what}: ${r.fuelConsumed !== rec.fuel_consumed ? `${rec.fuel_consumed} -> ${r.fuelConsumed}` : `${rec.init_fuel_consumed} -> ${r.initFuelConsumed}`}`,
      expected: { fuel_consumed: rec.fuel_consumed, init_fuel_consumed: rec.init_fuel_consumed },
      actual: { fuel_consumed: r.fuelConsumed, init_fuel_consumed: r.initFuelConsumed },
    };
  }
  if (r.memoryPeakBytes !== rec.memory_peak_bytes) {
    return {
      kind: 'memory',
      message: `the same output and fuel, another memory peak: ${rec.memory_peak_bytes} -> ${r.memoryPeakBytes} bytes`,
      expected: rec.memory_peak_bytes,
      actual: r.memoryPeakBytes,
    };
  }
  return null;
}

/**
 * Replays `record` with `bytes` (the record's module, or another build with opts.otherBuild): see
 * the file's comment. Never throws for a bad record or module: could_not_replay says why.
 */
export async function replayRun(runtime: WasmRuntime, bytes: Uint8Array, record: unknown, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const checked = checkReplayable(record);
  if (!checked.ok) return { status: 'could_not_replay', reason: checked.reason, message: checked.message };
  const rec = checked.record;
  const hash = sha256(bytes);
  if (hash !== rec.module.hash && !opts.otherBuild) {
    return {
      status: 'could_not_replay',
      reason: 'module_mismatch',
      message: `the module's SHA-256 is ${hash}; the record's is ${rec.module.hash} (replay another build with --module FILE)`,
    };
  }
  let input: unknown;
  try {
    input = JSON.parse(rec.input_json);
  } catch (e) {
    return { status: 'could_not_replay', reason: 'record_unavailable', message: `the record's input is not JSON: ${(e as Error).message}` };
  }
  const l = rec.limits;
  const r = await runtime.run({
    bytes,
    hash,
    functionName: rec.function,
    input,
    context: {}, // get_context is answered from the record's reads
    env: rec.env,
    limits: {
      fuel: l.fuel,
      initFuel: l.init_fuel,
      memoryMb: l.memory_mb,
      tableLimit: l.table_limit,
      timeoutMs: opts.timeoutMs ?? Math.max(l.timeout_ms, MIN_REPLAY_TIMEOUT_MS),
      stackKb: l.stack_kb,
      maxOutputBytes: l.max_output_bytes,
    },
    hostLimits: { maxRequestBytes: l.max_host_request_bytes, maxResponseBytes: l.max_host_response_bytes },
    replay: { host_calls: rec.host_calls, wasi: rec.wasi, context_reads: rec.context_reads, context_chars: rec.context_chars },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const other = hash !== rec.module.hash;
  if (!r.replay) {
    // It never ran in a worker: the module could not be prepared, or its entry is not there.
    const error = r.ok ? undefined : r.error;
    if (!other)
      return { status: 'could_not_replay', reason: 'module_unusable', message: `the module could not be run here: ${error?.code}: ${error?.message}` };
    return {
      status: 'diverged',
      divergence: {
        kind: 'error',
        message: `the other build could not be run: ${error?.code}: ${error?.message}`,
        expected: rec.result.ok ? 'ok' : rec.result.error,
        actual: error,
      },
      replay: summary(hash, r),
      recorded: rec.result,
    };
  }
  if (!r.ok && WALL_CLOCK_ERRORS.has(r.error.code) && !other) {
    return { status: 'could_not_replay', reason: 'wall_clock', message: `the replay itself ended by the wall clock (${r.error.code}: ${r.error.message})` };
  }
  let divergence = r.replay.divergence ?? compareResult(rec.result, r);
  if (divergence && END_OF_RUN.has(divergence.kind) && r.replay.divergence !== null) {
    // Found at the end (fewer calls or reads than the record): if the replay failed where the run did
    // not, the failure came first, and it is why the rest was never asked for.
    const end = compareResult(rec.result, r);
    if (end?.kind === 'error') divergence = end;
  }
  if (divergence) return { status: 'diverged', divergence, replay: summary(hash, r), recorded: rec.result };
  return { status: 'reproduced', replay: summary(hash, r), recorded: rec.result };
}
