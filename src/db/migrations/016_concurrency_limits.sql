-- Concurrency keys and rate limits (issue 18, src/limits, src/state/claim-limited.ts). An execution
-- carries its job's limits, copied when it is queued (the key rendered from the trigger): at most
-- concurrency_limit running executions with the same concurrency_key, at most rate_limit starts
-- with the same rate_key in any rate_interval_seconds. All NULL for a job without limits.
ALTER TABLE executions
  ADD COLUMN concurrency_key text,
  ADD COLUMN concurrency_limit integer,
  ADD COLUMN rate_key text,
  ADD COLUMN rate_limit integer,
  ADD COLUMN rate_interval_seconds integer;

-- The queue's fast path claims only executions without limits, from an index that holds only
-- them: a backlog of executions waiting for a slot is never scanned by it. Each queued row enters
-- exactly one of the two indexes, so a status change costs the same index writes as before.
DROP INDEX IF EXISTS executions_queued_idx;
CREATE INDEX executions_queued_idx ON executions (run_at)
  WHERE status = 'queued' AND concurrency_key IS NULL AND rate_key IS NULL;
CREATE INDEX executions_queued_limited_idx ON executions (run_at)
  WHERE status = 'queued' AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL);
-- Running executions per key (only limited ones enter it).
CREATE INDEX executions_running_key_idx ON executions (concurrency_key)
  WHERE status = 'running' AND concurrency_key IS NOT NULL;

-- Starts of rate-limited executions: a start holds one of its key's rate_limit tokens until
-- expires_at (start + the job's interval). Written by the limited claim, pruned by the workers.
CREATE TABLE execution_starts (
  key          text NOT NULL,
  execution_id uuid NOT NULL,
  started_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL
);
CREATE INDEX execution_starts_key_idx ON execution_starts (key, expires_at);
