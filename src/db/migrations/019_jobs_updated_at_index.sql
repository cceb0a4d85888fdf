-- The scheduler finds changed jobs (new, edited, enabled, disabled: each sets updated_at) among the
-- recently updated ones, from this index, instead of reading every job each round: with 100,000 jobs
-- that read was the one part of a round whose cost grew with the job count (issue 19). A full
-- comparison still runs at start, on reconnect and every few minutes (src/scheduler/scheduler.ts).
CREATE INDEX jobs_updated_at_idx ON jobs (updated_at);
