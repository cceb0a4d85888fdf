-- Every status change of an execution rewrites its row, and each index the new row version enters
-- costs a write: fewer indexes, faster queue. The status list uses executions_created_idx (newest
-- first, filtered); serial and overlap checks use the unique (job_id, fire_time) index and
-- executions_job_idx.
DROP INDEX IF EXISTS executions_status_idx;
DROP INDEX IF EXISTS executions_active_job_idx;
