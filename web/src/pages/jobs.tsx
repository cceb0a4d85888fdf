import { useState } from 'react';
import { Link } from 'wouter';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, qs, triggerJob, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import { useDebounced } from '../hooks.ts';
import type { JobOverview } from '../types.ts';
import { jobZone } from '../types.ts';
import { Empty, ErrorNote, Field, Loading, Pager, StatusBadge } from '../components/ui.tsx';
import { FireTime, ScheduleText } from '../components/schedule.tsx';
import type { MessageKey } from '../messages/en.ts';

const LIMIT = 20;
const SCHEDULE_TYPES = ['cron', 'fixed_rate', 'fixed_delay', 'once', 'none'] as const;
const LAST_STATUSES = ['succeeded', 'failed', 'running', 'queued', 'dead_lettered', 'cancelled', 'never'] as const;

export function JobsPage() {
  const { t } = useI18n();
  const canOperate = useCan('operator');
  const qc = useQueryClient();
  const [search, setSearch] = useState('');
  const [enabled, setEnabled] = useState('');
  const [scheduleType, setScheduleType] = useState('');
  const [lastStatus, setLastStatus] = useState('');
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string | null>(null);
  const q = useDebounced(search);

  const params = { page, limit: LIMIT, search: q, enabled, schedule_type: scheduleType, last_status: lastStatus };
  const jobs = useQuery({
    queryKey: ['jobs-overview', params],
    queryFn: () => api<Page<JobOverview>>(`/overview/jobs${qs(params)}`),
    placeholderData: (prev) => prev,
  });

  const toggle = useMutation({
    mutationFn: (j: JobOverview) => api(`/jobs/${j.id}/${j.enabled ? 'disable' : 'enable'}`, { method: 'POST' }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['jobs-overview'] }),
  });
  const run = useMutation({
    mutationFn: (j: JobOverview) => triggerJob(j.id),
    onSuccess: (r, j) => {
      setNotice(t('jobs.queued', { name: j.name }));
      qc.invalidateQueries({ queryKey: ['jobs-overview'] });
      void r;
    },
  });

  const filter = (set: (v: string) => void) => (e: { target: { value: string } }) => {
    set(e.target.value);
    setPage(1);
  };

  return (
    <section aria-labelledby="jobs-title">
      <div className="page-head">
        <h1 id="jobs-title">{t('jobs.title')}</h1>
        {canOperate && <Link href="/jobs/new" className="button primary">{t('jobs.new')}</Link>}
      </div>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <Field label={t('common.search')}>
          {({ id }) => <input id={id} type="search" value={search} onChange={filter(setSearch)} placeholder={t('jobs.searchPlaceholder')} />}
        </Field>
        <Field label={t('jobs.enabled')}>
          {({ id }) => (
            <select id={id} value={enabled} onChange={filter(setEnabled)}>
              <option value="">{t('common.all')}</option>
              <option value="true">{t('jobs.enabledYes')}</option>
              <option value="false">{t('jobs.enabledNo')}</option>
            </select>
          )}
        </Field>
        <Field label={t('jobs.scheduleType')}>
          {({ id }) => (
            <select id={id} value={scheduleType} onChange={filter(setScheduleType)}>
              <option value="">{t('common.all')}</option>
              {SCHEDULE_TYPES.map((s) => <option key={s} value={s}>{t(`scheduleType.${s}` as MessageKey)}</option>)}
            </select>
          )}
        </Field>
        <Field label={t('jobs.lastStatus')}>
          {({ id }) => (
            <select id={id} value={lastStatus} onChange={filter(setLastStatus)}>
              <option value="">{t('common.all')}</option>
              {LAST_STATUSES.map((s) => <option key={s} value={s}>{t(`status.${s}` as MessageKey)}</option>)}
            </select>
          )}
        </Field>
      </form>
      {notice && <p className="notice" role="status">{notice}</p>}
      <ErrorNote error={jobs.error ?? toggle.error ?? run.error} />
      {jobs.isLoading ? <Loading /> : jobs.data && jobs.data.items.length === 0 ? (
        <Empty>{t('jobs.empty')}</Empty>
      ) : jobs.data && (
        <div className="table-wrap">
          <table className="table stack">
            <caption className="sr-only">{t('jobs.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('jobs.name')}</th>
                <th scope="col">{t('jobs.schedule')}</th>
                <th scope="col">{t('jobs.nextFire')}</th>
                <th scope="col">{t('jobs.lastStatus')}</th>
                <th scope="col">{t('jobs.enabled')}</th>
                {canOperate && <th scope="col"><span className="sr-only">{t('common.actions')}</span></th>}
              </tr>
            </thead>
            <tbody>
              {jobs.data.items.map((j) => (
                <tr key={j.id} data-job={j.name}>
                  <td data-label={t('jobs.name')}>
                    <Link href={`/jobs/${j.id}`} className="strong">{j.name}</Link>
                    {j.description && <div className="muted small clamp">{j.description}</div>}
                    <div className="chips">{[...new Set(j.step_types)].map((s) => <span key={s} className="chip">{s}</span>)}</div>
                  </td>
                  <td data-label={t('jobs.schedule')}><ScheduleText schedule={j.schedule} /></td>
                  <td data-label={t('jobs.nextFire')}><FireTime iso={j.next_fire_at} zone={jobZone(j.schedule)} relative /></td>
                  <td data-label={t('jobs.lastStatus')}><StatusBadge status={j.last_status} /></td>
                  <td data-label={t('jobs.enabled')}>
                    {canOperate ? (
                      <label className="switch">
                        <input
                          type="checkbox"
                          role="switch"
                          checked={j.enabled}
                          disabled={toggle.isPending}
                          onChange={() => toggle.mutate(j)}
                          aria-label={t('jobs.toggleLabel', { name: j.name })}
                        />
                        <span aria-hidden="true">{j.enabled ? t('jobs.enabledYes') : t('jobs.enabledNo')}</span>
                      </label>
                    ) : (
                      <span>{j.enabled ? t('jobs.enabledYes') : t('jobs.enabledNo')}</span>
                    )}
                  </td>
                  {canOperate && (
                    <td className="right">
                      <button type="button" onClick={() => run.mutate(j)} disabled={run.isPending} aria-label={t('jobs.runLabel', { name: j.name })}>
                        {t('jobs.run')}
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {jobs.data && <Pager page={page} limit={LIMIT} total={jobs.data.total} onPage={setPage} />}
    </section>
  );
}
