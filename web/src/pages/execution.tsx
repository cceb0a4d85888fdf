import { Link, useParams } from 'wouter';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import { useStatusEvents } from '../hooks.ts';
import type { Execution, StepRun, Waiting } from '../types.ts';
import { ErrorNote, Json, Loading, StatusBadge } from '../components/ui.tsx';
import { formatBytes, formatDateTime, formatDuration, formatNumber } from '../format.ts';
import type { MessageKey } from '../messages/en.ts';
import { RunRecord, type HostCall, type ModuleLogLine } from '../components/host-calls.tsx';
import { Fragment } from 'react';
import { ReplayButton } from '../components/replay.tsx';

interface WasmLog {
  id: string;
  step_id: string;
  attempt: number;
  module_id: string | null;
  module_name: string;
  module_version: string;
  function_name: string;
  fuel_consumed: number;
  memory_used_bytes: number;
  duration_ms: number;
  error: { code: string; message: string; stack?: string } | null;
  /** The module's log lines and its host calls (absent for runs stored before they were recorded). */
  logs?: ModuleLogLine[] | null;
  host_calls?: HostCall[] | null;
  created_at: string;
}

const ACTIVE = new Set(['queued', 'running']);

/** Why a queued execution has not started (concurrency slot, rate limit, not due yet), in the page's language. */
function WaitingNote({ w }: { w: Waiting }) {
  const { t, locale } = useI18n();
  const text =
    w.code === 'concurrency_limit'
      ? t('exec.waiting.concurrency_limit', { running: w.running ?? 0, limit: w.limit ?? 0, key: w.key ?? '', ahead: w.ahead ? t('exec.waiting.ahead', { n: w.ahead }) : '' })
      : w.code === 'rate_limit'
        ? t('exec.waiting.rate_limit', { starts: w.starts ?? 0, key: w.key ?? '', s: w.interval_seconds ?? 0, limit: w.limit ?? 0, at: formatDateTime(w.next_start_at ?? null, locale) })
        : t('exec.waiting.scheduled', { at: formatDateTime(w.run_at ?? null, locale) });
  return (
    <p className="notice" role="status" data-testid="waiting" data-code={w.code}>
      <strong>{t('exec.waiting')}:</strong> {text}
    </p>
  );
}

/** Steps that ran, in the order they started: the route the execution took. */
function routeTaken(steps: StepRun[]): StepRun[] {
  return steps
    .filter((s) => s.started_at && s.status !== 'skipped' && s.status !== 'pending')
    .sort((a, b) => a.started_at!.localeCompare(b.started_at!));
}

function Timeline({ steps, start, end }: { steps: StepRun[]; start: number; end: number }) {
  const { t, locale } = useI18n();
  const span = Math.max(1, end - start);
  return (
    <ol className="timeline" aria-label={t('exec.timeline')}>
      {steps.map((s) => {
        const from = s.started_at ? new Date(s.started_at).getTime() : null;
        const to = s.completed_at ? new Date(s.completed_at).getTime() : from !== null ? Date.now() : null;
        const left = from !== null ? ((from - start) / span) * 100 : 0;
        const width = from !== null && to !== null ? Math.max(0.8, ((to - from) / span) * 100) : 0;
        return (
          <li key={s.id} data-step={s.id} data-status={s.status}>
            <div className="tl-head">
              <StatusBadge status={s.status} />
              <strong>{s.id}</strong> <span className="chip">{s.type}</span>
              <span className="muted small">
                {s.started_at ? formatDateTime(s.started_at, locale) : t('exec.notStarted')} · {formatDuration(s.duration_ms, locale)} · {t('exec.attemptN', { n: s.attempt })}
              </span>
            </div>
            <div className="tl-track" aria-hidden="true">
              {width > 0 && <span className={`tl-bar status-${s.status}`} style={{ left: `${left}%`, width: `${Math.min(width, 100 - left)}%` }} />}
            </div>
            {s.error && (
              <div className="alert" role="note">
                <code className="code" data-testid="step-error-code">{String(s.error.code ?? 'error')}</code> {String(s.error.message ?? '')}
              </div>
            )}
            {s.output !== null && s.output !== undefined && (
              <details open={s.status === 'succeeded'}>
                <summary>{t('exec.output')}</summary>
                <Json value={s.output} label={t('exec.outputOf', { id: s.id })} />
              </details>
            )}
          </li>
        );
      })}
    </ol>
  );
}

export default function ExecutionPage() {
  const { id } = useParams<{ id: string }>();
  const { t, locale } = useI18n();
  const canOperate = useCan('operator');
  const qc = useQueryClient();
  const exec = useQuery({
    queryKey: ['execution', id],
    queryFn: () => api<Execution>(`/executions/${id}`),
    // Events drive updates; the slow poll covers a stream that dropped an event while reconnecting.
    refetchInterval: (q) => (q.state.data && ACTIVE.has(q.state.data.status) ? 5000 : false),
  });
  const logs = useQuery({
    // Keyed on the status too: a run the page learns has ended from the slow poll (an event missed
    // while the stream connected) refetches its WASM records as well.
    queryKey: ['execution-wasm', id, exec.data?.status],
    queryFn: () => api<{ logs: WasmLog[] }>(`/wasm/executions/${id}/logs`),
  });
  useStatusEvents({ execution_id: id }, () => {
    qc.invalidateQueries({ queryKey: ['execution', id] });
    qc.invalidateQueries({ queryKey: ['execution-wasm', id] });
  });
  const after = () => {
    qc.invalidateQueries({ queryKey: ['execution', id] });
    qc.invalidateQueries({ queryKey: ['executions'] });
  };
  const retry = useMutation({ mutationFn: () => api(`/executions/${id}/retry`, { method: 'POST' }), onSuccess: after });
  const cancel = useMutation({ mutationFn: () => api(`/executions/${id}/cancel`, { method: 'POST' }), onSuccess: after });

  if (exec.isLoading) return <Loading />;
  if (exec.error || !exec.data) return <ErrorNote error={exec.error} />;
  const e = exec.data;
  const steps = e.steps ?? [];
  const route = routeTaken(steps);
  const skipped = steps.filter((s) => s.status === 'skipped');
  const start = new Date(e.started_at ?? e.created_at).getTime();
  const end = e.finished_at ? new Date(e.finished_at).getTime() : Date.now();

  return (
    <article aria-labelledby="execution-title">
      <nav className="crumbs" aria-label={t('common.breadcrumb')}>
        <Link href="/executions">{t('nav.executions')}</Link> / <Link href={`/jobs/${e.job_id}`}>{e.job_name ?? e.job_id}</Link> /
      </nav>
      <div className="page-head">
        <h1 id="execution-title">{t('exec.one')} <code>{e.id.slice(0, 8)}</code> <StatusBadge status={e.status} /></h1>
        {canOperate && (
          <div className="actions">
            {(e.status === 'failed' || e.status === 'dead_lettered') && (
              <button type="button" className="primary" onClick={() => retry.mutate()} disabled={retry.isPending}>{t('exec.retry')}</button>
            )}
            {ACTIVE.has(e.status) && (
              <button type="button" className="danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>{t('exec.cancel')}</button>
            )}
          </div>
        )}
      </div>
      <ErrorNote error={retry.error ?? cancel.error} />
      {e.error && (
        <p className="alert" role="alert">
          <code className="code" data-testid="execution-error-code">{e.error.code}</code> {e.error.message}
        </p>
      )}
      {e.status === 'queued' && e.waiting && <WaitingNote w={e.waiting} />}
      <dl className="facts card">
        <dt>{t('exec.trigger')}</dt><dd>{t(`trigger.${e.trigger_type}` as MessageKey)}{e.trigger?.user ? ` · ${e.trigger.user}` : ''}</dd>
        <dt>{t('exec.created')}</dt><dd>{formatDateTime(e.created_at, locale)}</dd>
        <dt>{t('exec.started')}</dt><dd>{formatDateTime(e.started_at, locale)}</dd>
        <dt>{t('exec.finished')}</dt><dd>{formatDateTime(e.finished_at, locale)}</dd>
        <dt>{t('exec.duration')}</dt><dd>{formatDuration(e.duration_ms, locale)}</dd>
        <dt>{t('exec.attempt')}</dt><dd>{e.attempt}/{e.max_attempts}</dd>
        <dt>{t('job.version')}</dt><dd>{e.job_version}</dd>
        {e.limits && (
          <>
            <dt>{t('exec.limits')}</dt>
            <dd data-testid="limits">
              {[
                e.limits.concurrency && t('job.concurrency', { limit: e.limits.concurrency.limit, key: e.limits.concurrency.key }),
                e.limits.rate && t('job.rate', { limit: e.limits.rate.limit, s: e.limits.rate.interval_seconds, per: e.limits.rate.key }),
              ].filter(Boolean).join(' · ')}
            </dd>
          </>
        )}
      </dl>

      <section className="card" aria-labelledby="route-title">
        <h2 id="route-title">{t('exec.route')}</h2>
        {route.length ? (
          <p className="route" data-testid="route">
            {route.map((s, i) => <span key={s.id}>{i > 0 && <span aria-hidden="true"> → </span>}<code>{s.id}</code></span>)}
          </p>
        ) : <p className="muted">{t('exec.noneRan')}</p>}
        {skipped.length > 0 && (
          <p data-testid="skipped">{t('exec.skipped')}: {skipped.map((s) => <code key={s.id} className="chip">{s.id}</code>)}</p>
        )}
      </section>

      <section className="card" aria-labelledby="steps-title">
        <h2 id="steps-title">{t('exec.timeline')}</h2>
        <Timeline steps={steps} start={start} end={end} />
      </section>

      <section className="card" aria-labelledby="wasm-title">
        <h2 id="wasm-title">{t('exec.wasm')}</h2>
        {logs.data && logs.data.logs.length ? (
          <div className="table-wrap">
            <table className="table compact" data-testid="wasm-logs">
              <caption className="sr-only">{t('exec.wasm')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('exec.step')}</th>
                  <th scope="col">{t('exec.module')}</th>
                  <th scope="col">{t('exec.function')}</th>
                  <th scope="col">{t('exec.attempt')}</th>
                  <th scope="col">{t('exec.fuel')}</th>
                  <th scope="col">{t('exec.memory')}</th>
                  <th scope="col">{t('exec.duration')}</th>
                  <th scope="col">{t('exec.error')}</th>
                </tr>
              </thead>
              <tbody>
                {logs.data.logs.map((l) => (
                  <Fragment key={l.id}>
                  <tr>
                    <td><code>{l.step_id}</code></td>
                    <td>{l.module_id ? <Link href={`/modules/${l.module_id}`}>{l.module_name}@{l.module_version}</Link> : `${l.module_name}@${l.module_version}`}</td>
                    <td><code>{l.function_name}</code></td>
                    <td>{l.attempt}</td>
                    <td>{formatNumber(l.fuel_consumed, locale)}</td>
                    <td>{formatBytes(l.memory_used_bytes, locale)}</td>
                    <td>{formatDuration(l.duration_ms, locale)}</td>
                    <td>{l.error ? <><code className="code">{l.error.code}</code> {l.error.message}</> : '—'}</td>
                  </tr>
                  <tr className="sub-row" data-testid="run-record">
                    <td colSpan={8}>
                      <RunRecord logs={l.logs ?? []} calls={l.host_calls ?? []} runLabel={`${l.step_id} (${t('exec.attemptN', { n: l.attempt })})`} />
                      {canOperate && <ReplayButton executionId={e.id} stepId={l.step_id} attempt={l.attempt} />}
                    </td>
                  </tr>
                  </Fragment>
                ))}
              </tbody>
            </table>
          </div>
        ) : <p className="muted">{t('exec.noWasm')}</p>}
      </section>

      {e.context !== undefined && e.context !== null && (
        <section className="card" aria-labelledby="ctx-title">
          <h2 id="ctx-title">{t('exec.context')}</h2>
          <Json value={e.context} label={t('exec.context')} expanded={false} />
        </section>
      )}
    </article>
  );
}
