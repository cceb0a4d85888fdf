import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { useMutation, useQuery } from '@tanstack/react-query';
import { api, ApiError, upload, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import type { MessageKey } from '../messages/en.ts';
import type { Job, WasmModule } from '../types.ts';
import { formatNumber } from '../format.ts';
import { ErrorNote, Field } from './ui.tsx';
import { DivergenceText, type Divergence } from './replay.tsx';

/** The shadow report as POST /wasm/modules/{id}/shadow answers it (src/wasm/replay/shadow.ts). */
interface ShadowRun {
  execution_id: string | null;
  attempt: number | null;
  outcome: 'same_output' | 'different_output' | 'new_error' | 'diverged' | 'not_replayable';
  diff?: string[];
  error?: { code: string; message: string };
  divergence?: Divergence;
  reason?: string;
  message?: string;
  fuel?: { recorded: number; replay: number; change: number; change_pct: number | null };
  duration_ms?: { recorded: number; replay: number; change: number };
}
interface ShadowReport {
  module: { id: string | null; name: string | null; version: string | null; hash: string };
  requested: number;
  totals: {
    runs: number;
    same_output: number;
    different_output: number;
    new_error: number;
    diverged: number;
    not_replayable: number;
    not_run: number;
    fuel: { recorded: number; replay: number; change: number; change_pct: number | null };
    duration_ms: { recorded: number; replay: number; change: number };
  };
  runs: ShadowRun[];
  incomplete?: { reason: string; not_run: number; budget_ms: number };
}

const OUTCOMES = ['same_output', 'different_output', 'new_error', 'diverged', 'not_replayable'] as const;
const outcomeClass = (o: ShadowRun['outcome']) => (o === 'same_output' ? 'status-succeeded' : o === 'not_replayable' ? 'status-skipped' : 'status-failed');
const UPLOAD = '__upload__';

function pct(p: number | null | undefined): string {
  if (p === null || p === undefined) return '';
  return ` (${p > 0 ? '+' : ''}${p} %)`;
}

function Report({ report }: { report: ShadowReport }) {
  const { t, locale } = useI18n();
  const tot = report.totals;
  return (
    <div data-testid="shadow-report">
      <h3>{t('shadow.totals', { n: tot.runs })}</h3>
      <ul className="shadow-totals" data-testid="shadow-totals">
        {OUTCOMES.map((o) => (
          <li key={o} data-outcome={o}>
            <span className={`badge ${outcomeClass(o)}`}>{t(`shadow.${o}` as MessageKey)}</span> <strong>{tot[o]}</strong>
          </li>
        ))}
        {tot.not_run > 0 && <li data-outcome="not_run"><span className="badge status-skipped">{t('shadow.not_run')}</span> <strong>{tot.not_run}</strong></li>}
      </ul>
      <p className="muted">
        {t('shadow.fuelTotal', { from: formatNumber(tot.fuel.recorded, locale), to: formatNumber(tot.fuel.replay, locale) })}
        {pct(tot.fuel.change_pct)} · {t('shadow.durationTotal', { from: tot.duration_ms.recorded, to: tot.duration_ms.replay })}
      </p>
      {report.incomplete && <p className="alert" role="note">{t('shadow.incomplete', { n: report.incomplete.not_run, s: report.incomplete.budget_ms / 1000 })}</p>}
      <div className="table-wrap">
        <table className="table compact" data-testid="shadow-runs">
          <caption className="sr-only">{t('shadow.runsCaption')}</caption>
          <thead>
            <tr>
              <th scope="col">{t('exec.id')}</th>
              <th scope="col">{t('exec.outcome')}</th>
              <th scope="col">{t('exec.fuel')}</th>
              <th scope="col">{t('exec.duration')}</th>
              <th scope="col">{t('exec.detail')}</th>
            </tr>
          </thead>
          <tbody>
            {report.runs.map((r, i) => (
              <tr key={`${r.execution_id}-${r.attempt}-${i}`} data-outcome={r.outcome} data-execution={r.execution_id ?? ''}>
                <td>{r.execution_id ? <Link href={`/executions/${r.execution_id}`}><code>{r.execution_id.slice(0, 8)}</code></Link> : '—'}</td>
                <td><span className={`badge ${outcomeClass(r.outcome)}`}>{t(`shadow.${r.reason === 'not_run' ? 'not_run' : r.outcome}` as MessageKey)}</span></td>
                <td>{r.fuel ? <>{formatNumber(r.fuel.recorded, locale)} → {formatNumber(r.fuel.replay, locale)}{pct(r.fuel.change_pct)}</> : '—'}</td>
                <td>{r.duration_ms ? `${r.duration_ms.recorded} → ${r.duration_ms.replay} ms` : '—'}</td>
                <td className="wrap">
                  {r.divergence && <p><DivergenceText d={r.divergence} /></p>}
                  {r.error && <p><code className="code">{r.error.code}</code> {r.error.message}</p>}
                  {r.outcome === 'not_replayable' && <p><code className="code">{r.reason}</code> {r.message}</p>}
                  {r.diff && r.diff.length > 0 && (
                    <ul className="code-list" data-testid="shadow-diff">
                      {r.diff.map((d, j) => <li key={j}><code>{d}</code></li>)}
                    </ul>
                  )}
                  {r.outcome === 'same_output' && '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/**
 * The shadow test on a module's page: pick a job's wasm step, how many of its last recorded runs,
 * and the version to try (one of this module's, or a file uploaded as a new version); the server
 * replays those runs with it and shows the totals and one row per run with the diff.
 */
export function ShadowTest({ module }: { module: WasmModule }) {
  const { t } = useI18n();
  const jobs = useQuery({ queryKey: ['shadow-jobs'], queryFn: () => api<Page<Job>>('/jobs?limit=200') });
  const versions = useQuery({
    queryKey: ['shadow-versions', module.name],
    queryFn: () => api<Page<WasmModule>>(`/wasm/modules?search=${encodeURIComponent(module.name)}&limit=200`),
  });
  // Jobs with a wasm step, those that run a version of this module first.
  const candidates = useMemo(() => {
    const usesThis = (j: Job) => j.steps.some((s) => s.type === 'wasm' && String(s.config?.module_id ?? '').split('@')[0] === module.name);
    const all = (jobs.data?.items ?? []).filter((j) => j.steps.some((s) => s.type === 'wasm'));
    return [...all.filter(usesThis), ...all.filter((j) => !usesThis(j))];
  }, [jobs.data, module.name]);
  const sameName = (versions.data?.items ?? []).filter((m) => m.name === module.name);
  const [jobId, setJobId] = useState('');
  const [stepId, setStepId] = useState('');
  const [count, setCount] = useState('20');
  const [version, setVersion] = useState(module.id);
  const [file, setFile] = useState<File | null>(null);
  const [newVersion, setNewVersion] = useState('');
  const job = candidates.find((j) => j.id === jobId);
  const steps = job?.steps.filter((s) => s.type === 'wasm') ?? [];
  useEffect(() => {
    if (!jobId && candidates[0]) setJobId(candidates[0].id);
  }, [candidates, jobId]);
  useEffect(() => {
    if (steps.length && !steps.some((s) => s.id === stepId)) setStepId(steps[0].id);
  }, [steps, stepId]);

  const run = useMutation({
    mutationFn: async () => {
      let candidate = version;
      if (version === UPLOAD) {
        if (!file) throw new ApiError(400, 'validation_failed', t('shadow.needFile'), [{ path: 'file', message: t('shadow.needFile') }]);
        const form = new FormData();
        form.set('name', module.name);
        form.set('version', newVersion.trim());
        form.set('author', module.author);
        form.set('file', file, file.name);
        candidate = (await upload<WasmModule>('/wasm/modules', form, () => {})).id;
        setVersion(candidate);
        versions.refetch();
      }
      return api<ShadowReport>(`/wasm/modules/${encodeURIComponent(candidate)}/shadow`, { method: 'POST', body: { job_id: jobId, step_id: stepId, count: Number(count) } });
    },
  });
  const problems = (run.error as ApiError | null)?.problems ?? [];
  const problem = (p: string) => problems.find((x) => x.path === p)?.message;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run.mutate();
  };
  return (
    <section className="card" aria-labelledby="shadow-title" data-testid="shadow-test">
      <h2 id="shadow-title">{t('shadow.title')}</h2>
      <p className="hint">{t('shadow.hint')}</p>
      <form className="schema-form" onSubmit={submit}>
        <Field label={t('shadow.job')} error={problem('job_id')}>
          {({ id, describedBy, invalid }) => (
            <select id={id} value={jobId} onChange={(e) => setJobId(e.target.value)} aria-describedby={describedBy} aria-invalid={invalid || undefined}>
              {candidates.length === 0 && <option value="">{t('shadow.noJobs')}</option>}
              {candidates.map((j) => <option key={j.id} value={j.id}>{j.name}</option>)}
            </select>
          )}
        </Field>
        <Field label={t('shadow.step')} error={problem('step_id')}>
          {({ id, describedBy, invalid }) => (
            <select id={id} value={stepId} onChange={(e) => setStepId(e.target.value)} aria-describedby={describedBy} aria-invalid={invalid || undefined}>
              {steps.map((s) => <option key={s.id} value={s.id}>{s.id} · {String(s.config?.module_id ?? '')}</option>)}
            </select>
          )}
        </Field>
        <Field label={t('shadow.count')} hint={t('shadow.countHint')} error={problem('count')}>
          {({ id, describedBy, invalid }) => (
            <input id={id} type="number" min={1} value={count} onChange={(e) => setCount(e.target.value)} aria-describedby={describedBy} aria-invalid={invalid || undefined} />
          )}
        </Field>
        <Field label={t('shadow.version')}>
          {({ id }) => (
            <select id={id} value={version} onChange={(e) => setVersion(e.target.value)}>
              {sameName.map((m) => <option key={m.id} value={m.id}>{m.name}@{m.version}</option>)}
              {!sameName.some((m) => m.id === module.id) && <option value={module.id}>{module.name}@{module.version}</option>}
              <option value={UPLOAD}>{t('shadow.uploadOption')}</option>
            </select>
          )}
        </Field>
        {version === UPLOAD && (
          <>
            <Field label={t('shadow.file')} error={problem('file')}>
              {({ id, describedBy, invalid }) => (
                <input id={id} type="file" accept=".wasm,application/wasm" onChange={(e) => setFile(e.target.files?.[0] ?? null)} aria-describedby={describedBy} aria-invalid={invalid || undefined} />
              )}
            </Field>
            <Field label={t('shadow.newVersion')} hint={t('shadow.newVersionHint')} error={problem('version')}>
              {({ id, describedBy, invalid }) => (
                <input id={id} value={newVersion} onChange={(e) => setNewVersion(e.target.value)} aria-describedby={describedBy} aria-invalid={invalid || undefined} spellCheck={false} />
              )}
            </Field>
          </>
        )}
        <div className="actions align-end">
          <button type="submit" className="primary" disabled={run.isPending || !jobId || !stepId}>{run.isPending ? t('shadow.running') : t('shadow.run')}</button>
        </div>
      </form>
      {run.error && <ErrorNote error={run.error} />}
      {run.data && <Report report={run.data} />}
    </section>
  );
}
