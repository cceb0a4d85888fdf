import type { EventSource } from './events.ts';
import { stepFrom } from './statuses.ts';

/**
 * When an execution ends without succeeding (failed, dead-lettered, cancelled), its steps end too,
 * in the same statement: a step still marked running is `fail`ed with `errorSql`, and every step
 * that never ran is `skip`ped with `reasonSql`, so no step of a finished execution stays pending.
 *
 * `ended` names a CTE of the executions that just ended, with columns `id`, `job_id` and
 * `job_snapshot`. Returns the CTEs (to put after it) and their event sources (phases 0 and 1; the
 * execution's own event should use phase 2 so it comes after its steps').
 */
export function closeSteps(ended: string, errorSql: string, eventErrorSql: string, reasonSql: string): { ctes: string; events: EventSource[] } {
  const ctes = `failed_steps AS (
       UPDATE step_runs r SET status = 'failed', completed_at = now(), error = ${errorSql}
       FROM ${ended} u
       WHERE r.execution_id = u.id AND r.status IN (${stepFrom('fail')})
       RETURNING r.execution_id, u.job_id, r.step_id, r.position
     ), skipped_steps AS (
       INSERT INTO step_runs AS r (execution_id, step_id, position, type, status, reason)
       SELECT u.id, s.st->>'id', (s.p - 1)::int, s.st->>'type', 'skipped', ${reasonSql}
       FROM ${ended} u CROSS JOIN LATERAL jsonb_array_elements(u.job_snapshot->'steps') WITH ORDINALITY AS s(st, p)
       WHERE NOT EXISTS (SELECT 1 FROM step_runs d
                         WHERE d.execution_id = u.id AND d.step_id = s.st->>'id' AND d.status NOT IN (${stepFrom('skip')}))
       ON CONFLICT (execution_id, step_id) DO UPDATE
         SET status = 'skipped', reason = excluded.reason, started_at = NULL, completed_at = NULL, output = NULL, error = NULL
         WHERE r.status IN (${stepFrom('skip')})
       RETURNING r.execution_id, r.step_id, r.position, r.reason
     )`;
  const events: EventSource[] = [
    {
      from: 'failed_steps',
      kind: 'step',
      executionId: 'failed_steps.execution_id',
      jobId: 'failed_steps.job_id',
      stepId: 'failed_steps.step_id',
      status: `'failed'`,
      error: eventErrorSql,
      phase: 0,
      position: 'failed_steps.position',
    },
    {
      from: `skipped_steps JOIN ${ended} ON ${ended}.id = skipped_steps.execution_id`,
      kind: 'step',
      executionId: 'skipped_steps.execution_id',
      jobId: `${ended}.job_id`,
      stepId: 'skipped_steps.step_id',
      status: `'skipped'`,
      reason: 'skipped_steps.reason',
      phase: 1,
      position: 'skipped_steps.position',
    },
  ];
  return { ctes, events };
}

/**
 * When an execution goes back to the queue because its worker went away (reaper) or shut down
 * (hand back), the step it was running goes back to `pending` (`reset`): it runs again.
 */
export function resetSteps(requeued: string): { ctes: string; events: EventSource[] } {
  return {
    ctes: `reset_steps AS (
       UPDATE step_runs r SET status = 'pending', started_at = NULL
       FROM ${requeued} u
       WHERE r.execution_id = u.id AND r.status IN (${stepFrom('reset')})
       RETURNING r.execution_id, u.job_id, r.step_id, r.position
     )`,
    events: [
      {
        from: 'reset_steps',
        kind: 'step',
        executionId: 'reset_steps.execution_id',
        jobId: 'reset_steps.job_id',
        stepId: 'reset_steps.step_id',
        status: `'pending'`,
        phase: 0,
        position: 'reset_steps.position',
      },
    ],
  };
}
