import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cronExpressionProblem, parseCron } from '../../src/scheduler/cron.ts';
import { DEFAULT_TIMEZONE, isValidTimeZone } from '../../src/scheduler/timezone.ts';
import { VecronError } from '../../src/errors.ts';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());
const HCM = 'Asia/Ho_Chi_Minh'; // UTC+7, no DST

function validationMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VecronError, `expected VecronError, got ${err}`);
    assert.equal(err.code, 'validation_failed');
    return err.message;
  }
  assert.fail('expected a VecronError');
}

describe('parseCron: Quartz syntax', () => {
  it('6L = last Friday of the month (Quartz weekday numbering, 6 = FRI)', () => {
    const c = parseCron('0 0 0 ? * 6L', HCM);
    assert.equal(c.next(new Date('2026-11-24T00:00:00Z'))?.toISOString(), '2026-11-26T17:00:00.000Z'); // Fri 27 Nov 00:00 +07
    assert.deepEqual(iso(c.nextN(new Date('2026-11-24T00:00:00Z'), 3)), [
      '2026-11-26T17:00:00.000Z',
      '2026-12-24T17:00:00.000Z', // Fri 25 Dec
      '2027-01-28T17:00:00.000Z', // Fri 29 Jan
    ]);
    // the name form is the same schedule
    assert.deepEqual(iso(parseCron('0 0 0 ? * FRIL', HCM).nextN(new Date('2026-11-24T00:00:00Z'), 3)), iso(c.nextN(new Date('2026-11-24T00:00:00Z'), 3)));
  });

  it('15W = weekday nearest the 15th', () => {
    const c = parseCron('0 0 0 15W * ?', HCM);
    // 15 Nov 2026 is a Sunday -> Monday 16th; 15 Dec is a Tuesday; 15 Aug 2026 is a Saturday -> Friday 14th
    assert.deepEqual(iso(c.nextN(new Date('2026-11-01T00:00:00Z'), 2)), ['2026-11-15T17:00:00.000Z', '2026-12-14T17:00:00.000Z']);
    assert.equal(c.next(new Date('2026-08-01T00:00:00Z'))?.toISOString(), '2026-08-13T17:00:00.000Z');
  });

  it('6#3 = third Friday', () => {
    const c = parseCron('0 0 0 ? * 6#3', HCM);
    assert.deepEqual(iso(c.nextN(new Date('2026-11-01T00:00:00Z'), 2)), ['2026-11-19T17:00:00.000Z', '2026-12-17T17:00:00.000Z']);
    assert.deepEqual(iso(parseCron('0 0 0 ? * FRI#3', HCM).nextN(new Date('2026-11-01T00:00:00Z'), 2)), iso(c.nextN(new Date('2026-11-01T00:00:00Z'), 2)));
  });

  it('1 = Sunday and 7 = Saturday', () => {
    const c = parseCron('0 0 12 ? * 1,7', 'UTC');
    assert.deepEqual(iso(c.nextN(new Date('2026-11-02T00:00:00Z'), 2)), ['2026-11-07T12:00:00.000Z', '2026-11-08T12:00:00.000Z']);
  });

  it('L alone in day-of-week is 7 = Saturday, as in Quartz; nL stays the last weekday n; L does not go in a list', () => {
    const sat = iso(parseCron('0 0 12 ? * 7', 'UTC').nextN(new Date('2026-11-02T00:00:00Z'), 3));
    assert.deepEqual(sat, ['2026-11-07T12:00:00.000Z', '2026-11-14T12:00:00.000Z', '2026-11-21T12:00:00.000Z']);
    assert.deepEqual(iso(parseCron('0 0 12 ? * L', 'UTC').nextN(new Date('2026-11-02T00:00:00Z'), 3)), sat);
    assert.deepEqual(iso(parseCron('0 0 12 ? * l', 'UTC').nextN(new Date('2026-11-02T00:00:00Z'), 3)), sat);
    assert.equal(parseCron('0 0 12 ? * 1L', 'UTC').next(new Date('2026-11-02T00:00:00Z'))?.toISOString(), '2026-11-29T12:00:00.000Z'); // last Sunday
    // Quartz refuses an L of day-of-week in a list; croner would drop the L of some (6L,2 ran on Mondays only)
    for (const dow of ['MON,L', '6L,2', '2,6L', '2-3,6L', '6L,2L']) {
      assert.match(cronExpressionProblem(`0 0 12 ? * ${dow}`) ?? '', /an 'L' does not go in a list, as in Quartz/, dow);
    }
    assert.match(cronExpressionProblem('0 0 12 ? * L-2') ?? '', /day-of-week field: 'L' is not a valid value/);
    assert.match(cronExpressionProblem('0 0 12 L * L') ?? '', /cannot both be set/);
  });

  it('*/1 * * * * * fires every second, strictly after the reference', () => {
    const c = parseCron('*/1 * * * * *', 'UTC');
    assert.equal(c.next(new Date('2026-01-01T00:00:00.000Z'))?.toISOString(), '2026-01-01T00:00:01.000Z');
    assert.equal(c.next(new Date('2026-01-01T00:00:00.400Z'))?.toISOString(), '2026-01-01T00:00:01.000Z');
    assert.deepEqual(iso(c.nextN(new Date('2026-01-01T00:00:00Z'), 3)), ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:03.000Z']);
  });

  it('next is strictly after a matching instant', () => {
    const c = parseCron('0 0 9 * * ?', HCM);
    assert.equal(c.next(new Date('2026-05-01T02:00:00Z'))?.toISOString(), '2026-05-02T02:00:00.000Z');
  });

  it('7th field = year; an expression that no longer fires returns null', () => {
    assert.equal(parseCron('0 0 0 1 1 ? 2027', 'UTC').next(new Date('2026-06-01T00:00:00Z'))?.toISOString(), '2027-01-01T00:00:00.000Z');
    assert.equal(parseCron('0 0 0 1 1 ? 2020', 'UTC').next(new Date('2026-06-01T00:00:00Z')), null);
    assert.deepEqual(parseCron('0 0 0 30 2 ?', 'UTC').nextN(new Date('2026-06-01T00:00:00Z'), 5), []);
  });

  it('normalises whitespace in the expression', () => {
    assert.equal(parseCron('  0  0 9 * *  ?  ', 'UTC').expression, '0 0 9 * * ?');
  });
});

describe('parseCron: rejected expressions', () => {
  it('61 seconds is out of range', () => {
    assert.match(
      validationMessage(() => parseCron('61 * * * * *', 'UTC')),
      /seconds value 61 is out of range \(0-59\)/,
    );
  });

  it('5 fields: says the seconds field is required', () => {
    const msg = validationMessage(() => parseCron('*/5 * * * *', 'UTC'));
    assert.equal(
      msg,
      "cron expression must have 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]); got 5 — prepend a seconds field, e.g. '0 */5 * * * *'",
    );
  });

  it('rejects other field counts', () => {
    assert.match(
      validationMessage(() => parseCron('@daily', 'UTC')),
      /must have 6 or 7 fields .*got 1$/,
    );
    assert.match(
      validationMessage(() => parseCron('0 0 0 1 1 ? 2027 1', 'UTC')),
      /got 8$/,
    );
    assert.match(
      validationMessage(() => parseCron('', 'UTC')),
      /got 0$/,
    );
  });

  it('unknown time zone', () => {
    const msg = validationMessage(() => parseCron('0 0 0 * * ?', 'Mars/Base'));
    assert.match(msg, /unknown time zone 'Mars\/Base'/);
  });

  it('out-of-range values get messages naming the field (croner’s own are off by one)', () => {
    assert.match(cronExpressionProblem('0 0 0 32 * ?')!, /day-of-month value 32 is out of range \(1-31\)/);
    assert.match(cronExpressionProblem('0 0 0 ? 13 *')!, /month value 13 is out of range \(1-12\)/);
    assert.match(cronExpressionProblem('0 0 0 ? * 0')!, /day-of-week value 0 is out of range \(1-7, where 1 = SUN/);
    assert.match(cronExpressionProblem('0 0 0 ? * 8')!, /day-of-week value 8 is out of range/); // croner alone accepts 8
    assert.match(cronExpressionProblem('0 0 24 * * ?')!, /hours value 24 is out of range \(0-23\)/);
    assert.match(cronExpressionProblem('0 0 0 ? * 6#6')!, /must be 1-5/);
  });

  it("'?' only in day-of-month / day-of-week; not both of them restricted", () => {
    assert.match(cronExpressionProblem('? * * * * *')!, /'\?' is only allowed in day-of-month or day-of-week/);
    assert.match(cronExpressionProblem('0 0 0 1 * MON')!, /cannot both be set/);
    assert.equal(cronExpressionProblem('0 0 0 1 * ?'), null);
    assert.equal(cronExpressionProblem('0 0 0 * * MON'), null);
  });

  it('reports croner syntax errors and unsupported Quartz forms', () => {
    assert.match(cronExpressionProblem('0 0 0 L-31 * ?')!, /offset from the last day must be at most 30/);
    assert.match(cronExpressionProblem('0 0 0 1,L-2 * ?')!, /'L-n' must be the whole field/);
    assert.match(cronExpressionProblem('0 0 0 L-2/3 * ?')!, /'L-n' must be the whole field/);
    assert.match(cronExpressionProblem('0 0 0 L-x * ?')!, /write 'L-n' or 'L-nW'/);
    assert.match(cronExpressionProblem('0 0 0 L-2 * MON')!, /cannot both be set/);
    assert.match(cronExpressionProblem('0 0 0 1 1 ? 2030-2027')!, /year field: range '2030-2027' runs backwards \(years do not wrap around\)/);
    assert.match(cronExpressionProblem('0 0 0 28-3W * ?')!, /runs backwards/);
    assert.match(cronExpressionProblem('0 x 0 * * ?')!, /minutes field: 'x' is not a valid value/);
    assert.ok(cronExpressionProblem('0 0 0 * * ?/2'));
  });

  it('Quartz start/step: 0/5 and 5/15', () => {
    assert.deepEqual(iso(parseCron('0 5/15 * * * ?', 'UTC').nextN(new Date('2026-11-01T14:00:00Z'), 5)), [
      '2026-11-01T14:05:00.000Z',
      '2026-11-01T14:20:00.000Z',
      '2026-11-01T14:35:00.000Z',
      '2026-11-01T14:50:00.000Z',
      '2026-11-01T15:05:00.000Z',
    ]);
    assert.deepEqual(iso(parseCron('0 0/30 9 * * ?', 'UTC').nextN(new Date('2026-11-01T00:00:00Z'), 3)), [
      '2026-11-01T09:00:00.000Z',
      '2026-11-01T09:30:00.000Z',
      '2026-11-02T09:00:00.000Z',
    ]);
  });

  it('accepts the usual Quartz forms', () => {
    for (const e of [
      '0 0 12 * * ?',
      '0 15 10 ? * MON-FRI',
      '0 0/5 14,18 * * ?',
      '0 0 0 L * ?',
      '0 0 0 LW * ?',
      '0 0 8 ? JAN,jul mon',
      '0 0 0 1 1 ? 2026-2030',
    ]) {
      assert.equal(cronExpressionProblem(e), null, e);
    }
  });
});

// The expected fire times of the L-n, L-nW, wrap-around and 31W suites were also measured with Quartz
// 2.3.2 (CronExpression.getNextValidTimeAfter) and agree, except L-30W, for which Quartz never returns.
describe('parseCron: offsets from the last day (L-n, L-nW), as Quartz reads them', () => {
  const from = new Date('2025-12-31T23:00:00Z');
  const days = (expr: string, n: number) =>
    parseCron(expr, 'UTC')
      .nextN(from, n)
      .map((d) => d.toISOString().slice(0, 10));

  it('L-1 is the day before the last, in every month (February 2026 has 28 days)', () => {
    assert.deepEqual(days('0 0 12 L-1 * ?', 4), ['2026-01-30', '2026-02-27', '2026-03-30', '2026-04-29']);
    assert.equal(parseCron('0 0 12 L-1 * ?', 'UTC').next(new Date('2028-02-01T00:00:00Z'))?.toISOString(), '2028-02-28T12:00:00.000Z'); // leap year
  });

  it('L-0 is L, L-0W is LW', () => {
    assert.deepEqual(days('0 0 0 L-0 * ?', 24), days('0 0 0 L * ?', 24));
    assert.deepEqual(days('0 0 0 L-0W * ?', 24), days('0 0 0 LW * ?', 24));
  });

  it('L-30 exists only in 31-day months (the 1st); other months have no fire time, as in Quartz', () => {
    assert.deepEqual(days('0 0 0 L-30 * ?', 7), ['2026-01-01', '2026-03-01', '2026-05-01', '2026-07-01', '2026-08-01', '2026-10-01', '2026-12-01']);
  });

  it('L-nW: the weekday nearest the day, without leaving the month', () => {
    // L-3: 28 Mar 2026 is a Saturday -> Fri 27; 27 Jun a Saturday -> Fri 26; 27 Sep a Sunday -> Mon 28
    assert.deepEqual(days('0 0 0 L-3W * ?', 12), [
      '2026-01-28',
      '2026-02-25',
      '2026-03-27',
      '2026-04-27',
      '2026-05-28',
      '2026-06-26',
      '2026-07-28',
      '2026-08-28',
      '2026-09-28',
      '2026-10-28',
      '2026-11-27',
      '2026-12-28',
    ]);
    // L-30: Sun 1 Mar -> Mon 2; Sat 1 Aug -> Mon 3 (not back into July)
    assert.deepEqual(days('0 0 0 L-30W * ?', 7), ['2026-01-01', '2026-03-02', '2026-05-01', '2026-07-01', '2026-08-03', '2026-10-01', '2026-12-01']);
    // L-1: Sat 30 May -> Fri 29; Sun 30 Aug -> Mon 31; Sun 29 Nov -> Mon 30
    assert.deepEqual(days('0 0 0 L-1W * ?', 12), [
      '2026-01-30',
      '2026-02-27',
      '2026-03-30',
      '2026-04-29',
      '2026-05-29',
      '2026-06-29',
      '2026-07-30',
      '2026-08-31',
      '2026-09-29',
      '2026-10-30',
      '2026-11-30',
      '2026-12-30',
    ]);
  });

  it('works with months, years, several times a day and time zones', () => {
    assert.deepEqual(iso(parseCron('0 0 9,17 L-2 FEB ? 2027-2028', HCM).nextN(from, 5)), [
      '2027-02-26T02:00:00.000Z', // 26 Feb 2027 09:00 +07
      '2027-02-26T10:00:00.000Z',
      '2028-02-27T02:00:00.000Z', // 2028 is a leap year: 29 - 2
      '2028-02-27T10:00:00.000Z',
    ]);
    // Europe/Berlin, 29 Mar 2026 = L-2 and the spring-forward day: 02:30 does not exist, it fires at 03:00 CEST
    assert.deepEqual(iso(parseCron('0 30 2 L-2 3 ?', 'Europe/Berlin').nextN(from, 2)), ['2026-03-29T01:00:00.000Z', '2027-03-29T00:30:00.000Z']);
  });
});

describe('parseCron: wrap-around ranges, as Quartz reads them', () => {
  const from = new Date('2026-01-01T00:00:00Z'); // a Thursday

  it('22-2 in hours is 22, 23, 0, 1, 2', () => {
    const hours = parseCron('0 0 22-2 * * ?', 'UTC')
      .nextN(new Date('2026-01-01T12:00:00Z'), 6)
      .map((d) => d.getUTCHours());
    assert.deepEqual(hours, [22, 23, 0, 1, 2, 22]);
    assert.equal(cronExpressionProblem('0 0 22-2 * * ?'), null);
  });

  it('50-10 in minutes, with a step counted across the wrap (22-3/2 hours = 22, 0, 2)', () => {
    const minutes = parseCron('0 50-10 * * * ?', 'UTC')
      .nextN(new Date('2026-01-01T00:30:00Z'), 22)
      .map((d) => d.getUTCMinutes());
    assert.deepEqual(minutes, [50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50]);
    assert.deepEqual(
      parseCron('0 0 22-3/2 * * ?', 'UTC')
        .nextN(from, 4)
        .map((d) => d.getUTCHours()),
      [2, 22, 0, 2],
    ); // strictly after 00:00
    assert.deepEqual(
      parseCron('10-5/20 * * * * ?', 'UTC')
        .nextN(from, 3)
        .map((d) => d.getUTCSeconds()),
      [10, 30, 50],
    );
  });

  it('FRI-MON is Friday, Saturday, Sunday, Monday; 6-2 the same in numbers (1 = SUN)', () => {
    const weekdays = (e: string) =>
      parseCron(e, 'UTC')
        .nextN(from, 8)
        .map((d) => d.getUTCDay()); // 0 = Sunday
    assert.deepEqual(weekdays('0 0 9 ? * FRI-MON'), [5, 6, 0, 1, 5, 6, 0, 1]);
    assert.deepEqual(weekdays('0 0 9 ? * 6-2'), [5, 6, 0, 1, 5, 6, 0, 1]);
    assert.deepEqual(weekdays('0 0 9 ? * SAT-SUN'), [6, 0, 6, 0, 6, 0, 6, 0]);
  });

  it('NOV-FEB in months, 28-3 in day-of-month', () => {
    const months = parseCron('0 0 0 1 NOV-FEB ?', 'UTC')
      .nextN(new Date('2026-03-01T00:00:00Z'), 5)
      .map((d) => d.toISOString().slice(0, 7));
    assert.deepEqual(months, ['2026-11', '2026-12', '2027-01', '2027-02', '2027-11']);
    const dom = parseCron('0 0 0 28-3 * ?', 'UTC')
      .nextN(new Date('2026-02-01T00:00:00Z'), 6)
      .map((d) => d.toISOString().slice(0, 10));
    assert.deepEqual(dom, ['2026-02-02', '2026-02-03', '2026-02-28', '2026-03-01', '2026-03-02', '2026-03-03']); // 1 Feb itself is not after 1 Feb 00:00
  });
});

describe('parseCron: nW for a day the month lacks', () => {
  it('31W fires only in months with a 31st (April, June, September, November and February have none)', () => {
    const days = parseCron('0 0 0 31W * ?', 'UTC')
      .nextN(new Date('2026-01-01T00:00:00Z'), 7)
      .map((d) => d.toISOString().slice(0, 10));
    // Sat 31 Jan -> Fri 30; Sun 31 May -> Fri 29; Sat 31 Oct -> Fri 30
    assert.deepEqual(days, ['2026-01-30', '2026-03-31', '2026-05-29', '2026-07-31', '2026-08-31', '2026-10-30', '2026-12-31']);
    assert.deepEqual(parseCron('0 0 0 30W 2 ?', 'UTC').nextN(new Date('2026-01-01T00:00:00Z'), 1), []); // and '30W' in February never fires
  });
});

describe('parseCron: daylight saving time (Europe/Berlin)', () => {
  // 2026-03-29: 02:00 CET -> 03:00 CEST, so 02:30 does not exist.
  // croner treats `0 30 2 * * *` as a wall-clock (fixed-time) job and fires ONCE, at the first valid
  // instant after the gap: 03:00 CEST (01:00Z) — not 03:30, and not skipped.
  it('spring forward: a time inside the gap fires once, at the end of the gap (03:00 CEST)', () => {
    const c = parseCron('0 30 2 * * *', 'Europe/Berlin');
    assert.deepEqual(iso(c.nextN(new Date('2026-03-27T12:00:00Z'), 4)), [
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST: 02:30 does not exist that day
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
  });

  // 2026-10-25: 03:00 CEST -> 02:00 CET, so 02:30 happens twice (00:30Z and 01:30Z).
  it('fall back: a repeated time fires once, at its first occurrence', () => {
    const c = parseCron('0 30 2 * * *', 'Europe/Berlin');
    assert.deepEqual(iso(c.nextN(new Date('2026-10-24T12:00:00Z'), 2)), [
      '2026-10-25T00:30:00.000Z', // 02:30 CEST
      '2026-10-26T01:30:00.000Z', // next day, 02:30 CET — not 2026-10-25T01:30Z
    ]);
    // asking again from the first occurrence does not yield the second one
    assert.equal(c.next(new Date('2026-10-25T00:30:00Z'))?.toISOString(), '2026-10-26T01:30:00.000Z');
  });

  it('a list of hours is wall-clock too (fixedTimeRule no-wildcard): no double fire', () => {
    const c = parseCron('0 30 2,14 * * *', 'Europe/Berlin');
    assert.deepEqual(iso(c.nextN(new Date('2026-10-24T22:00:00Z'), 3)), ['2026-10-25T00:30:00.000Z', '2026-10-25T13:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('interval-style expressions run on elapsed time: the repeated hour runs twice, the gap is skipped', () => {
    const hourly = parseCron('0 30 * * * *', 'Europe/Berlin');
    assert.deepEqual(iso(hourly.nextN(new Date('2026-10-25T00:00:00Z'), 3)), [
      '2026-10-25T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T01:30:00.000Z', // 02:30 CET
      '2026-10-25T02:30:00.000Z', // 03:30 CET
    ]);
    assert.deepEqual(iso(hourly.nextN(new Date('2026-03-29T00:00:00Z'), 2)), [
      '2026-03-29T00:30:00.000Z', // 01:30 CET
      '2026-03-29T01:30:00.000Z', // 03:30 CEST (02:30 skipped)
    ]);
  });
});

describe('parseCron: the DST examples of docs/jobs.md', () => {
  it('0 0/30 * * * ? runs 50 times on the 25-hour day, through both passes of 02:00-03:00', () => {
    const runs = parseCron('0 0/30 * * * ?', 'Europe/Berlin').nextN(new Date('2026-10-24T21:59:59Z'), 60);
    const day = runs.filter((d) => d < new Date('2026-10-25T23:00:00Z')); // 25 Oct 00:00 CEST to 26 Oct 00:00 CET
    assert.equal(day.length, 50);
    assert.deepEqual(iso(day.slice(4, 9)), [
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:00:00.000Z', // 02:00 CET
      '2026-10-25T01:30:00.000Z',
      '2026-10-25T02:00:00.000Z', // 03:00 CET
    ]);
  });
  it('in the spring gap an interval job skips the times that do not exist', () => {
    assert.deepEqual(iso(parseCron('0 0/30 * * * ?', 'Europe/Berlin').nextN(new Date('2026-03-29T00:00:00Z'), 2)), [
      '2026-03-29T00:30:00.000Z', // 01:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST
    ]);
  });
  it('a wrap-around hour range is wall-clock: 0 30 22-2 runs 02:30 once on the autumn day', () => {
    const runs = iso(parseCron('0 30 22-2 * * ?', 'Europe/Berlin').nextN(new Date('2026-10-24T12:00:00Z'), 6));
    assert.deepEqual(runs, [
      '2026-10-24T20:30:00.000Z', // 22:30 CEST
      '2026-10-24T21:30:00.000Z',
      '2026-10-24T22:30:00.000Z', // 00:30
      '2026-10-24T23:30:00.000Z', // 01:30
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, not again at 02:30 CET
      '2026-10-25T21:30:00.000Z', // 22:30 CET
    ]);
  });
});

describe('timezone', () => {
  it('accepts IANA names, rejects unknown names and fixed offsets', () => {
    assert.equal(DEFAULT_TIMEZONE, 'Asia/Ho_Chi_Minh');
    for (const tz of ['Asia/Ho_Chi_Minh', 'Europe/Berlin', 'UTC', 'America/New_York']) assert.equal(isValidTimeZone(tz), true, tz);
    for (const tz of ['Mars/Base', '', ' UTC', '+07:00', 'Local', 42, null]) assert.equal(isValidTimeZone(tz), false, String(tz));
  });
});
