import { useQuery } from '@tanstack/react-query';
import { api, ApiError, qs } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import type { Preview, Schedule } from '../types.ts';
import { browserZone, formatDateTime } from '../format.ts';

/** The next fire times of a schedule (saved or being edited), from POST /schedules/preview. */
export function FirePreview({ schedule, count = 10 }: { schedule: Schedule | null; count?: number }) {
  const { t, locale } = useI18n();
  const key = JSON.stringify(schedule);
  const preview = useQuery({
    queryKey: ['preview', key, count],
    queryFn: () => api<Preview>(`/schedules/preview${qs({ ...(schedule as Record<string, string | number>), count })}`),
    enabled: schedule !== null,
    retry: false,
    staleTime: 30_000,
  });
  if (!schedule) return <p className="muted">{t('preview.noSchedule')}</p>;
  if (preview.isLoading) return <p className="muted">{t('common.loading')}</p>;
  if (preview.error) {
    const e = preview.error as ApiError;
    return (
      <div className="alert" role="alert" data-testid="preview-error">
        {e.problems.length ? e.problems.map((p) => <div key={p.path}><code>{p.path}</code>: {p.message}</div>) : e.message}
      </div>
    );
  }
  const data = preview.data!;
  const mine = browserZone();
  if (data.times.length === 0) return <p className="muted">{data.note ?? t('preview.none')}</p>;
  return (
    <div className="table-wrap">
      <table className="table compact nowrap" data-testid="fire-preview">
        <caption className="sr-only">{t('preview.title')}</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">{t('preview.jobZone', { zone: data.timezone })}</th>
            {mine !== data.timezone && <th scope="col">{t('preview.yourZone', { zone: mine })}</th>}
          </tr>
        </thead>
        <tbody>
          {data.times.map((x, i) => (
            <tr key={x.at}>
              <td>{i + 1}</td>
              <td><time dateTime={x.at}>{formatDateTime(x.at, locale, data.timezone, true)}</time></td>
              {mine !== data.timezone && <td>{formatDateTime(x.at, locale, mine, true)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
