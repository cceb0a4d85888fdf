/**
 * The values of a new execution row, in the one column order that enqueue.ts (one execution) and
 * enqueue-many.ts (a batch, as unnest arrays) both bind: a change to the columns is made here once.
 */
import type { JobRecord } from '../jobs/repository.ts';
import type { executionLimits } from '../limits/key.ts';
import type { EnqueueOptions } from './enqueue.ts';

/** Number of values per execution row (the parameters $1..$15 of both statements). */
export const EXECUTION_ROW_VALUES = 15;

/** The job's definition as the execution keeps it: everything but its record fields. */
export function jobSnapshotOf(job: JobRecord): string {
  const { id: _id, version: _v, created_at, updated_at, created_by, updated_by, ...definition } = job;
  return JSON.stringify(definition);
}

export function executionRowValues(
  job: JobRecord,
  snapshot: string,
  opts: EnqueueOptions,
  trigger: unknown,
  limits: Awaited<ReturnType<typeof executionLimits>> | null,
): unknown[] {
  return [
    job.id,
    job.version,
    snapshot,
    opts.trigger.type,
    JSON.stringify(trigger),
    opts.fireTime ?? null,
    job.max_retries + 1,
    opts.runAt ?? null,
    opts.serial ?? false,
    opts.skip ? JSON.stringify(opts.skip) : null,
    limits?.concurrencyKey ?? null,
    limits?.concurrencyLimit ?? null,
    limits?.rateKey ?? null,
    limits?.rateLimit ?? null,
    limits?.rateIntervalSeconds ?? null,
  ];
}
