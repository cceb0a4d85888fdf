/**
 * `wasm-cli replay --job JOB --step ID --module new.wasm [--last N]`: the shadow test of a new
 * build against a step's last N recorded runs (docs/replay.md). Fetches the records from the server
 * (GET /api/v1/jobs/{id}/steps/{step}/wasm-records), replays each one locally with the new bytes,
 * every host call and WASI read answered from its record (a call the record does not hold is a
 * divergence, never sent), and prints per run and in total: same output, different output (the JSON
 * diff), new error, diverged, not replayable, and the fuel and duration change.
 *
 * Exit code: 0 every replayed run gave the same output; 1 some run did not (different output, new
 * error, divergence); 2 no run could be replayed (none recorded, none replayable).
 */
import { WasmRuntime } from '../../wasm/runtime/index.ts';
import { shadowTest, type ShadowReport, type ShadowRun } from '../../wasm/replay/shadow.ts';
import type { WasmRunRecord } from '../../wasm/replay/types.ts';
import { CliError, UsageError } from './errors.ts';
import { readModule, sha256 } from './module-file.ts';
import { progressCount } from './progress.ts';
import { call, serverOf, type ServerOptions } from './server.ts';

export interface ShadowCliOptions extends ServerOptions {
  job: string;
  step?: string;
  module?: string;
  last?: number;
  json?: boolean;
  /** Wall-clock budget of the whole test, in seconds (default none: each replay has its record's timeout). */
  budget?: number;
}

/** The records route's bound (rep1's GET .../wasm-records?limit=N). */
export const MAX_LAST = 200;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function jobId(base: string, headers: Record<string, string>, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const res = await call(`${base}/api/v1/jobs?name=${encodeURIComponent(ref)}&limit=1`, { headers }, 'finding the job');
  const body = (await res.json()) as { items?: { id: string }[] };
  const id = body.items?.[0]?.id;
  if (!id) throw new CliError(`no job named '${ref}' on ${base}`);
  return id;
}

const OUTCOME_TEXT: Record<ShadowRun['outcome'], string> = {
  same_output: 'same output',
  different_output: 'DIFFERENT OUTPUT',
  new_error: 'NEW ERROR',
  diverged: 'DIVERGED',
  not_replayable: 'not replayable',
};

const signed = (n: number, unit = ''): string => `${n > 0 ? '+' : ''}${n.toLocaleString('en')}${unit}`;

function fuelText(f: ShadowRun['fuel']): string {
  if (!f) return '';
  return `fuel ${f.recorded.toLocaleString('en')} -> ${f.replay.toLocaleString('en')}${f.change_pct === null ? '' : ` (${signed(f.change_pct, ' %')})`}`;
}

/** The report as text: one block per run, then the totals. */
export function formatShadow(r: ShadowReport): string {
  const lines: string[] = [];
  const m = r.module;
  lines.push(
    `shadow test of ${m.name ? `${m.name}@${m.version} ` : ''}(sha256 ${m.hash.slice(0, 12)}) on ${r.runs.length} recorded run(s) of step '${r.step_id}'`,
  );
  for (const run of r.runs) {
    const where = `${run.execution_id ?? '?'}${run.attempt ? ` #${run.attempt}` : ''}`;
    const stats = [fuelText(run.fuel), run.duration_ms ? `${run.duration_ms.recorded} ms -> ${run.duration_ms.replay} ms` : ''].filter(Boolean).join(' · ');
    lines.push(`${where}  ${OUTCOME_TEXT[run.outcome]}${stats ? `  ${stats}` : ''}`);
    if (run.divergence) {
      const d = run.divergence;
      lines.push(
        `    first divergence: ${d.kind}${d.call_index !== undefined ? ` at call ${d.call_index}` : ''}${d.function ? ` (${d.function})` : ''}: ${d.message}`,
      );
    }
    if (run.error) lines.push(`    error ${run.error.code}: ${run.error.message}`);
    if (run.outcome === 'not_replayable') lines.push(`    ${run.reason}: ${run.message ?? ''}`);
    for (const d of run.diff ?? []) lines.push(`    ${d}`);
  }
  const t = r.totals;
  lines.push(
    `total: ${t.runs} run(s): ${t.same_output} same output, ${t.different_output} different output, ${t.new_error} new error, ${t.diverged} diverged, ` +
      `${t.not_replayable} not replayable${t.not_run ? `, ${t.not_run} not run` : ''}`,
  );
  if (t.fuel.recorded || t.fuel.replay) {
    lines.push(
      `fuel: ${t.fuel.recorded.toLocaleString('en')} -> ${t.fuel.replay.toLocaleString('en')}${t.fuel.change_pct === null ? '' : ` (${signed(t.fuel.change_pct, ' %')})`}` +
        ` · duration: ${t.duration_ms.recorded} ms -> ${t.duration_ms.replay} ms`,
    );
  }
  if (r.incomplete)
    lines.push(
      `incomplete: ${r.incomplete.not_run} run(s) not replayed (${r.incomplete.reason === 'cancelled' ? 'cancelled' : `the budget of ${r.incomplete.budget_ms / 1000} s ran out`})`,
    );
  return `${lines.join('\n')}\n`;
}

/** 0 all the same, 1 some differ, 2 none replayed. */
export function shadowExitCode(r: ShadowReport): 0 | 1 | 2 {
  const t = r.totals;
  if (t.different_output + t.new_error + t.diverged > 0) return 1;
  if (t.same_output === 0) return 2;
  return 0;
}

export async function runShadow(o: ShadowCliOptions): Promise<number> {
  if (!o.step) throw new UsageError('--job needs --step ID: the wasm step whose recorded runs are replayed');
  if (!o.module) throw new UsageError('--job needs --module FILE: the new build to replay the recorded runs with');
  const last = o.last ?? 20;
  if (last > MAX_LAST) throw new UsageError(`--last is at most ${MAX_LAST}`);
  const bytes = new Uint8Array(readModule(o.module));
  const { base, headers } = serverOf(o);
  const id = await jobId(base, headers, o.job);
  const res = await call(`${base}/api/v1/jobs/${id}/steps/${encodeURIComponent(o.step)}/wasm-records?limit=${last}`, { headers }, 'fetching the records');
  const records = ((await res.json()) as { items?: WasmRunRecord[] }).items ?? [];
  if (records.length === 0) {
    process.stderr.write(`wasm-cli: step '${o.step}' of job ${o.job} has no recorded runs (recording off, none yet, or expired)\n`);
    return 2;
  }
  const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
  const bar = o.json ? null : progressCount('replaying', records.length);
  try {
    const report = await shadowTest({
      runtime: rt,
      bytes,
      module: { id: null, name: null, version: null, hash: sha256(bytes) },
      job_id: id,
      step_id: o.step,
      requested: last,
      sources: records.map((r) => ({ execution_id: r.execution_id ?? null, attempt: r.attempt ?? null, load: async () => r })),
      budgetMs: o.budget ? o.budget * 1000 : 2 ** 31 - 1,
      onRun: (done, _total, run) => bar?.update(done, run.outcome.replace('_', ' ')),
    });
    bar?.end();
    process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatShadow(report));
    return shadowExitCode(report);
  } finally {
    await rt.close();
  }
}
