/**
 * What one replay with a new version means for a shadow test: the same output, a different one
 * (with the JSON diff), a new error, or a divergence (a host call or WASI read the record does not
 * hold: the new version asked for something the recorded run never got, so its answer is unknown).
 * Fuel and duration changes come with every replayed run: a new build is expected to differ there.
 */
import { jsonDiff } from '../../cli/wasm/json-diff.ts';
import type { Divergence, DivergenceKind, NotReplayableReason, RecordedResult, ReplayResult, WasmRunRecord } from './types.ts';

export type ShadowOutcome = 'same_output' | 'different_output' | 'new_error' | 'diverged' | 'not_replayable';

/** Divergences about what the run read: its answer is not in the record. */
const READ_DIVERGENCES = new Set<DivergenceKind>([
  'host_call_function',
  'host_call_request',
  'host_call_extra',
  'host_call_missing',
  'wasi_clock',
  'wasi_random',
  'wasi_stdin',
]);

export interface Classified {
  outcome: ShadowOutcome;
  diff?: string[];
  error?: { code: string; message: string };
  recorded_error?: { code: string; message: string };
  divergence?: Divergence;
  reason?: NotReplayableReason;
  message?: string;
  fuel?: { recorded: number; replay: number; change: number; change_pct: number | null };
  duration_ms?: { recorded: number; replay: number; change: number };
}

function recordedOutput(r: RecordedResult): { ok: true; value: unknown } | { ok: false } {
  if (!r.ok || r.output_json === undefined) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(r.output_json) };
  } catch {
    return { ok: false };
  }
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

export function classifyReplay(record: WasmRunRecord, r: ReplayResult, maxDiff = 20): Classified {
  if (r.status === 'could_not_replay') return { outcome: 'not_replayable', reason: r.reason, message: r.message };
  const rec = r.recorded ?? record.result;
  const rep = r.replay;
  const recFuel = (rec.fuel_consumed ?? 0) + (rec.init_fuel_consumed ?? 0);
  const repFuel = (rep.fuel_consumed ?? 0) + (rep.init_fuel_consumed ?? 0);
  const out: Classified = {
    outcome: 'same_output',
    fuel: { recorded: recFuel, replay: repFuel, change: repFuel - recFuel, change_pct: recFuel > 0 ? round2(((repFuel - recFuel) / recFuel) * 100) : null },
    duration_ms: {
      recorded: round2(rec.duration_ms ?? 0),
      replay: round2(rep.duration_ms ?? 0),
      change: round2((rep.duration_ms ?? 0) - (rec.duration_ms ?? 0)),
    },
  };
  if (!rec.ok && rec.error) out.recorded_error = rec.error;
  if (!rep.ok && rep.error) out.error = rep.error;

  // The outputs compared whatever else happened (a divergent run may still answer).
  let diff: string[] = [];
  let errorChanged = false;
  const before = recordedOutput(rec);
  if (rec.ok && rep.ok) {
    diff = before.ok ? jsonDiff(before.value, rep.output, '$', [], maxDiff) : ['$: the recorded output could not be read'];
  } else if (rec.ok && !rep.ok) {
    errorChanged = true;
  } else if (!rec.ok && rep.ok) {
    diff = [`$: expected the error ${rec.error?.code ?? '(unknown)'}, got ${JSON.stringify(rep.output)?.slice(0, 200)}`];
  } else if (rec.error?.code !== rep.error?.code) {
    errorChanged = true;
  }
  if (r.status === 'diverged' && r.divergence.kind === 'context_writes' && diff.length === 0) diff = [`set_context: ${r.divergence.message}`];
  if (r.status === 'diverged' && r.divergence.kind === 'stdout' && diff.length === 0 && rec.ok && rep.ok) diff = [`stdout: ${r.divergence.message}`];

  if (r.status === 'diverged' && READ_DIVERGENCES.has(r.divergence.kind)) {
    out.outcome = 'diverged';
    out.divergence = r.divergence;
    if (diff.length) out.diff = diff;
    return out;
  }
  if (errorChanged) out.outcome = 'new_error';
  else if (diff.length) {
    out.outcome = 'different_output';
    out.diff = diff;
  }
  return out;
}
