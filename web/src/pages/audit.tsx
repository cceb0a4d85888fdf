import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api, qs, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useDebounced } from '../hooks.ts';
import { Empty, ErrorNote, Field, Json, Loading, Pager } from '../components/ui.tsx';
import { formatDateTime } from '../format.ts';

interface AuditRecord {
  id: number;
  at: string;
  actor: { id: string | null; name: string | null; role: string | null };
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string;
  status_code: number | null;
  details: unknown;
  ip?: string | null;
}

const LIMIT = 25;
const OUTCOMES = ['success', 'failure', 'denied', 'alert'];
/** `<input type="datetime-local">` gives local wall-clock time without a zone; the API wants an instant. */
const toInstant = (local: string) => (local ? new Date(local).toISOString() : '');

export default function AuditPage() {
  const { t, locale } = useI18n();
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [outcome, setOutcome] = useState('');
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [page, setPage] = useState(1);
  const a = useDebounced(actor);
  const act = useDebounced(action);
  const params = { page, limit: LIMIT, actor: a.trim(), action: act.trim(), outcome, since: toInstant(since), until: toInstant(until) };
  const list = useQuery({ queryKey: ['audit', params], queryFn: () => api<Page<AuditRecord>>(`/audit${qs(params)}`), placeholderData: (p) => p });
  const reset = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    setPage(1);
  };
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">{t('audit.title')}</h1>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <Field label={t('audit.actor')}>{({ id }) => <input id={id} value={actor} onChange={(e) => reset(setActor)(e.target.value)} placeholder="test-admin" />}</Field>
        <Field label={t('audit.action')}>{({ id }) => <input id={id} value={action} onChange={(e) => reset(setAction)(e.target.value)} placeholder="job.create" />}</Field>
        <Field label={t('audit.outcome')}>
          {({ id }) => (
            <select id={id} value={outcome} onChange={(e) => reset(setOutcome)(e.target.value)}>
              <option value="">{t('common.all')}</option>
              {OUTCOMES.map((o) => <option key={o} value={o}>{o}</option>)}
            </select>
          )}
        </Field>
        <Field label={t('audit.since')}>{({ id }) => <input id={id} type="datetime-local" value={since} onChange={(e) => reset(setSince)(e.target.value)} />}</Field>
        <Field label={t('audit.until')}>{({ id }) => <input id={id} type="datetime-local" value={until} onChange={(e) => reset(setUntil)(e.target.value)} />}</Field>
      </form>
      <ErrorNote error={list.error} />
      {list.isLoading ? <Loading /> : list.data && list.data.items.length ? (
        <div className="table-wrap">
          <table className="table compact" data-testid="audit">
            <caption className="sr-only">{t('audit.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('audit.at')}</th>
                <th scope="col">{t('audit.actor')}</th>
                <th scope="col">{t('audit.action')}</th>
                <th scope="col">{t('audit.resource')}</th>
                <th scope="col">{t('audit.outcome')}</th>
                <th scope="col">{t('audit.details')}</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((r) => (
                <tr key={r.id} data-action={r.action} data-outcome={r.outcome}>
                  <td><time dateTime={r.at}>{formatDateTime(r.at, locale)}</time></td>
                  <td>{r.actor.name ?? '—'} {r.actor.role && <span className="chip">{r.actor.role}</span>}</td>
                  <td><code>{r.action}</code></td>
                  <td>{r.resource_type && <span className="chip">{r.resource_type}</span>} <code className="small">{r.resource_id ?? ''}</code></td>
                  <td><span className={`badge outcome-${r.outcome}`}>{r.outcome}</span> <span className="muted small">{r.status_code}</span></td>
                  <td>{r.details ? <details><summary>{t('audit.show')}</summary><Json value={r.details} label={t('audit.details')} /></details> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : <Empty>{t('audit.empty')}</Empty>}
      {list.data && <Pager page={page} limit={LIMIT} total={list.data.total} onPage={setPage} />}
    </section>
  );
}
