-- vecron schema, version 1: jobs, executions and their steps, API tokens, the audit log.

CREATE TABLE jobs (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL UNIQUE,
  description   text,
  -- the canonical job document (src/jobs/types.ts), without id and timestamps
  definition    jsonb NOT NULL,
  enabled       boolean NOT NULL DEFAULT true,
  version       integer NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text,
  updated_by    text
);

CREATE TABLE executions (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  job_version      integer NOT NULL,
  -- the job as it was when the execution was created: later edits do not change a queued run
  job_snapshot     jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead_lettered', 'cancelled')),
  trigger_type     text NOT NULL CHECK (trigger_type IN ('schedule', 'manual', 'webhook')),
  trigger          jsonb NOT NULL DEFAULT '{}',
  -- the schedule's fire time; unique per job so that every fire time becomes exactly one execution
  fire_time        timestamptz,
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL DEFAULT 1,
  run_at           timestamptz NOT NULL DEFAULT now(),
  locked_by        text,
  lease_expires_at timestamptz,
  context          jsonb,
  error            jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  UNIQUE (job_id, fire_time)
);
CREATE INDEX executions_queued_idx ON executions (run_at) WHERE status = 'queued';
CREATE INDEX executions_running_idx ON executions (lease_expires_at) WHERE status = 'running';
CREATE INDEX executions_job_idx ON executions (job_id, created_at DESC);
CREATE INDEX executions_status_idx ON executions (status, created_at DESC);
CREATE INDEX executions_created_idx ON executions (created_at DESC);

CREATE TABLE step_runs (
  execution_id  uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
  step_id       text NOT NULL,
  position      integer NOT NULL,
  type          text NOT NULL,
  status        text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
  attempt       integer NOT NULL DEFAULT 0,
  output        jsonb,
  error         jsonb,
  started_at    timestamptz,
  completed_at  timestamptz,
  PRIMARY KEY (execution_id, step_id)
);

CREATE TABLE api_tokens (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL,
  role          text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  -- SHA-256 of the token; the token itself is shown once, at creation
  token_hash    text NOT NULL UNIQUE,
  prefix        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text,
  last_used_at  timestamptz,
  revoked_at    timestamptz
);

CREATE TABLE audit_log (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  actor_id      text,
  actor_name    text,
  actor_role    text,
  action        text NOT NULL,
  resource_type text,
  resource_id   text,
  outcome       text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied', 'alert')),
  status_code   integer,
  details       jsonb,
  ip            text,
  request_id    text
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id);
