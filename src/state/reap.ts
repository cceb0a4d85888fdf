import type { Queryable } from '../db/database.ts';
import { QUEUE_CHANNEL } from '../db/channels.ts';
import { closeSteps, resetSteps } from './close-steps.ts';
import { eventsCte } from './events.ts';
import { SKIP_REASONS, execFrom } from './statuses.ts';

export interface ReapedExecution {
  id: string;
  job_id: string;
  status: 'queued' | 'dead_lettered';
  locked_by: string;
}

/**
 * `reap` and `reap_dead_letter`: executions whose worker stopped renewing its lease (crashed,
 * killed, partitioned) go back to the queue, or to the dead-letter state when that was their last
 * attempt, so a module that kills its worker every time cannot loop forever. The step that was
 * running goes back to pending and is run again by the next worker (or, when dead-lettered, ends
 * as failed, and the steps after it as skipped). One statement, events included.
 */
export async function reapExpiredLeases(db: Queryable): Promise<ReapedExecution[]> {
  const error = `jsonb_build_object('code', 'lease_expired', 'message', 'the worker running this step stopped renewing its lease (it crashed or was killed)')`;
  const close = closeSteps('dead', error, error, `'${SKIP_REASONS.afterFailure}'`);
  const reset = resetSteps('requeued');
  const { rows } = await db.query<ReapedExecution>(
    `WITH expired AS (
       SELECT id, locked_by FROM executions
       WHERE status IN (${execFrom('reap')}) AND lease_expires_at < now()
       FOR UPDATE SKIP LOCKED
     ), x AS (
       UPDATE executions x
       SET status = CASE WHEN x.attempt >= x.max_attempts THEN 'dead_lettered' ELSE 'queued' END,
           locked_by = NULL, lease_expires_at = NULL, run_at = greatest(x.run_at, now()), -- one claimed ahead stays due at its time
           finished_at = CASE WHEN x.attempt >= x.max_attempts THEN now() ELSE NULL END,
           error = jsonb_build_object('code', 'lease_expired', 'message',
                     'worker ' || e.locked_by || ' stopped renewing its lease (it crashed or was killed); attempt ' || x.attempt || ' of ' || x.max_attempts),
           attempts = x.attempts || jsonb_build_array(jsonb_build_object('attempt', x.attempt, 'at', now(), 'worker', e.locked_by,
                     'error', jsonb_build_object('code', 'lease_expired', 'message', 'worker stopped renewing its lease')))
       FROM expired e WHERE x.id = e.id
       RETURNING x.id, x.job_id, x.status, x.job_snapshot, x.error, e.locked_by
     ), dead AS (SELECT * FROM x WHERE status = 'dead_lettered'),
     requeued AS (SELECT * FROM x WHERE status = 'queued'),
     ${close.ctes}, ${reset.ctes},
     ${eventsCte([
       ...close.events,
       ...reset.events,
       { from: 'x', kind: 'execution', executionId: 'x.id', jobId: 'x.job_id', status: 'x.status', error: 'x.error', phase: 2 },
     ])}
     SELECT x.id, x.job_id, x.status, x.locked_by,
            CASE WHEN x.status = 'queued' THEN pg_notify('${QUEUE_CHANNEL}', x.id::text) END AS woke
     FROM x`,
  );
  return rows.map(({ id, job_id, status, locked_by }) => ({ id, job_id, status, locked_by }));
}
