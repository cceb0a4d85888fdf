/**
 * The parts of Quartz's cron syntax that croner does not read, turned into what croner does read:
 *
 * - Wrap-around ranges (`22-2` in hours, `50-10` in minutes, `28-3` in day-of-month, `FRI-MON`,
 *   `NOV-FEB`): Quartz reads `a-b` with a > b as a range that runs past the field's maximum and
 *   starts again at its minimum (`CronExpression.addToSet`: the end gets the field's size added, and
 *   each value is taken modulo that size; a step counts across the wrap, so `22-3/2` in hours is
 *   22, 0, 2). We expand such a range into the list of values it means. Years cannot wrap.
 * - Offsets from the last day of the month in day-of-month: `L-n` (n = 0 ... 30, the n-th day before
 *   the last) and `L-nW` (the weekday nearest that day, within the month). The field must be just
 *   that (as in Quartz, `L` does not combine with other days). A month where the day would fall
 *   before the 1st (`L-30` in February) has no fire time, as in Quartz. croner gets `*` in
 *   day-of-month and the schedule filters its fire times by the day (see cron.ts).
 * - `L` alone as the day-of-week field: Quartz reads it as 7, Saturday
 *   (`CronExpression.storeExpressionVals` adds 7 for a bare `L` there); `6L` stays "the last
 *   Friday of the month". Like Quartz, an `L` of day-of-week does not go in a list (cron.ts
 *   refuses `MON,L` and `2,6L`: croner would drop the `L` of some of them without a word).
 */

export interface FieldRange {
  min: number;
  max: number;
  names?: Record<string, number>;
}

/** The day-of-month rule of an `L-n` / `L-nW` field. */
export interface LastDayOffset {
  offset: number;
  weekday: boolean;
}

const LAST_DAY_OFFSET = /^L-(\d+)(W?)$/i;

/** A day-of-week field that is a bare `L`, read as Quartz reads it: 7 (Saturday). */
export function bareLastWeekday(field: string): string {
  return field === 'L' || field === 'l' ? '7' : field;
}

/** `L-n` / `L-nW` read from a day-of-month field; null when the field is something else. */
export function parseLastDayOffset(field: string): LastDayOffset | null {
  const m = LAST_DAY_OFFSET.exec(field);
  return m ? { offset: Number(m[1]), weekday: m[2] !== '' } : null;
}

export const MAX_LAST_DAY_OFFSET = 30;

const daysInMonth = (year: number, month: number): number => new Date(Date.UTC(year, month, 0)).getUTCDate();

/**
 * The day of `month` (1-12) of `year` on which an `L-n[W]` field fires, or null when there is none
 * (the offset reaches before the 1st). W moves a Saturday to the Friday before and a Sunday to the
 * Monday after, without leaving the month (Saturday the 1st -> Monday the 3rd, Sunday the last ->
 * Friday before), as Quartz's `getTimeAfter` does.
 */
export function lastDayOffsetDay(rule: LastDayOffset, year: number, month: number): number | null {
  const last = daysInMonth(year, month);
  let day = last - rule.offset;
  if (day < 1) return null;
  if (rule.weekday) {
    const dow = new Date(Date.UTC(year, month - 1, day)).getUTCDay(); // 0 = Sunday
    if (dow === 6) day = day === 1 ? 3 : day - 1;
    else if (dow === 0) day = day === last ? day - 2 : day + 1;
  }
  return day;
}

function value(token: string, spec: FieldRange): number | null {
  if (/^\d+$/.test(token)) return Number(token);
  return spec.names?.[token.toUpperCase()] ?? null;
}

/**
 * Rewrites every wrap-around range of one field (`a-b` or `a-b/n` with a > b, values in range) into
 * the list of values Quartz reads from it; other parts are left as they are (and checked elsewhere).
 */
export function expandWrapAround(field: string, spec: FieldRange): string {
  const size = spec.max - spec.min + 1;
  return field
    .split(',')
    .map((part) => {
      const m = /^([A-Za-z0-9]+)-([A-Za-z0-9]+)(?:\/(\d+))?$/.exec(part);
      if (!m) return part;
      const from = value(m[1], spec);
      const to = value(m[2], spec);
      const step = m[3] === undefined ? 1 : Number(m[3]);
      if (from === null || to === null || step < 1 || from <= to) return part;
      if (from < spec.min || from > spec.max || to < spec.min || to > spec.max) return part;
      const out: number[] = [];
      for (let i = from; i <= to + size; i += step) out.push(((i - spec.min) % size) + spec.min);
      return [...new Set(out)].join(',');
    })
    .join(',');
}
