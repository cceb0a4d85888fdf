-- Operator controls of issue 18: maintenance mode (pause firing) and retention (pruning).

-- Cluster-wide maintenance mode: one row. Every scheduler reads it inside its firing transaction
-- (FOR SHARE), and pausing updates it, so once a pause has committed no scheduler fires any more.
-- resumed_at is kept: fire times that came due before it were missed during the pause, and the
-- job's misfire_policy decides what happens to them.
CREATE TABLE maintenance_mode (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),
  paused      boolean NOT NULL DEFAULT false,
  reason      text,
  paused_at   timestamptz,
  paused_by   text,
  resumed_at  timestamptz,
  resumed_by  text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO maintenance_mode (id) VALUES (true);

-- Per-job pause (apart from `enabled`: a disabled job forgets its missed fire times, a paused one
-- applies its misfire_policy to them on resume). The row stays after a resume for resumed_at.
CREATE TABLE job_pauses (
  job_id      uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  paused      boolean NOT NULL DEFAULT true,
  reason      text,
  paused_at   timestamptz,
  paused_by   text,
  resumed_at  timestamptz,
  resumed_by  text
);
CREATE INDEX job_pauses_paused_idx ON job_pauses (job_id) WHERE paused;

-- Retention: when the last pruning run ended (cluster-wide, so that one run per interval happens
-- however many processes there are) and what it removed.
CREATE TABLE retention_runs (
  id           boolean PRIMARY KEY DEFAULT true CHECK (id),
  started_at   timestamptz,
  finished_at  timestamptz,
  node         text,
  pruned       jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO retention_runs (id) VALUES (true);

-- No new index on executions: the pruner walks executions_job_idx (job_id, created_at), and an
-- index on finished_at would cost the queue a write on every finish.
