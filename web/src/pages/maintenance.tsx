import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'wouter';
import { api } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { formatDateTime } from '../format.ts';
import { useCan } from '../session.tsx';
import { useMaintenance } from '../components/maintenance.tsx';
import { Empty, ErrorNote, Loading } from '../components/ui.tsx';

interface Retention {
  executions_days: number;
  audit_days: number;
  interval_seconds: number;
  batch_size: number;
  job_overrides: { job_id: string; job_name: string; retention_days: number }[];
  last_run: { started_at: string; finished_at: string | null; node: string; pruned: Record<string, number> } | null;
}

/** Maintenance mode (pause firing cluster-wide, the jobs paused one by one) and retention. */
export default function MaintenancePage() {
  const { t, locale } = useI18n();
  const isAdmin = useCan('admin');
  const canOperate = useCan('operator');
  const qc = useQueryClient();
  const m = useMaintenance();
  const retention = useQuery({ queryKey: ['retention'], queryFn: () => api<Retention>('/retention') });
  const [reason, setReason] = useState('');
  const toggle = useMutation({
    mutationFn: () => api('/maintenance', { method: 'POST', body: m.data?.paused ? { paused: false } : { paused: true, reason: reason || null } }),
    onSuccess: () => {
      setReason('');
      qc.invalidateQueries({ queryKey: ['maintenance'] });
    },
  });
  const resumeJob = useMutation({
    mutationFn: (id: string) => api(`/jobs/${id}/resume`, { method: 'POST', body: {} }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['maintenance'] }),
  });
  const runNow = useMutation({
    mutationFn: () => api<{ counts: Record<string, number> }>('/retention/run', { method: 'POST' }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['retention'] }),
  });
  const fmtDays = (n: number) => (n === 0 ? t('retention.forever') : t('retention.days', { n }));

  if (m.isLoading) return <Loading />;
  const s = m.data;
  return (
    <article aria-labelledby="maint-title">
      <h1 id="maint-title">{t('maint.title')}</h1>
      <ErrorNote error={m.error ?? toggle.error ?? resumeJob.error} />
      {s && (
        <section className="card" aria-labelledby="cluster-title">
          <h2 id="cluster-title">{t('maint.cluster')}</h2>
          <p data-testid="cluster-firing">
            {s.paused ? t('maint.since', { at: formatDateTime(s.paused_at, locale), by: s.paused_by ?? '?' }) : t('maint.active')}
            {s.paused && s.reason && <> — {s.reason}</>}
          </p>
          {!s.paused && s.resumed_at && <p className="muted">{t('maint.lastResumed', { at: formatDateTime(s.resumed_at, locale), by: s.resumed_by ?? '?' })}</p>}
          {isAdmin && (
            <div className="actions">
              {!s.paused && (
                <input aria-label={t('maint.reason')} placeholder={t('maint.reason')} value={reason} maxLength={1000} onChange={(e) => setReason(e.target.value)} />
              )}
              <button type="button" className={s.paused ? 'primary' : 'danger'} onClick={() => toggle.mutate()} disabled={toggle.isPending}>
                {s.paused ? t('maint.resumeAll') : t('maint.pauseAll')}
              </button>
            </div>
          )}
          <p className="muted">{t('maint.help')}</p>
        </section>
      )}
      {s && (
        <section className="card" aria-labelledby="paused-jobs-title">
          <h2 id="paused-jobs-title">{t('maint.pausedJobs')}</h2>
          {s.paused_jobs.length === 0 ? (
            <Empty>{t('maint.noPausedJobs')}</Empty>
          ) : (
            <ul data-testid="paused-jobs">
              {s.paused_jobs.map((j) => (
                <li key={j.job_id}>
                  <Link href={`/jobs/${j.job_id}`}>{j.job_name}</Link> · {formatDateTime(j.paused_at, locale)} · {j.paused_by}
                  {j.reason && <> — {j.reason}</>}{' '}
                  {canOperate && (
                    <button type="button" onClick={() => resumeJob.mutate(j.job_id)} disabled={resumeJob.isPending}>
                      {t('maint.resumeJob')}
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
      <section className="card" aria-labelledby="retention-title">
        <h2 id="retention-title">{t('retention.title')}</h2>
        <ErrorNote error={retention.error ?? runNow.error} />
        {retention.data && (
          <>
            <dl className="facts" data-testid="retention-settings">
              <dt>{t('retention.executions')}</dt><dd>{fmtDays(retention.data.executions_days)}</dd>
              <dt>{t('retention.audit')}</dt><dd>{fmtDays(retention.data.audit_days)}</dd>
              <dt>{t('retention.lastRun')}</dt>
              <dd data-testid="retention-last-run">
                {retention.data.last_run
                  ? `${formatDateTime(retention.data.last_run.finished_at ?? retention.data.last_run.started_at, locale)} · ${Object.entries(retention.data.last_run.pruned)
                      .map(([k, n]) => `${k} ${n}`)
                      .join(', ')}`
                  : t('retention.never')}
              </dd>
            </dl>
            {retention.data.job_overrides.length > 0 && (
              <>
                <h3>{t('retention.overrides')}</h3>
                <ul>
                  {retention.data.job_overrides.map((o) => (
                    <li key={o.job_id}><Link href={`/jobs/${o.job_id}`}>{o.job_name}</Link>: {fmtDays(o.retention_days)}</li>
                  ))}
                </ul>
              </>
            )}
            {isAdmin && (
              <button type="button" onClick={() => runNow.mutate()} disabled={runNow.isPending}>{t('retention.runNow')}</button>
            )}
            {runNow.data && (
              <p className="notice" role="status" data-testid="retention-result">
                {t('retention.ran')} {Object.entries(runNow.data.counts).map(([k, n]) => `${k} ${n}`).join(', ')}
              </p>
            )}
            <p className="muted">{t('retention.help')}</p>
          </>
        )}
      </section>
    </article>
  );
}
