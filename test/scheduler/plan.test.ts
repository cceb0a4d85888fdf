import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planFires } from '../../src/scheduler/plan.ts';
import { fireTimes, firstFireTime } from '../../src/scheduler/next-fire.ts';
import type { Schedule } from '../../src/jobs/types.ts';

const everySecond: Schedule = { type: 'cron', expression: '*/1 * * * * *', timezone: 'Asia/Ho_Chi_Minh' };
const at = (s: string) => new Date(s);

describe('planFires', () => {
  it('fires a fire time that is just due, and names the next one', () => {
    const p = planFires(everySecond, at('2026-01-01T00:00:10Z'), at('2026-01-01T00:00:10.020Z'), {
      misfirePolicy: 'fire_once',
      thresholdMs: 5000,
      anchor: at('2026-01-01T00:00:10Z'),
    });
    assert.deepEqual(
      p.fire.map((f) => f.at.toISOString()),
      ['2026-01-01T00:00:10.000Z'],
    );
    assert.equal(p.next?.toISOString(), '2026-01-01T00:00:11.000Z');
    assert.equal(p.missed, null);
  });

  it('catches up fire times within the misfire threshold, one execution each', () => {
    const p = planFires(everySecond, at('2026-01-01T00:00:10Z'), at('2026-01-01T00:00:12.500Z'), {
      misfirePolicy: 'fire_once',
      thresholdMs: 5000,
      anchor: at('2026-01-01T00:00:10Z'),
    });
    assert.deepEqual(
      p.fire.map((f) => f.at.toISOString()),
      ['2026-01-01T00:00:10.000Z', '2026-01-01T00:00:11.000Z', '2026-01-01T00:00:12.000Z'],
    );
    assert.equal(p.next?.toISOString(), '2026-01-01T00:00:13.000Z');
  });

  it('after an hour of downtime, fire_once runs the fire times inside the threshold and no burst', () => {
    const now = at('2026-01-01T01:00:00.300Z');
    const p = planFires(everySecond, at('2026-01-01T00:00:00Z'), now, { misfirePolicy: 'fire_once', thresholdMs: 2000, anchor: at('2026-01-01T00:00:00Z') });
    // 3600 missed fire times; only those not older than 2 s are run.
    assert.deepEqual(
      p.fire.map((f) => f.at.toISOString()),
      ['2026-01-01T00:59:59.000Z', '2026-01-01T01:00:00.000Z'],
    );
    // the others are reported as missed: from the first due one to the last one before the threshold
    assert.deepEqual(p.missed, { first: at('2026-01-01T00:00:00Z'), last: at('2026-01-01T00:59:58Z'), count: 3599 });
    assert.equal(p.next?.toISOString(), '2026-01-01T01:00:01.000Z');
  });

  it('fire_once runs a single late execution of a daily job missed during downtime, skip runs none', () => {
    const daily: Schedule = { type: 'cron', expression: '0 0 6 * * ?', timezone: 'Asia/Ho_Chi_Minh' };
    const due = at('2026-01-01T23:00:00Z'); // 06:00 in Ho Chi Minh
    const now = at('2026-01-04T10:00:00Z'); // three days later
    const once = planFires(daily, due, now, { misfirePolicy: 'fire_once', thresholdMs: 5000, anchor: due });
    assert.equal(once.fire.length, 1);
    assert.equal(once.fire[0].misfired, true);
    assert.equal(once.fire[0].at.toISOString(), due.toISOString(), 'keyed on the first missed fire time');
    assert.equal(once.next?.toISOString(), '2026-01-04T23:00:00.000Z');
    const skip = planFires(daily, due, now, { misfirePolicy: 'skip', thresholdMs: 5000, anchor: due });
    assert.equal(skip.fire.length, 0);
    assert.deepEqual(skip.missed, { first: due, last: at('2026-01-03T23:00:00Z'), count: 3 });
    assert.equal(once.missed, null, 'fire_once ran them as one execution: nothing is missed');
    assert.equal(skip.next?.toISOString(), '2026-01-04T23:00:00.000Z');
  });

  it('fixed_rate keeps its grid: fire times are anchor + k x interval, not drifting with late rounds', () => {
    const rate: Schedule = { type: 'fixed_rate', interval_seconds: 10 };
    const anchor = at('2026-01-01T00:00:00Z');
    const p = planFires(rate, anchor, at('2026-01-01T00:00:03.7Z'), { misfirePolicy: 'fire_once', thresholdMs: 5000, anchor });
    assert.equal(p.fire.length, 1);
    assert.equal(p.next?.toISOString(), '2026-01-01T00:00:10.000Z');
  });

  it('once fires a single time; a missed one-time job is skipped or fired once per policy', () => {
    const once: Schedule = { type: 'once', at: '2026-01-01T00:00:00.000Z' };
    const p = planFires(once, at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:00.010Z'), {
      misfirePolicy: 'fire_once',
      thresholdMs: 5000,
      anchor: at('2026-01-01T00:00:00Z'),
    });
    assert.equal(p.fire.length, 1);
    assert.equal(p.next, null);
    const late = planFires(once, at('2026-01-01T00:00:00Z'), at('2026-01-02T00:00:00Z'), {
      misfirePolicy: 'skip',
      thresholdMs: 5000,
      anchor: at('2026-01-01T00:00:00Z'),
    });
    assert.equal(late.fire.length, 0);
    assert.deepEqual(late.missed, { first: at('2026-01-01T00:00:00Z'), last: at('2026-01-01T00:00:00Z'), count: 1 });
    assert.equal(late.next, null);
  });

  it('fixed_delay fires and then waits for the end of the run', () => {
    const delay: Schedule = { type: 'fixed_delay', delay_seconds: 30 };
    const now = at('2026-01-01T00:00:00.010Z');
    const p = planFires(delay, at('2026-01-01T00:00:00Z'), now, { misfirePolicy: 'fire_once', thresholdMs: 5000, anchor: now });
    assert.equal(p.fire.length, 1);
    assert.equal(p.next, null);
    assert.equal(firstFireTime(delay, now)?.toISOString(), '2026-01-01T00:00:30.010Z');
  });
});

describe('daylight-saving time (Europe/Berlin)', () => {
  const dayFires = (expression: string, from: string, to: string) => {
    const t = fireTimes({ type: 'cron', expression, timezone: 'Europe/Berlin' }, at(from));
    const out: string[] = [];
    let c: Date | null = at(from);
    while ((c = t.next(c)) && c < at(to)) out.push(c.toISOString());
    return out;
  };

  it('a daily 02:30 job runs exactly once on the spring-forward day (02:30 does not exist) and on the fall-back day (it exists twice)', () => {
    // 2026-03-29: clocks go 02:00 -> 03:00 CET->CEST; croner runs the missing wall time at the gap's end.
    assert.deepEqual(dayFires('0 30 2 * * *', '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z'), ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    // 2026-10-25: clocks go 03:00 -> 02:00; the first 02:30 (CEST, 00:30Z) runs, the repeat does not.
    assert.deepEqual(dayFires('0 30 2 * * *', '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z'), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('an hourly job follows elapsed time: 23 runs on the short day, 25 on the long day', () => {
    assert.equal(dayFires('0 0 * * * *', '2026-03-28T22:59:59Z', '2026-03-29T22:00:00Z').length, 23);
    assert.equal(dayFires('0 0 * * * *', '2026-10-24T21:59:59Z', '2026-10-25T23:00:00Z').length, 25);
  });
});
