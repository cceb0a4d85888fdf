/**
 * The limits an execution is queued with: its job's `concurrency_key` rendered against the trigger,
 * the job and its variables, and the job's limits, copied onto the execution row (an edit of the
 * job does not change the limits of executions already queued, as with the job snapshot).
 */
import { createHash } from 'node:crypto';
import type { Queryable } from '../db/database.ts';
import { VecronError } from '../errors.ts';
import { findTemplateReferences, renderTemplateText } from '../engine/templates.ts';
import type { JobRecord } from '../jobs/repository.ts';
import type { TriggerInfo } from '../state/enqueue.ts';
import { mergeRunVariables, type RunVariableRow } from '../variables/repository.ts';

export interface ExecutionLimits {
  /** Set when a concurrency limit applies: at most `concurrencyLimit` running executions with this key. */
  concurrencyKey: string | null;
  concurrencyLimit: number | null;
  /** Set when a rate limit applies: at most `rateLimit` starts with this key in `rateIntervalSeconds`. */
  rateKey: string | null;
  rateLimit: number | null;
  rateIntervalSeconds: number | null;
}

/** Longest key stored as it is; a longer one keeps its start and a hash of the whole (still one key per value). */
const MAX_KEY_CHARS = 500;

/** The key of a job that has limits but no concurrency_key: the job itself. */
export const jobKey = (jobId: string): string => `job:${jobId}`;

/** Whether a job has any limit (executions of jobs without one take the queue's fast path). */
export function hasLimits(job: Pick<JobRecord, 'concurrency_limit' | 'rate_limit'>): boolean {
  return (job.concurrency_limit ?? null) !== null || (job.rate_limit ?? null) !== null;
}

function fit(key: string): string {
  if (key.length <= MAX_KEY_CHARS) return key;
  return `${key.slice(0, MAX_KEY_CHARS - 41)}#${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** Stored variables a key may use: global and the job's, secrets left out (a key is shown in the API). */
async function keyVariables(db: Queryable, job: JobRecord): Promise<Record<string, unknown>> {
  const { rows } = await db.query<RunVariableRow>(
    `SELECT name, job_id, secret, value, NULL AS encrypted_value FROM variables
     WHERE NOT secret AND (job_id IS NULL OR job_id = $1) ORDER BY (job_id IS NOT NULL), name`,
    [job.id],
  );
  return mergeRunVariables(rows, Buffer.alloc(0), job.variables).values;
}

/**
 * Renders the key. A reference that cannot be resolved refuses a manual or webhook trigger (the
 * caller can send what is missing: a 422 naming it); for a schedule, which nobody can answer, the
 * missing part renders as empty, so those executions share one key (the limit still holds).
 */
async function renderKey(db: Queryable, job: JobRecord, trigger: TriggerInfo): Promise<string> {
  const template = job.concurrency_key as string;
  const refs = findTemplateReferences(template);
  const variables = refs.some((r) => r.startsWith('variables')) ? await keyVariables(db, job) : (job.variables ?? {});
  const context = { trigger, job: { id: job.id, name: job.name }, variables };
  const strict = trigger.type !== 'schedule';
  return renderTemplateText(template, context, (ref, err) => {
    if (!strict) return '';
    const inBody = ref.startsWith('trigger.payload.') ? ref.slice('trigger.payload.'.length) : null;
    const secretHint = ref.startsWith('variables.') ? ' (secret variables cannot be used in a key: it is shown in the API)' : '';
    throw new VecronError('validation_failed', `the job's concurrency_key '${template}' cannot be worked out for this trigger: ${err.message}${secretHint}`, {
      problems: [{ path: inBody ?? ref, message: `the job's concurrency_key needs {{${ref}}}${secretHint}` }],
    });
  });
}

/** The limits of a new execution of `job`, or null when the job has none. */
export async function executionLimits(db: Queryable, job: JobRecord, trigger: TriggerInfo): Promise<ExecutionLimits | null> {
  if (!hasLimits(job)) return null;
  const key = job.concurrency_key ? fit(await renderKey(db, job, trigger)) : null;
  const rate = job.rate_limit ?? null;
  const concurrencyLimit = job.concurrency_limit ?? null;
  return {
    concurrencyKey: concurrencyLimit !== null ? (key ?? jobKey(job.id)) : null,
    concurrencyLimit,
    rateKey: rate ? (rate.per === 'key' && key !== null ? key : jobKey(job.id)) : null,
    rateLimit: rate?.limit ?? null,
    rateIntervalSeconds: rate?.interval_seconds ?? null,
  };
}
