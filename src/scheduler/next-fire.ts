import type { Schedule } from '../jobs/types.ts';
import { parseCron, type CronSchedule } from './cron.ts';

/**
 * Fire-time arithmetic for every schedule type. `after` is exclusive: the result is strictly later.
 * fixed_delay has no fire times of its own: the next one is set when an execution ends.
 */
export interface FireTimes {
  /** First fire time strictly after `after`, or null when there is none. */
  next(after: Date): Date | null;
}

const cronCache = new Map<string, CronSchedule>();

function cron(expression: string, timezone: string): CronSchedule {
  const key = `${timezone}\u0000${expression}`;
  let c = cronCache.get(key);
  if (!c) {
    c = parseCron(expression, timezone);
    if (cronCache.size > 5000) cronCache.clear();
    cronCache.set(key, c);
  }
  return c;
}

/**
 * @param anchor for fixed_rate: the instant the rate counts from (fire times are anchor + k·interval,
 *   so a slow scheduler tick never makes the rate drift).
 */
export function fireTimes(schedule: Schedule, anchor: Date): FireTimes {
  switch (schedule.type) {
    case 'cron': {
      const c = cron(schedule.expression, schedule.timezone);
      return { next: (after) => c.next(after) };
    }
    case 'fixed_rate': {
      const step = schedule.interval_seconds * 1000;
      const a = anchor.getTime();
      return {
        next(after) {
          const k = Math.max(1, Math.floor((after.getTime() - a) / step) + 1);
          return new Date(a + k * step);
        },
      };
    }
    case 'once': {
      const at = new Date(schedule.at);
      return { next: (after) => (at > after ? at : null) };
    }
    case 'fixed_delay':
      return { next: () => null };
  }
}

/** When a newly (re)scheduled job fires first. */
export function firstFireTime(schedule: Schedule, now: Date): Date | null {
  switch (schedule.type) {
    case 'once':
      // A one-time job fires at its instant even if that is already past (misfire policy decides).
      return new Date(schedule.at);
    case 'fixed_delay':
      return new Date(now.getTime() + schedule.delay_seconds * 1000);
    case 'fixed_rate':
      return new Date(now.getTime() + schedule.interval_seconds * 1000);
    default:
      return fireTimes(schedule, now).next(now);
  }
}
