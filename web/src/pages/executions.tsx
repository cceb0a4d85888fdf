import { useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, qs, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useStatusEvents } from '../hooks.ts';
import type { Execution } from '../types.ts';
import { Empty, ErrorNote, Field, Loading, Pager } from '../components/ui.tsx';
import { ExecutionsTable } from '../components/executions-table.tsx';
import type { MessageKey } from '../messages/en.ts';

const LIMIT = 25;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'dead_lettered', 'cancelled'] as const;

export default function ExecutionsPage() {
  const { t } = useI18n();
  const qc = useQueryClient();
  const [status, setStatus] = useState('');
  const [page, setPage] = useState(1);
  const params = { page, limit: LIMIT, status };
  const list = useQuery({
    queryKey: ['executions', params],
    queryFn: () => api<Page<Execution>>(`/executions${qs(params)}`),
    placeholderData: (prev) => prev,
  });
  // Each status event may add a row or change one: refetch the page (react-query merges bursts).
  const live = useStatusEvents({}, (e) => {
    if (e.kind === 'execution') qc.invalidateQueries({ queryKey: ['executions'] });
  });

  return (
    <section aria-labelledby="exec-title">
      <div className="page-head">
        <h1 id="exec-title">{t('exec.title')}</h1>
        <span className={`live ${live ? 'on' : ''}`} data-testid="live" role="status">
          {live ? t('exec.live') : t('exec.connecting')}
        </span>
      </div>
      <div className="filters">
        <Field label={t('exec.status')}>
          {({ id }) => (
            <select id={id} value={status} onChange={(e) => { setStatus(e.target.value); setPage(1); }}>
              <option value="">{t('common.all')}</option>
              {STATUSES.map((s) => <option key={s} value={s}>{t(`status.${s}` as MessageKey)}</option>)}
            </select>
          )}
        </Field>
      </div>
      <ErrorNote error={list.error} />
      {list.isLoading ? <Loading /> : list.data && list.data.items.length ? (
        <ExecutionsTable items={list.data.items} caption={t('exec.title')} />
      ) : <Empty>{t('exec.empty')}</Empty>}
      {list.data && <Pager page={page} limit={LIMIT} total={list.data.total} onPage={setPage} />}
    </section>
  );
}
