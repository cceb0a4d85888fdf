/**
 * The shadow test of a new module version (issue 20): the last N recorded runs of a job's step,
 * replayed one after the other with other bytes (replayRun with `otherBuild`), each compared with
 * what the recorded run produced. Every host call and WASI read is served from the record; a call
 * the new version makes that the record does not hold is a divergence, answered `unavailable` by
 * the replay and never sent anywhere. The CLI (`wasm-cli replay --job`) and the API
 * (`POST /api/v1/wasm/modules/{id}/shadow`) both report with this.
 *
 * Runs go one at a time (a shadow test holds at most one worker of the pool), within one time
 * budget: what the budget does not reach is counted as `not_run`, never waited for.
 */
import type { WasmRuntime } from '../runtime/index.ts';
import { replayRun } from './index.ts';
import type { Divergence, NotReplayableReason, ReplayResult, WasmRunRecord } from './types.ts';
import { classifyReplay, type ShadowOutcome } from './shadow-outcome.ts';

export type { ShadowOutcome };

/** One recorded run to replay: where it ran, and its record (fetched only when its turn comes). */
export interface ShadowSource {
  execution_id: string | null;
  attempt: number | null;
  /** The record, or null when the run has none (recording off, expired). */
  load(): Promise<WasmRunRecord | null>;
}

export interface ShadowRun {
  execution_id: string | null;
  attempt: number | null;
  /** When the recorded run started. */
  recorded_at: string | null;
  /** The module version that made the recorded run. */
  recorded_module: { name: string | null; version: string | null; hash: string } | null;
  outcome: ShadowOutcome;
  /** Where the outputs differ, one line per JSON path (recorded, then the new version's). */
  diff?: string[];
  /** The new version's error (new_error; and on a divergence that ended in one). */
  error?: { code: string; message: string };
  /** The recorded run's error, when it had one. */
  recorded_error?: { code: string; message: string };
  /** The first host call or WASI read the record does not hold (outcome `diverged`). */
  divergence?: Divergence;
  /** Why the run could not be replayed (outcome `not_replayable`). */
  reason?: NotReplayableReason | 'not_run';
  message?: string;
  /** Fuel (call + init) recorded and on replay; change in percent of the recorded. */
  fuel?: { recorded: number; replay: number; change: number; change_pct: number | null };
  /** Wall time recorded and on replay (informational: machines and load differ). */
  duration_ms?: { recorded: number; replay: number; change: number };
}

export interface ShadowTotals {
  /** Runs asked for and found (at most the count asked). */
  runs: number;
  same_output: number;
  different_output: number;
  new_error: number;
  diverged: number;
  not_replayable: number;
  /** Runs the time budget did not reach (or a cancel stopped). */
  not_run: number;
  /** Sums over the runs that were replayed. */
  fuel: { recorded: number; replay: number; change: number; change_pct: number | null };
  duration_ms: { recorded: number; replay: number; change: number };
}

export interface ShadowReport {
  /** The bytes replayed: the new version. */
  module: { id: string | null; name: string | null; version: string | null; hash: string };
  job_id: string | null;
  step_id: string | null;
  /** The count asked for. */
  requested: number;
  totals: ShadowTotals;
  runs: ShadowRun[];
  /** Set when not every run was replayed: the time budget ran out, or the test was cancelled. */
  incomplete?: { reason: 'time_budget' | 'cancelled'; not_run: number; budget_ms: number };
}

export interface ShadowOptions {
  runtime: WasmRuntime;
  bytes: Uint8Array;
  module: ShadowReport['module'];
  job_id?: string | null;
  step_id?: string | null;
  requested: number;
  sources: ShadowSource[];
  /** Wall-clock budget of the whole test; a replay never runs past it. */
  budgetMs: number;
  signal?: AbortSignal;
  /** After each run (the CLI's progress). */
  onRun?: (done: number, total: number, run: ShadowRun) => void;
}

/** At most this many diff lines per run. */
const DIFF_LINES = 20;

const pct = (from: number, to: number): number | null => (from > 0 ? Math.round(((to - from) / from) * 10000) / 100 : null);

export async function shadowTest(o: ShadowOptions): Promise<ShadowReport> {
  const t0 = Date.now();
  const runs: ShadowRun[] = [];
  const budget = new AbortController();
  const timer = setTimeout(() => budget.abort(new Error('time budget')), Math.min(2 ** 31 - 1, Math.max(1, o.budgetMs)));
  const onOuterAbort = () => budget.abort(new Error('cancelled'));
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (o.signal?.aborted) onOuterAbort();
  let stopped: 'time_budget' | 'cancelled' | null = null;
  try {
    for (const src of o.sources) {
      if (budget.signal.aborted) {
        stopped ??= o.signal?.aborted ? 'cancelled' : 'time_budget';
        runs.push(notRun(src, stopped));
        o.onRun?.(runs.length, o.sources.length, runs[runs.length - 1]);
        continue;
      }
      const run = await shadowOne(o, src, budget.signal, t0);
      if (run.reason === 'not_run') stopped ??= o.signal?.aborted ? 'cancelled' : 'time_budget';
      runs.push(run);
      o.onRun?.(runs.length, o.sources.length, run);
    }
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onOuterAbort);
  }
  const totals = totalsOf(runs);
  const report: ShadowReport = { module: o.module, job_id: o.job_id ?? null, step_id: o.step_id ?? null, requested: o.requested, totals, runs };
  if (totals.not_run > 0) report.incomplete = { reason: stopped ?? 'time_budget', not_run: totals.not_run, budget_ms: o.budgetMs };
  return report;
}

function notRun(src: ShadowSource, why: 'time_budget' | 'cancelled'): ShadowRun {
  return {
    execution_id: src.execution_id,
    attempt: src.attempt,
    recorded_at: null,
    recorded_module: null,
    outcome: 'not_replayable',
    reason: 'not_run',
    message: why === 'cancelled' ? 'the shadow test was cancelled before this run' : 'the time budget of the shadow test ran out before this run',
  };
}

async function shadowOne(o: ShadowOptions, src: ShadowSource, signal: AbortSignal, t0: number): Promise<ShadowRun> {
  const base = { execution_id: src.execution_id, attempt: src.attempt };
  let record: WasmRunRecord | null;
  try {
    record = await src.load();
  } catch (err) {
    return {
      ...base,
      recorded_at: null,
      recorded_module: null,
      outcome: 'not_replayable',
      reason: 'record_unavailable',
      message: `the record could not be read: ${(err as Error).message}`,
    };
  }
  if (!record) {
    return {
      ...base,
      recorded_at: null,
      recorded_module: null,
      outcome: 'not_replayable',
      reason: 'not_recorded',
      message: 'this run has no record (recording was off for it, or the record expired)',
    };
  }
  const head = {
    ...base,
    recorded_at: record.recorded_at ?? null,
    recorded_module: { name: record.module?.name ?? null, version: record.module?.version ?? null, hash: record.module?.hash },
  };
  // The run's own timeout when the budget has room for it (a timeout is then the new version's);
  // else the budget's abort stops it first (a second later it would time out by itself).
  const left = Math.max(1, o.budgetMs - (Date.now() - t0));
  const own = Math.max(1, record.limits?.timeout_ms ?? 1);
  const timeoutMs = own <= left ? own : left + 1000;
  let r: ReplayResult;
  try {
    r = await replayRun(o.runtime, o.bytes, record, { otherBuild: true, timeoutMs, signal });
  } catch (err) {
    r = { status: 'could_not_replay', reason: 'module_unusable', message: (err as Error).message };
  }
  // A replay the budget stopped says nothing about the new version.
  if (
    signal.aborted &&
    (r.status === 'could_not_replay' || (r.status !== 'reproduced' && !r.replay.ok && ['cancelled', 'timeout'].includes(r.replay.error?.code ?? '')))
  ) {
    return { ...notRun(src, o.signal?.aborted ? 'cancelled' : 'time_budget'), ...head };
  }
  return { ...head, ...classifyReplay(record, r, DIFF_LINES) };
}

function totalsOf(runs: ShadowRun[]): ShadowTotals {
  const t: ShadowTotals = {
    runs: runs.length,
    same_output: 0,
    different_output: 0,
    new_error: 0,
    diverged: 0,
    not_replayable: 0,
    not_run: 0,
    fuel: { recorded: 0, replay: 0, change: 0, change_pct: null },
    duration_ms: { recorded: 0, replay: 0, change: 0 },
  };
  for (const r of runs) {
    if (r.reason === 'not_run') t.not_run++;
    else t[r.outcome]++;
    if (r.fuel) {
      t.fuel.recorded += r.fuel.recorded;
      t.fuel.replay += r.fuel.replay;
    }
    if (r.duration_ms) {
      t.duration_ms.recorded += r.duration_ms.recorded;
      t.duration_ms.replay += r.duration_ms.replay;
    }
  }
  t.fuel.change = t.fuel.replay - t.fuel.recorded;
  t.fuel.change_pct = pct(t.fuel.recorded, t.fuel.replay);
  t.duration_ms.recorded = round2(t.duration_ms.recorded);
  t.duration_ms.replay = round2(t.duration_ms.replay);
  t.duration_ms.change = round2(t.duration_ms.replay - t.duration_ms.recorded);
  return t;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
