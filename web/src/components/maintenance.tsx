import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'wouter';
import { api } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { formatDateTime } from '../format.ts';
import { useCan } from '../session.tsx';
import { ErrorNote } from './ui.tsx';

export interface PauseState {
  paused: boolean;
  reason: string | null;
  paused_at: string | null;
  paused_by: string | null;
  resumed_at: string | null;
  resumed_by: string | null;
}
export interface JobPauseState extends PauseState {
  job_id: string;
  job_name: string;
}
export interface Maintenance extends PauseState {
  paused_jobs: JobPauseState[];
}

/** The cluster's maintenance state; every page's banner polls it (another operator may pause). */
export function useMaintenance() {
  return useQuery({ queryKey: ['maintenance'], queryFn: () => api<Maintenance>('/maintenance'), refetchInterval: 15_000 });
}

/** Shown above every page while firing is paused cluster-wide. */
export function MaintenanceBanner() {
  const { t, locale } = useI18n();
  const m = useMaintenance();
  if (!m.data?.paused) return null;
  return (
    <div className="banner-paused" role="status" data-testid="maintenance-banner">
      <strong>{t('maint.banner')}</strong>{' '}
      {t('maint.since', { at: formatDateTime(m.data.paused_at, locale), by: m.data.paused_by ?? '?' })}
      {m.data.reason && <> — {m.data.reason}</>} <Link href="/maintenance">{t('maint.manage')}</Link>
    </div>
  );
}

/** A job's pause switch and its state, on the job page. */
export function JobPauseControl({ jobId, retentionDays }: { jobId: string; retentionDays: number | undefined }) {
  const { t, locale } = useI18n();
  const canOperate = useCan('operator');
  const qc = useQueryClient();
  const state = useQuery({ queryKey: ['job-pause', jobId], queryFn: () => api<JobPauseState>(`/jobs/${jobId}/pause`) });
  const [reason, setReason] = useState('');
  const toggle = useMutation({
    mutationFn: () =>
      api<JobPauseState>(`/jobs/${jobId}/${state.data?.paused ? 'resume' : 'pause'}`, { method: 'POST', body: state.data?.paused ? {} : { reason: reason || null } }),
    onSuccess: () => {
      setReason('');
      qc.invalidateQueries({ queryKey: ['job-pause', jobId] });
      qc.invalidateQueries({ queryKey: ['maintenance'] });
    },
  });
  const s = state.data;
  return (
    <section className="card" aria-labelledby="ops-title" data-testid="job-operations">
      <h2 id="ops-title">{t('maint.jobTitle')}</h2>
      <dl className="facts">
        <dt>{t('maint.firing')}</dt>
        <dd data-testid="job-firing">
          {s?.paused ? t('maint.jobPaused', { at: formatDateTime(s.paused_at, locale), by: s.paused_by ?? '?' }) : t('maint.active')}
          {s?.paused && s.reason && <> — {s.reason}</>}
        </dd>
        <dt>{t('retention.title')}</dt>
        <dd>{retentionDays === undefined ? t('retention.global') : retentionDays === 0 ? t('retention.forever') : t('retention.days', { n: retentionDays })}</dd>
      </dl>
      {canOperate && s && (
        <div className="actions">
          {!s.paused && (
            <input aria-label={t('maint.reason')} placeholder={t('maint.reason')} value={reason} maxLength={1000} onChange={(e) => setReason(e.target.value)} />
          )}
          <button type="button" onClick={() => toggle.mutate()} disabled={toggle.isPending}>
            {s.paused ? t('maint.resumeJob') : t('maint.pauseJob')}
          </button>
        </div>
      )}
      <p className="muted">{t('maint.jobHelp')}</p>
      <ErrorNote error={state.error ?? toggle.error} />
    </section>
  );
}
