import { Link } from 'wouter';
import { useI18n } from '../i18n.tsx';
import type { Execution } from '../types.ts';
import { formatDateTime, formatDuration } from '../format.ts';
import { StatusBadge } from './ui.tsx';
import type { MessageKey } from '../messages/en.ts';

/** Row selection for bulk actions (the executions page): the checked ids, and a change of some of them. */
export interface ExecutionSelection {
  selected: ReadonlySet<string>;
  onChange(ids: string[], checked: boolean): void;
}

export function ExecutionsTable({ items, showJob = true, caption, selection }: { items: Execution[]; showJob?: boolean; caption: string; selection?: ExecutionSelection }) {
  const { t, locale } = useI18n();
  const allChecked = selection !== undefined && items.length > 0 && items.every((e) => selection.selected.has(e.id));
  return (
    <div className="table-wrap">
      <table className="table" data-testid="executions">
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            {selection && (
              <th scope="col">
                <input type="checkbox" aria-label={t('exec.selectAll')} checked={allChecked} onChange={(ev) => selection.onChange(items.map((e) => e.id), ev.target.checked)} />
              </th>
            )}
            <th scope="col">{t('exec.id')}</th>
            {showJob && <th scope="col">{t('exec.job')}</th>}
            <th scope="col">{t('exec.status')}</th>
            <th scope="col">{t('exec.trigger')}</th>
            <th scope="col">{t('exec.created')}</th>
            <th scope="col">{t('exec.duration')}</th>
            <th scope="col">{t('exec.attempt')}</th>
          </tr>
        </thead>
        <tbody>
          {items.map((e) => (
            <tr key={e.id} data-execution={e.id} data-status={e.status}>
              {selection && (
                <td>
                  <input type="checkbox" aria-label={t('exec.select', { id: e.id.slice(0, 8) })} checked={selection.selected.has(e.id)} onChange={(ev) => selection.onChange([e.id], ev.target.checked)} />
                </td>
              )}
              <td><Link href={`/executions/${e.id}`}><code>{e.id.slice(0, 8)}</code></Link></td>
              {showJob && <td><Link href={`/jobs/${e.job_id}`}>{e.job_name ?? e.job_id.slice(0, 8)}</Link></td>}
              <td><StatusBadge status={e.status} /></td>
              <td>{t(`trigger.${e.trigger_type}` as MessageKey) ?? e.trigger_type}</td>
              <td><time dateTime={e.created_at}>{formatDateTime(e.created_at, locale)}</time></td>
              <td>{formatDuration(e.duration_ms, locale)}</td>
              <td>{e.attempt}/{e.max_attempts}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
