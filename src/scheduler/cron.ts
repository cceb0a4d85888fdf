/**
 * Quartz-style cron expressions, evaluated by croner.
 *
 * Format: `seconds minutes hours day-of-month month day-of-week [year]` (6 or 7 fields; 5-field Unix
 * cron is rejected so that an expression is never silently read with a shifted meaning).
 * - day-of-week is Quartz-numbered: 1 = SUN … 7 = SAT; names SUN-SAT and JAN-DEC work (any case).
 * - `a/n` starts at a and steps by n up to the field maximum (`0/5`, `5/15`), like `*\/n` but starting at a.
 * - `?` (no specific value) is allowed in day-of-month or day-of-week only; `*` works there too.
 * - `L` (last day of month), `LW` (last weekday), `15W` (nearest weekday to the 15th), `L-3` (three
 *   days before the last), `L-3W` (the weekday nearest that day) in day-of-month; `6L` / `FRIL`
 *   (last Friday), `6#3` / `FRI#3` (third Friday) in day-of-week.
 * - `nW` for a day the month lacks (`31W` in April): that month has no fire time, as `31` alone has
 *   none (we do not move it to the 30th: "nearest weekday to a day that does not exist" has no
 *   meaning we could document better than "none").
 * - Wrap-around ranges (`22-2` hours, `50-10` minutes, `FRI-MON`, `NOV-FEB`) as Quartz reads them
 *   (quartz-fields.ts); years cannot wrap.
 * - day-of-month and day-of-week cannot both be restricted (Quartz rule; cron implementations
 *   disagree on whether that means AND or OR), one of them must be `*` or `?`.
 * - Not supported (croner): a bare `L` in day-of-week.
 *
 * Daylight saving time (croner 11 with fixedTimeRule 'no-wildcard', verified in test/jobs/cron.test.ts):
 * - An expression whose seconds, minutes and hours contain no `*`, `?` or step (e.g. `0 30 2 * * *`,
 *   `0 0 2,14 * * *`) is a wall-clock job: when the time falls in a spring-forward gap it fires once,
 *   at the first valid instant after the gap (Europe/Berlin 2026-03-29: 03:00 CEST, not 03:30); when
 *   the time occurs twice (fall back) it fires once, at the first occurrence.
 * - Any other expression (`0 *\/15 * * * *`, `0 30 * * * *`) is an interval job: times inside a gap are
 *   skipped, and a repeated hour is run twice (elapsed-time semantics).
 */
import { Cron } from 'croner';
import { VecronError } from '../errors.ts';
import { isValidTimeZone, timeZoneProblem } from './timezone.ts';
import { type LastDayOffset, MAX_LAST_DAY_OFFSET, bareLastWeekday, expandWrapAround, lastDayOffsetDay, parseLastDayOffset } from './quartz-fields.ts';

export interface CronSchedule {
  readonly expression: string;
  readonly timezone: string;
  /** First fire time strictly after `after` (whole seconds), or null if the expression never fires again. */
  next(after: Date): Date | null;
  /** Up to `n` fire times strictly after `after`, ascending (fewer if the expression stops firing). */
  nextN(after: Date, n: number): Date[];
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS: FieldSpec[] = [
  { name: 'seconds', min: 0, max: 59 },
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: Object.fromEntries(MONTHS.map((m, i) => [m, i + 1])) },
  { name: 'day-of-week', min: 1, max: 7, names: Object.fromEntries(DAYS.map((d, i) => [d, i + 1])) },
  { name: 'year', min: 1970, max: 9999 },
];
const DOM = 3;
const DOW = 5;
const YEAR = 6;

const FIELD_LIST = 'seconds minutes hours day-of-month month day-of-week [year]';

function fieldValue(token: string, spec: FieldSpec): number | null {
  if (/^\d+$/.test(token)) return Number(token);
  const named = spec.names?.[token.toUpperCase()];
  return named ?? null;
}

/** Checks one field; returns a message or null. Leaves exotic syntax to croner. */
function fieldProblem(field: string, index: number): string | null {
  const spec = FIELDS[index];
  const range = `${spec.min}-${spec.max}${index === DOW ? ', where 1 = SUN, or SUN-SAT' : ''}`;
  for (const part of field.split(',')) {
    if (part === '') return `${spec.name} field '${field}' has an empty list entry`;
    const [base, step, extra] = part.split('/');
    if (extra !== undefined) return `${spec.name} field: '${part}' has more than one '/'`;
    if (step !== undefined && (!/^\d+$/.test(step) || Number(step) === 0)) {
      return `${spec.name} field: step '/${step}' must be a positive integer`;
    }
    if (base === '*' || (base === '' && step !== undefined)) continue; // `/10` = `0/10` (Quartz)
    if (base === '?') {
      if (index !== DOM && index !== DOW) return `'?' is only allowed in day-of-month or day-of-week; use '*' in the ${spec.name} field`;
      if (step !== undefined) return `${spec.name} field: '?' cannot have a step`;
      continue;
    }
    let core = base;
    if (index === DOM) {
      if (/^LW?$/i.test(core)) continue;
      const offset = parseLastDayOffset(core);
      if (offset) {
        if (step !== undefined || field !== part)
          return `day-of-month '${field}': 'L-n' must be the whole field (it does not combine with other days or a step)`;
        if (offset.offset > MAX_LAST_DAY_OFFSET) return `day-of-month '${core}': the offset from the last day must be at most ${MAX_LAST_DAY_OFFSET}`;
        continue;
      }
      if (/^L-/i.test(core)) return `day-of-month '${core}': write 'L-n' or 'L-nW' with n = 0-${MAX_LAST_DAY_OFFSET}`;
      core = core.replace(/(\d)W$/i, '$1');
    }
    if (index === DOW) {
      if (field.includes(',') && /L$/i.test(core)) {
        return `day-of-week field '${field}': an 'L' does not go in a list, as in Quartz; write one 'nL' (the last such weekday of the month) or 'L' (Saturday) alone`;
      }
      core = core.replace(/^(\w+?)L$/i, '$1');
      const hash = core.split('#');
      if (hash.length === 2) {
        if (!/^[1-5]$/.test(hash[1])) return `day-of-week '${part}': the occurrence after '#' must be 1-5`;
        core = hash[0];
      }
    }
    const bounds = core.split('-');
    if (bounds.length > 2 || bounds.some((b) => b === '')) return `${spec.name} field: invalid range '${part}'`;
    const values: number[] = [];
    for (const b of bounds) {
      const v = fieldValue(b, spec);
      if (v === null) return `${spec.name} field: '${b}' is not a valid value (${range})`;
      if (v < spec.min || v > spec.max) return `${spec.name} value ${b} is out of range (${range})`;
      values.push(v);
    }
    if (values.length === 2 && values[0] > values[1] && (index === YEAR || core !== base)) {
      return index === YEAR
        ? `year field: range '${core}' runs backwards (years do not wrap around)`
        : `${spec.name} field: range '${core}' runs backwards, which wraps around only as a plain range ('${part}' has a modifier)`;
    }
  }
  return null;
}

/** Syntax problem of an expression (time zone independent), or null if croner accepts it. */
export function cronExpressionProblem(expression: string): string | null {
  if (typeof expression !== 'string') return 'cron expression must be a string';
  const fields = expression
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '');
  if (fields.length !== 6 && fields.length !== 7) {
    let hint = '';
    if (fields.length === 5) {
      hint = ` — prepend a seconds field, e.g. '0 ${fields.join(' ')}'`;
      if (fields[4] !== '*' && fields[4] !== '?') {
        hint += '; note that day-of-week is Quartz-numbered (1 = SUN … 7 = SAT), names such as MON-FRI avoid mistakes';
      }
    }
    return `cron expression must have 6 or 7 fields (${FIELD_LIST}); got ${fields.length}${hint}`;
  }
  fields[DOW] = bareLastWeekday(fields[DOW]);
  for (let i = 0; i < fields.length; i++) {
    const p = fieldProblem(fields[i], i);
    if (p) return p;
  }
  const restricted = (f: string) => f !== '*' && f !== '?';
  if (restricted(fields[DOM]) && restricted(fields[DOW])) {
    return "day-of-month and day-of-week cannot both be set; use '?' in one of them (e.g. '0 0 9 ? * MON-FRI' or '0 0 9 1 * ?')";
  }
  try {
    newCron(toCroner(fields).pattern, 'UTC');
  } catch (err) {
    return `invalid cron expression: ${String((err as Error).message).replace(/^CronPattern:\s*/, '')}`;
  }
  return null;
}

/**
 * What croner reads: wrap-around ranges expanded; an `L-n[W]` day-of-month handed over as a superset
 * of its days (the days it can land on in any month), with the rule to filter croner's fire times.
 */
function toCroner(fields: string[]): { pattern: string; lastDay: LastDayOffset | null } {
  const out = fields.map((f, i) => (i === YEAR ? f : expandWrapAround(f, FIELDS[i])));
  const lastDay = parseLastDayOffset(out[DOM]);
  if (lastDay) {
    // months have 28-31 days; W moves the day by at most 2 (3 from Saturday the 1st)
    const lo = Math.max(1, 28 - lastDay.offset - (lastDay.weekday ? 2 : 0));
    const hi = Math.min(31, 31 - lastDay.offset + (lastDay.weekday ? 2 : 0));
    out[DOM] = lo === hi ? String(lo) : `${lo}-${hi}`;
    if (lastDay.weekday && lo <= 1) out[DOM] = `1-${Math.max(hi, 3)}`;
  }
  return { pattern: out.join(' '), lastDay };
}

const wallDateFormats = new Map<string, Intl.DateTimeFormat>();
/** Year, month (1-12) and day of an instant on the wall clock of a time zone. */
function wallDate(d: Date, timezone: string): { year: number; month: number; day: number } {
  let f = wallDateFormats.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, year: 'numeric', month: 'numeric', day: 'numeric' });
    wallDateFormats.set(timezone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(d).map((p) => [p.type, p.value]));
  return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day) };
}

/** Candidate fire times of croner, kept only on the day an `L-n[W]` rule names in their month. */
function filteredByLastDay(cron: Cron, rule: LastDayOffset, timezone: string): (after: Date) => Date | null {
  const midnight = newCron('0 0 0 * * ?', timezone);
  return (after) => {
    let from = after;
    // a candidate day that is not the month's day costs one more step; 8 candidate days a month
    for (let guard = 0; guard < 200_000; guard++) {
      const at = cron.nextRun(from);
      if (!at) return null;
      const { year, month, day } = wallDate(at, timezone);
      if (lastDayOffsetDay(rule, year, month) === day) return at;
      const nextDay = midnight.nextRun(at);
      if (!nextDay) return null;
      from = new Date(nextDay.getTime() - 1000); // fire times are whole seconds: this finds 00:00:00
    }
    return null;
  };
}

function newCron(pattern: string, timezone: string): Cron {
  return new Cron(pattern, {
    timezone,
    paused: true,
    alternativeWeekdays: true, // Quartz numbering, 1 = SUN
    mode: '6-or-7-parts',
    sloppyRanges: true, // Quartz `0/5` = every 5 starting at 0, `5/15` = 5,20,35,50
    fixedTimeRule: 'no-wildcard', // `0 30 2,14 * * *` is wall-clock too, see the DST note above
  });
}

/** Parses a Quartz-style expression; throws VecronError('validation_failed') naming the problem. */
export function parseCron(expression: string, timezone: string): CronSchedule {
  const problem = cronExpressionProblem(expression);
  if (problem) throw new VecronError('validation_failed', problem, { problems: [{ path: 'expression', message: problem }] });
  if (!isValidTimeZone(timezone)) {
    const message = timeZoneProblem(String(timezone));
    throw new VecronError('validation_failed', message, { problems: [{ path: 'timezone', message }] });
  }
  const fields = expression.trim().split(/\s+/);
  const { pattern, lastDay } = toCroner(fields.map((f, i) => (i === DOW ? bareLastWeekday(f) : f)));
  const cron = newCron(pattern, timezone);
  const nextAfter = memoized(lastDay ? filteredByLastDay(cron, lastDay, timezone) : (after: Date) => cron.nextRun(after));
  return {
    expression: fields.join(' '),
    timezone,
    next(after: Date): Date | null {
      assertDate(after);
      return nextAfter(after);
    },
    nextN(after: Date, n: number): Date[] {
      assertDate(after);
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`nextN: n must be a non-negative integer (got ${n})`);
      if (!lastDay) return n === 0 ? [] : cron.nextRuns(n, after);
      const out: Date[] = [];
      for (let at = nextAfter(after); at && out.length < n; at = nextAfter(at)) out.push(at);
      return out;
    },
  };
}

/** Instants remembered per expression: enough for the fire times of a few rounds. */
const MEMO_SIZE = 64;

/**
 * Remembers `next(after)` for the last instants asked. Many jobs share an expression and a time
 * zone, and a round asks all of them the same question (the next fire time after the same second):
 * croner answered 1,000 times per second what it had just computed (issue 19: 80 % of the
 * scheduler's CPU). The answer depends only on `after`, so a remembered one is exact.
 */
function memoized(next: (after: Date) => Date | null): (after: Date) => Date | null {
  const memo = new Map<number, number | null>();
  return (after) => {
    const key = after.getTime();
    const hit = memo.get(key);
    if (hit !== undefined) return hit === null ? null : new Date(hit);
    const at = next(after);
    if (memo.size >= MEMO_SIZE) memo.delete(memo.keys().next().value as number);
    memo.set(key, at ? at.getTime() : null);
    return at;
  };
}

function assertDate(d: Date): void {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new TypeError('expected a valid Date');
}
