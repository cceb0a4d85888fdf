import { useEffect, useMemo, useState } from 'react';
import { Link, useParams } from 'wouter';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import type { WasmModule } from '../types.ts';
import { ErrorNote, Field, Loading } from '../components/ui.tsx';
import { RunsChart } from '../components/runs-chart.tsx';
import { ShadowTest } from '../components/shadow-test.tsx';
import { downloadFile } from '../components/download.ts';
import { formatBytes, formatDateTime, formatDuration, formatNumber } from '../format.ts';

const PERMISSION_TYPES = ['http:read', 'http:write', 'database:read', 'database:write', 'file:read', 'file:write', 'network:external', 'secret:use'];

interface Permission {
  type: string;
  resource_pattern: string | null;
}
interface Details extends WasmModule {
  permissions: (Permission & { id?: string })[];
  stats: { runs: number; failures: number; avg_duration_ms: number | null; avg_fuel_consumed: number | null; max_memory_used_bytes: number | null; last_run_at: string | null };
  used_by: { id: string; name: string; steps: string[] }[];
  imports: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string; params?: string[]; results?: string[] }[];
  entries: { name: string; form: string }[];
  function_count: number;
  memory: { min_pages: number; max_pages: number | null; imported: boolean } | null;
  tables: { min: number; max: number | null }[];
  wasi: boolean;
}
interface Run {
  id: string;
  execution_id: string;
  step_id: string;
  function_name: string;
  fuel_consumed: number;
  memory_used_bytes: number;
  duration_ms: number;
  error: { code: string; message: string } | null;
  created_at: string;
}

function PermissionsEditor({ module, canEdit }: { module: Details; canEdit: boolean }) {
  const { t } = useI18n();
  const qc = useQueryClient();
  const [rows, setRows] = useState<Permission[]>(module.permissions.map((p) => ({ type: p.type, resource_pattern: p.resource_pattern })));
  const [saved, setSaved] = useState(false);
  useEffect(() => setRows(module.permissions.map((p) => ({ type: p.type, resource_pattern: p.resource_pattern }))), [module.permissions]);
  const save = useMutation({
    mutationFn: () => api(`/wasm/modules/${module.id}/permissions`, { method: 'PUT', body: { permissions: rows.map((r) => ({ type: r.type, resource_pattern: r.resource_pattern?.trim() ? r.resource_pattern.trim() : null })) } }),
    onSuccess: () => {
      setSaved(true);
      qc.invalidateQueries({ queryKey: ['module'] });
    },
  });
  const problems = (save.error as ApiError | null)?.problems ?? [];
  const set = (i: number, p: Partial<Permission>) => {
    setSaved(false);
    setRows(rows.map((r, j) => (j === i ? { ...r, ...p } : r)));
  };
  return (
    <section className="card" aria-labelledby="perm-title">
      <h2 id="perm-title">{t('module.permissions')}</h2>
      <p className="hint">{t('module.permissionsHint')}</p>
      {rows.length === 0 && <p className="muted">{t('module.noPermissions')}</p>}
      <ul className="perm-rows">
        {rows.map((r, i) => (
          <li key={i} className="schema-form" data-permission={i}>
            <Field label={t('module.permType')} error={problems.find((p) => p.path.startsWith(`permissions[${i}].type`))?.message}>
              {({ id }) => (
                <select id={id} value={r.type} onChange={(e) => set(i, { type: e.target.value })} disabled={!canEdit}>
                  {PERMISSION_TYPES.map((x) => <option key={x} value={x}>{x}</option>)}
                </select>
              )}
            </Field>
            <Field label={t('module.permPattern')} hint={t('module.permPatternHint')} error={problems.find((p) => p.path.startsWith(`permissions[${i}]`) && !p.path.endsWith('.type'))?.message}>
              {({ id, describedBy, invalid }) => (
                <input id={id} value={r.resource_pattern ?? ''} onChange={(e) => set(i, { resource_pattern: e.target.value })} disabled={!canEdit} aria-describedby={describedBy} aria-invalid={invalid || undefined} spellCheck={false} />
              )}
            </Field>
            {canEdit && (
              <button type="button" className="danger align-end" onClick={() => { setSaved(false); setRows(rows.filter((_, j) => j !== i)); }} aria-label={t('module.removePermission', { n: i + 1 })}>
                {t('common.remove')}
              </button>
            )}
          </li>
        ))}
      </ul>
      {canEdit && (
        <div className="actions">
          <button type="button" onClick={() => { setSaved(false); setRows([...rows, { type: 'http:read', resource_pattern: '' }]); }}>{t('module.addPermission')}</button>
          <button type="button" className="primary" onClick={() => save.mutate()} disabled={save.isPending}>{t('module.savePermissions')}</button>
        </div>
      )}
      {saved && <p className="notice" role="status">{t('module.permissionsSaved')}</p>}
      {save.error && <ErrorNote error={save.error} />}
    </section>
  );
}

export default function ModulePage() {
  const { id } = useParams<{ id: string }>();
  const { t, locale } = useI18n();
  const canAdmin = useCan('admin');
  const canOperate = useCan('operator');
  const m = useQuery({ queryKey: ['module', id], queryFn: () => api<Details>(`/wasm/modules/${encodeURIComponent(id)}`) });
  const runs = useQuery({ queryKey: ['module-runs', id], queryFn: () => api<Page<Run>>(`/wasm/modules/${encodeURIComponent(id)}/logs?limit=100`), enabled: m.isSuccess });
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const chartLabels = useMemo(() => ({ duration: t('module.chartDuration'), fuel: t('module.chartFuel') }), [t]);
  if (m.isLoading) return <Loading />;
  if (m.error || !m.data) return <ErrorNote error={m.error} />;
  const d = m.data;
  const s = d.stats;
  const last10 = (runs.data?.items ?? []).slice(0, 10);
  return (
    <article aria-labelledby="module-title">
      <nav className="crumbs" aria-label={t('common.breadcrumb')}><Link href="/modules">{t('nav.modules')}</Link> /</nav>
      <div className="page-head">
        <h1 id="module-title"><span>{d.name}<span className="muted">@{d.version}</span></span></h1>
        <button type="button" onClick={() => downloadFile(`/wasm/modules/${d.id}/download`, `${d.name}-${d.version}.wasm`).catch(setDownloadError)}>{t('modules.download')}</button>
      </div>
      <ErrorNote error={downloadError} />
      <div className="grid2">
        <section className="card" aria-labelledby="overview-title">
          <h2 id="overview-title">{t('module.overview')}</h2>
          <dl className="facts">
            <dt>{t('module.version')}</dt><dd><code>{d.version}</code></dd>
            <dt>{t('module.author')}</dt><dd>{d.author}</dd>
            <dt>{t('common.description')}</dt><dd>{d.description ?? '—'}</dd>
            <dt>SHA-256</dt><dd><code className="break" data-testid="module-hash">{d.hash}</code></dd>
            <dt>{t('module.signature')}</dt><dd>{d.signed ? t('module.signedBy', { key: d.signed_by_key ?? '' }) : t('module.unsigned')}</dd>
            <dt>{t('module.size')}</dt><dd>{formatBytes(Number(d.size_bytes), locale)}</dd>
            <dt>{t('common.created')}</dt><dd>{formatDateTime(d.created_at, locale)} {d.created_by && `· ${d.created_by}`}</dd>
            <dt>{t('module.usedBy')}</dt>
            <dd>{d.used_by.length ? d.used_by.map((j) => <Link key={j.id} href={`/jobs/${j.id}`} className="chip">{j.name}</Link>) : '—'}</dd>
          </dl>
        </section>
        <section className="card" aria-labelledby="stats-title">
          <h2 id="stats-title">{t('module.stats')}</h2>
          <dl className="facts" data-testid="module-stats">
            <dt>{t('module.runs')}</dt><dd>{formatNumber(s.runs, locale)}</dd>
            <dt>{t('module.failures')}</dt><dd>{formatNumber(s.failures, locale)}</dd>
            <dt>{t('module.avgDuration')}</dt><dd>{formatDuration(s.avg_duration_ms, locale)}</dd>
            <dt>{t('module.avgFuel')}</dt><dd>{formatNumber(s.avg_fuel_consumed, locale)}</dd>
            <dt>{t('module.maxMemory')}</dt><dd>{formatBytes(s.max_memory_used_bytes, locale)}</dd>
            <dt>{t('module.lastRun')}</dt><dd>{formatDateTime(s.last_run_at, locale)}</dd>
          </dl>
          {runs.data && runs.data.items.length > 0 && (
            <RunsChart runs={runs.data.items} labels={chartLabels} caption={t('module.chartCaption', { n: runs.data.items.length })} />
          )}
        </section>
      </div>
      <PermissionsEditor module={d} canEdit={canAdmin} />
      {canOperate && <ShadowTest module={d} />}
      <section className="card" aria-labelledby="runs-title">
        <h2 id="runs-title">{t('module.lastRuns')}</h2>
        {last10.length === 0 ? <p className="muted">{t('module.noRuns')}</p> : (
          <div className="table-wrap">
            <table className="table compact" data-testid="module-runs">
              <caption className="sr-only">{t('module.lastRuns')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('exec.id')}</th><th scope="col">{t('exec.step')}</th><th scope="col">{t('exec.function')}</th>
                  <th scope="col">{t('exec.fuel')}</th><th scope="col">{t('exec.memory')}</th><th scope="col">{t('exec.duration')}</th>
                  <th scope="col">{t('exec.error')}</th><th scope="col">{t('exec.created')}</th>
                </tr>
              </thead>
              <tbody>
                {last10.map((r) => (
                  <tr key={r.id}>
                    <td><Link href={`/executions/${r.execution_id}`}><code>{r.execution_id.slice(0, 8)}</code></Link></td>
                    <td><code>{r.step_id}</code></td>
                    <td><code>{r.function_name}</code></td>
                    <td>{formatNumber(r.fuel_consumed, locale)}</td>
                    <td>{formatBytes(r.memory_used_bytes, locale)}</td>
                    <td>{formatDuration(r.duration_ms, locale)}</td>
                    <td>{r.error ? <><code className="code">{r.error.code}</code> {r.error.message}</> : '—'}</td>
                    <td>{formatDateTime(r.created_at, locale)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="code-title">
        <h2 id="code-title">{t('module.code')}</h2>
        <dl className="facts">
          <dt>{t('module.functions')}</dt><dd>{d.function_count}</dd>
          <dt>{t('module.memory')}</dt>
          <dd>{d.memory ? t('module.pages', { min: d.memory.min_pages, max: d.memory.max_pages ?? '∞' }) : '—'}{d.memory?.imported ? ` (${t('module.imported')})` : ''}</dd>
          <dt>WASI</dt><dd>{d.wasi ? t('common.yes') : t('common.no')}</dd>
          <dt>{t('module.entries')}</dt><dd>{d.entries.map((e) => <code key={e.name} className="chip">{e.name} · {e.form}</code>)}</dd>
        </dl>
        <div className="grid2 flat">
          <div>
            <h3>{t('module.exports')}</h3>
            <ul className="code-list" data-testid="module-exports">
              {d.exports.map((e) => <li key={e.name}><code>{e.kind} {e.name}{e.params ? `(${e.params.join(', ')}) → ${(e.results ?? []).join(', ') || '()'}` : ''}</code></li>)}
            </ul>
          </div>
          <div>
            <h3>{t('module.imports')}</h3>
            {d.imports.length ? (
              <ul className="code-list">{d.imports.map((i) => <li key={`${i.module}.${i.name}`}><code>{i.kind} {i.module}.{i.name}</code></li>)}</ul>
            ) : <p className="muted">—</p>}
          </div>
        </div>
      </section>
    </article>
  );
}
