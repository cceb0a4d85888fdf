-- Only scheduled executions have a fire time. A partial unique index keeps "one execution per
-- (job, fire time)" and spares manual and webhook executions an index entry on every status change.
ALTER TABLE executions DROP CONSTRAINT executions_job_id_fire_time_key;
CREATE UNIQUE INDEX executions_job_fire_time_key ON executions (job_id, fire_time) WHERE fire_time IS NOT NULL;
