import type { MisfirePolicy, Schedule } from '../jobs/types.ts';
import { fireTimes } from './next-fire.ts';

export interface FirePlan {
  /** Fire times to turn into executions now, oldest first. */
  fire: { at: Date; misfired: boolean }[];
  /** Fire times that were due but are dropped (misfire): the first, the last and how many (counted up to 10,000). */
  missed: { first: Date; last: Date; count: number } | null;
  /** The schedule's next fire time after this round, or null (fixed_delay waits for the run to end). */
  next: Date | null;
}

/**
 * Decides what a due schedule fires. Fire times later than `thresholdMs` are misfires (the
 * scheduler was down or stalled): policy `fire_once` runs one execution for all of them, `skip` none,
 * so a restart never releases a burst. Fire times within the threshold all run (a short stall
 * catches up).
 */
export function planFires(
  schedule: Schedule,
  dueAt: Date,
  now: Date,
  opts: { misfirePolicy: MisfirePolicy; thresholdMs: number; anchor: Date; maxBatch?: number; horizon?: Date },
): FirePlan {
  // Fire times up to `horizon` (>= now) are planned now and queued to run at their time.
  const horizon = opts.horizon && opts.horizon > now ? opts.horizon : now;
  const times = fireTimes(schedule, opts.anchor);
  const cutoff = new Date(now.getTime() - opts.thresholdMs);
  const max = opts.maxBatch ?? 100;
  const onTime: Date[] = [];
  let misfired = false;
  let t: Date | null = dueAt;
  if (t < cutoff) {
    misfired = true;
    // First fire time inside the tolerance window; everything before it was missed.
    t = times.next(new Date(cutoff.getTime() - 1));
  }
  let last: Date = dueAt;
  while (t && t <= horizon && onTime.length < max) {
    onTime.push(t);
    last = t;
    t = times.next(t);
  }
  const fire = onTime.map((at) => ({ at, misfired: false }));
  let missed: FirePlan['missed'] = null;
  if (misfired) {
    if (opts.misfirePolicy === 'fire_once' && fire.length === 0) fire.push({ at: dueAt, misfired: true });
    else missed = countMissed(times, dueAt, cutoff);
  }
  if (schedule.type === 'fixed_delay') {
    // Normally the end of the run sets the next fire time; with nothing fired, count from now.
    return { fire, missed, next: fire.length ? null : new Date(now.getTime() + schedule.delay_seconds * 1000) };
  }
  // The loop stopped at the first fire time past the horizon: that is the next one (unless it
  // stopped at maxBatch), without asking the schedule again.
  const next = onTime.length && onTime.length < max ? t : times.next(onTime.length ? last : now);
  return { fire, missed, next: next && next <= now ? times.next(horizon) : next };
}

/** The fire times from `first` up to (not including) `cutoff`: the missed ones. */
function countMissed(times: ReturnType<typeof fireTimes>, first: Date, cutoff: Date): NonNullable<FirePlan['missed']> {
  let last = first;
  let count = 1;
  for (let t = times.next(first); t && t < cutoff && count < 10_000; t = times.next(t)) {
    last = t;
    count++;
  }
  return { first, last, count };
}
