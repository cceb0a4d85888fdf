import { useI18n } from '../i18n.tsx';
import type { Schedule } from '../types.ts';
import { browserZone, formatDateTime, formatRelative } from '../format.ts';

export function ScheduleText({ schedule }: { schedule: Schedule | null }) {
  const { t } = useI18n();
  if (!schedule) return <span className="muted">{t('schedule.none')}</span>;
  switch (schedule.type) {
    case 'cron':
      return <span><code>{schedule.expression}</code> <span className="muted">({schedule.timezone})</span></span>;
    case 'fixed_rate':
      return <span>{t('schedule.everyN', { n: schedule.interval_seconds })}</span>;
    case 'fixed_delay':
      return <span>{t('schedule.delayN', { n: schedule.delay_seconds })}</span>;
    case 'once':
      return <span>{t('schedule.onceAt')} <FireTime iso={schedule.at} zone="UTC" /></span>;
  }
}

/** An instant in the job's zone, with the browser's zone beside it when they differ. */
export function FireTime({ iso, zone, relative = false }: { iso: string | null; zone: string; relative?: boolean }) {
  const { locale } = useI18n();
  if (!iso) return <span className="muted">—</span>;
  const mine = browserZone();
  return (
    <span className="firetime">
      <time dateTime={iso} title={`${zone}`}>{formatDateTime(iso, locale, zone)}</time>
      {zone !== mine && <span className="other">{formatDateTime(iso, locale, mine)} ({mine})</span>}
      {relative && <span className="other">{formatRelative(iso, locale)}</span>}
    </span>
  );
}
