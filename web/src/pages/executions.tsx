import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, qs, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useStatusEvents } from '../hooks.ts';
import type { Execution } from '../types.ts';
import { ConfirmDialog, Empty, ErrorNote, Field, Loading, Pager } from '../components/ui.tsx';
import { useCan } from '../session.tsx';
import { ExecutionsTable } from '../components/executions-table.tsx';
import type { MessageKey } from '../messages/en.ts';

const LIMIT = 25;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'dead_lettered', 'cancelled'] as const;

type BulkAction = 'cancel' | 'retry';
interface BulkResult {
  counts: Record<string, number>;
  items: { execution_id: string; outcome: string }[];
}

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
  // Bulk actions on the checked rows (operators): one POST /executions/bulk with their ids.
  const canOperate = useCan('operator');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirm, setConfirm] = useState<BulkAction | null>(null);
  const select = (ids: string[], on: boolean) =>
    setSelected((prev) => {
      const next = new Set(prev);
      for (const id of ids) on ? next.add(id) : next.delete(id);
      return next;
    });
  const bulk = useMutation({
    mutationFn: (action: BulkAction) => api<BulkResult>('/executions/bulk', { method: 'POST', body: { action, filter: { ids: [...selected] } } }),
    onSuccess: () => {
      setSelected(new Set());
      setConfirm(null);
      qc.invalidateQueries({ queryKey: ['executions'] });
    },
  });
  const done = bulk.data ? (bulk.data.counts.cancelled ?? 0) + (bulk.data.counts.retried ?? 0) : 0;

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
      {canOperate && selected.size > 0 && (
        <div className="actions bulk-bar" data-testid="bulk-bar">
          <span role="status">{t('exec.selected', { n: selected.size })}</span>
          <button type="button" className="danger" onClick={() => setConfirm('cancel')}>{t('exec.bulkCancel')}</button>
          <button type="button" className="primary" onClick={() => setConfirm('retry')}>{t('exec.bulkRetry')}</button>
          <button type="button" onClick={() => setSelected(new Set())}>{t('exec.bulkClear')}</button>
        </div>
      )}
      {bulk.data && (
        <p className="notice" role="status" data-testid="bulk-result">
          {t('exec.bulkDone', { done, skipped: bulk.data.counts.skipped ?? 0, missing: bulk.data.counts.not_found ?? 0 })}
        </p>
      )}
      <ErrorNote error={list.error ?? bulk.error} />
      {list.isLoading ? <Loading /> : list.data && list.data.items.length ? (
        <ExecutionsTable items={list.data.items} caption={t('exec.title')} selection={canOperate ? { selected, onChange: select } : undefined} />
      ) : <Empty>{t('exec.empty')}</Empty>}
      <ConfirmDialog
        open={confirm !== null}
        title={confirm === 'retry' ? t('exec.bulkRetry') : t('exec.bulkCancel')}
        confirmLabel={confirm === 'retry' ? t('exec.bulkRetry') : t('exec.bulkCancel')}
        danger={confirm === 'cancel'}
        busy={bulk.isPending}
        onConfirm={() => confirm && bulk.mutate(confirm)}
        onClose={() => setConfirm(null)}
      >
        <p>{t(confirm === 'retry' ? 'exec.bulkConfirmRetry' : 'exec.bulkConfirmCancel', { n: selected.size })}</p>
      </ConfirmDialog>
      {list.data && <Pager page={page} limit={LIMIT} total={list.data.total} onPage={setPage} />}
    </section>
  );
}
