import { useState } from 'react';
import { JobPauseControl } from '../components/maintenance.tsx';
import { Link, useLocation, useParams } from 'wouter';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, triggerJob, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import { useStatusEvents } from '../hooks.ts';
import type { Execution, Job } from '../types.ts';
import { ConfirmDialog, Empty, ErrorNote, Json, Loading } from '../components/ui.tsx';
import { ScheduleText } from '../components/schedule.tsx';
import { FirePreview } from '../components/preview.tsx';
import { ExecutionsTable } from '../components/executions-table.tsx';
import { formatDateTime } from '../format.ts';

export default function JobPage() {
  const { id } = useParams<{ id: string }>();
  const { t, locale } = useI18n();
  const canOperate = useCan('operator');
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [newSecret, setNewSecret] = useState<string | null>(null);

  const job = useQuery({ queryKey: ['job', id], queryFn: () => api<Job>(`/jobs/${id}`) });
  const executions = useQuery({
    queryKey: ['job-executions', id],
    queryFn: () => api<Page<Execution>>(`/jobs/${id}/executions?limit=20`),
  });
  useStatusEvents({ job_id: id }, () => qc.invalidateQueries({ queryKey: ['job-executions', id] }));

  const refresh = () => {
    qc.invalidateQueries({ queryKey: ['job', id] });
    qc.invalidateQueries({ queryKey: ['jobs-overview'] });
  };
  const toggle = useMutation({
    mutationFn: () => api(`/jobs/${id}/${job.data?.enabled ? 'disable' : 'enable'}`, { method: 'POST' }),
    onSuccess: refresh,
  });
  const run = useMutation({
    mutationFn: () => triggerJob(id),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['job-executions', id] }),
  });
  const remove = useMutation({
    mutationFn: () => api(`/jobs/${id}`, { method: 'DELETE' }),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: ['jobs-overview'] });
      navigate('/jobs');
    },
  });
  const secret = useMutation({
    mutationFn: () => api<{ secret: string }>(`/jobs/${id}/webhook-secret`, { method: 'POST' }),
    onSuccess: (r) => {
      setNewSecret(r.secret);
      refresh();
    },
  });

  if (job.isLoading) return <Loading />;
  if (job.error || !job.data) return <ErrorNote error={job.error} />;
  const j = job.data;
  const webhookUrl = `${location.origin}/api/v1/webhooks/${j.id}`;

  return (
    <article aria-labelledby="job-title">
      <nav className="crumbs" aria-label={t('common.breadcrumb')}><Link href="/jobs">{t('nav.jobs')}</Link> /</nav>
      <div className="page-head">
        <h1 id="job-title">{j.name}</h1>
        {canOperate && (
          <div className="actions">
            <button type="button" className="primary" onClick={() => run.mutate()} disabled={run.isPending}>{t('jobs.run')}</button>
            <button type="button" onClick={() => toggle.mutate()} disabled={toggle.isPending}>
              {j.enabled ? t('job.disable') : t('job.enable')}
            </button>
            <Link href={`/jobs/${j.id}/edit`} className="button">{t('job.edit')}</Link>
            <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>{t('common.delete')}</button>
          </div>
        )}
      </div>
      {run.data && (
        <p className="notice" role="status">
          {t('job.runQueued')} <Link href={`/executions/${run.data.execution_id}`}>{run.data.execution_id.slice(0, 8)}</Link>
        </p>
      )}
      <ErrorNote error={run.error ?? toggle.error ?? remove.error ?? secret.error} />
      {j.description && <p>{j.description}</p>}
      <JobPauseControl jobId={j.id} retentionDays={j.retention_days} />

      <div className="grid2">
        <section className="card" aria-labelledby="def-title">
          <h2 id="def-title">{t('job.definition')}</h2>
          <dl className="facts">
            <dt>{t('jobs.enabled')}</dt><dd>{j.enabled ? t('jobs.enabledYes') : t('jobs.enabledNo')}</dd>
            <dt>{t('jobs.schedule')}</dt><dd><ScheduleText schedule={j.schedule} /></dd>
            <dt>{t('job.timeout')}</dt><dd>{j.timeout_seconds} s</dd>
            <dt>{t('job.retries')}</dt><dd>{j.max_retries} ({t('job.backoff', { n: j.retry_backoff_seconds })})</dd>
            <dt>{t('job.misfire')}</dt><dd><code>{j.misfire_policy}</code></dd>
            <dt>{t('job.overlap')}</dt><dd><code>{j.overlap_policy}</code></dd>
            <dt>{t('job.limits')}</dt>
            <dd data-testid="job-limits">
              {[
                j.concurrency_limit ? t('job.concurrency', { limit: j.concurrency_limit, key: j.concurrency_key ?? t('builder.ratePerJob') }) : null,
                j.rate_limit ? t('job.rate', { limit: j.rate_limit.limit, s: j.rate_limit.interval_seconds, per: t(j.rate_limit.per === 'key' ? 'builder.ratePerKey' : 'builder.ratePerJob') }) : null,
              ].filter(Boolean).join(' · ') || t('job.noLimits')}
            </dd>
            <dt>{t('job.version')}</dt><dd>{j.version} · {formatDateTime(j.updated_at, locale)} {j.updated_by && `· ${j.updated_by}`}</dd>
          </dl>
          <h3>{t('job.steps')}</h3>
          <ol className="steps-list">
            {j.steps.map((s) => (
              <li key={s.id}>
                <span className="chip">{s.type}</span> <strong>{s.name}</strong> <code className="muted">{s.id}</code>
              </li>
            ))}
          </ol>
          <details>
            <summary>{t('job.json')}</summary>
            <Json value={j} label={t('job.json')} expanded={false} />
          </details>
        </section>
        <section className="card" aria-labelledby="preview-title">
          <h2 id="preview-title">{t('preview.title')}</h2>
          <FirePreview schedule={j.schedule} />
        </section>
      </div>

      <section className="card" aria-labelledby="webhook-title">
        <h2 id="webhook-title">{t('job.webhook')}</h2>
        <dl className="facts">
          <dt>{t('job.webhookUrl')}</dt><dd><code className="break">POST {webhookUrl}</code></dd>
          <dt>{t('job.webhookSecret')}</dt>
          <dd>{j.webhook?.has_secret ? t('job.webhookSigned') : t('job.webhookUnsigned')}</dd>
          <dt>{t('job.webhookRate')}</dt><dd>{t('job.perMinute', { n: j.webhook?.rate_limit_per_minute ?? 60 })}</dd>
        </dl>
        {newSecret && (
          <div className="notice" role="status">
            {t('job.secretOnce')} <code className="break" data-testid="webhook-secret">{newSecret}</code>
          </div>
        )}
        {canOperate && (
          <button type="button" onClick={() => secret.mutate()} disabled={secret.isPending}>{t('job.newSecret')}</button>
        )}
      </section>

      <section className="card" aria-labelledby="jexec-title">
        <h2 id="jexec-title">{t('job.executions')}</h2>
        {executions.isLoading ? <Loading /> : executions.data && executions.data.items.length ? (
          <ExecutionsTable items={executions.data.items} showJob={false} caption={t('job.executions')} />
        ) : <Empty>{t('exec.empty')}</Empty>}
      </section>

      <ConfirmDialog
        open={confirmDelete}
        title={t('job.deleteTitle', { name: j.name })}
        confirmLabel={t('common.delete')}
        onConfirm={() => remove.mutate()}
        onClose={() => setConfirmDelete(false)}
        busy={remove.isPending}
      >
        <p>{t('job.deleteText')}</p>
      </ConfirmDialog>
    </article>
  );
}
