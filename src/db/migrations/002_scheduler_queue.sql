-- Scheduler and queue bookkeeping.

-- 'skipped': a fire time that was not run because the previous execution was still going
-- (overlap_policy 'skip'); kept so the history shows every fire time.
ALTER TABLE executions DROP CONSTRAINT executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead_lettered', 'cancelled', 'skipped'));

-- overlap_policy 'queue': such executions of one job run one at a time, oldest first.
ALTER TABLE executions ADD COLUMN serial boolean NOT NULL DEFAULT false;
-- one entry per failed attempt: {attempt, at, error}
ALTER TABLE executions ADD COLUMN attempts jsonb NOT NULL DEFAULT '[]';

CREATE INDEX executions_active_job_idx ON executions (job_id, created_at) WHERE status IN ('queued', 'running');

-- The scheduler's state per job: when it fires next. Owned by the scheduler processes, which
-- bring it in line with the jobs table on every tick (jobs.version tells what changed).
CREATE TABLE schedules (
  job_id        uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  job_version   integer NOT NULL,
  next_fire_at  timestamptz,
  last_fire_at  timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
