/**
 * Builds the stored record of a run (types.ts WasmRunRecord) from what the runtime kept
 * (WasmRunResult.record) and what the run produced: masked like every other output, bounded, and
 * honest about what it cannot replay. Every part is masked on its own, so that the record names
 * exactly what masking changed (`masked`): a changed part is one a replay cannot reproduce (the
 * guest would read `***`), and the record says so instead of pretending.
 */
import type { WasmRunResult } from '../runtime/types.ts';
import { WASM_RUN_RECORD_VERSION, type NotReplayableReason, type RecordCut, type RecordedHostCall, type WasmRunRecord } from './types.ts';

/** Error codes of runs that ended by the wall clock, not by their inputs. */
export const WALL_CLOCK_ERRORS: ReadonlySet<string> = new Set(['timeout', 'cancelled', 'worker_crashed']);

export interface RecordMeta {
  module: { id: string | null; name: string | null; version: string | null };
  executionId?: string;
  jobId?: string;
  stepId?: string;
  attempt?: number;
  /** ISO time the run started. */
  recordedAt: string;
  /** The masker of the run's secrets (the engine's); absent: nothing to mask. */
  mask?: (v: unknown) => unknown;
  /** The record's bound in bytes (the same as the runtime's RecordSpec.maxBytes): input, output and stdio count against what the host calls left. */
  maxBytes: number;
}

/**
 * The stored record of `result`, or null when the run kept none (it never reached a worker, or
 * recording was off).
 */
export function buildRunRecord(result: WasmRunResult, meta: RecordMeta): WasmRunRecord | null {
  const parts = result.record;
  if (!parts) return null;
  const masked: string[] = [];
  const mask = meta.mask;
  /** `s` masked; a change is noted under `path`. */
  const m = (s: string, path: string): string => {
    if (!mask || s.length < 4) return s;
    const out = mask(s) as string;
    if (out !== s) masked.push(path);
    return out;
  };
  const cut: RecordCut[] = [...parts.cut];
  let left = Math.max(0, meta.maxBytes - parts.bytes);
  /** A text within what the record's bound leaves, or '' and a cut. */
  const fit = (s: string, path: string): string => {
    if (s.length <= left) {
      left -= s.length;
      return s;
    }
    cut.push({ path, reason: `${s.length} characters, past what the record's bound of ${meta.maxBytes} bytes left (VECRON_WASM_RECORD_MAX_BYTES)` });
    return '';
  };

  const host_calls: RecordedHostCall[] = parts.host_calls.map((c, i) => {
    const out: RecordedHostCall = {
      ...c,
      request: m(c.request, `host_calls[${i}].request`),
      response: m(c.response, `host_calls[${i}].response`),
      target: c.target === null ? null : m(c.target, `host_calls[${i}].target`),
    };
    return out;
  });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(parts.env)) env[k] = m(v, `env.${k}`);
  const random = parts.wasi.random.map((b, i) => m(b, `wasi.random[${i}]`));

  let outputJson: string | undefined;
  if (result.ok) {
    let text: string | undefined;
    try {
      text = JSON.stringify(result.output === undefined ? null : result.output);
    } catch {
      text = undefined;
    }
    outputJson = text === undefined ? undefined : m(fit(text, 'result.output_json'), 'result.output_json');
  }
  let contextWrites = '{}';
  if (Object.keys(result.contextWrites).length > 0)
    contextWrites = m(fit(JSON.stringify(result.contextWrites), 'result.context_writes_json'), 'result.context_writes_json');

  const record: WasmRunRecord = {
    version: WASM_RUN_RECORD_VERSION,
    ...(meta.executionId !== undefined ? { execution_id: meta.executionId } : {}),
    ...(meta.jobId !== undefined ? { job_id: meta.jobId } : {}),
    ...(meta.stepId !== undefined ? { step_id: meta.stepId } : {}),
    ...(meta.attempt !== undefined ? { attempt: meta.attempt } : {}),
    recorded_at: meta.recordedAt,
    module: { ...meta.module, hash: parts.moduleHash },
    function: parts.functionName,
    limits: {
      fuel: parts.limits.fuel,
      init_fuel: parts.limits.initFuel,
      memory_mb: parts.limits.memoryMb,
      table_limit: parts.limits.tableLimit,
      timeout_ms: parts.limits.timeoutMs,
      stack_kb: parts.limits.stackKb,
      max_output_bytes: parts.limits.maxOutputBytes,
      max_host_request_bytes: parts.limits.maxHostRequestBytes,
      max_host_response_bytes: parts.limits.maxHostResponseBytes,
    },
    input_json: m(fit(parts.inputJson, 'input_json'), 'input_json'),
    context_reads: parts.context_reads.map((r, i) => ({
      key: m(r.key, `context_reads[${i}].key`),
      value: r.value === null ? null : m(r.value, `context_reads[${i}].value`),
    })),
    context_chars: parts.contextChars,
    env,
    host_calls,
    wasi: { clocks: parts.wasi.clocks, random, stdin_bytes: parts.wasi.stdin_bytes },
    result: {
      ok: result.ok,
      ...(outputJson !== undefined ? { output_json: outputJson } : {}),
      ...(!result.ok ? { error: { code: result.error.code, message: m(result.error.message, 'result.error.message') } } : {}),
      fuel_consumed: result.fuelConsumed,
      init_fuel_consumed: result.initFuelConsumed,
      memory_peak_bytes: result.memoryPeakBytes,
      exit_code: result.exitCode,
      context_writes_json: contextWrites,
      stdout: m(fit(result.stdout, 'result.stdout'), 'result.stdout'),
      stderr: m(fit(result.stderr, 'result.stderr'), 'result.stderr'),
      duration_ms: Math.round(result.durationMs * 1000) / 1000,
    },
    cut,
    masked,
    replayable: true,
  };
  const why = notReplayable(record);
  if (why) {
    record.replayable = false;
    record.not_replayable_reason = why;
  }
  return record;
}

/** Why a record cannot be replayed (its own content: the cuts, the masking, a wall-clock end), or null. */
export function notReplayable(r: Pick<WasmRunRecord, 'cut' | 'masked' | 'result'>): NotReplayableReason | null {
  if (r.cut.length > 0) return 'record_cut';
  if (r.masked.length > 0) return 'masked';
  if (!r.result.ok && r.result.error && WALL_CLOCK_ERRORS.has(r.result.error.code)) return 'wall_clock';
  return null;
}

/** The record as stored: its JSON text (never jsonb: a replay serves its texts exactly as kept). */
export const recordText = (r: WasmRunRecord): string => JSON.stringify(r);
