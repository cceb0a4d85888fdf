-- Step rows are now written when a step starts (by the claim for the first one), not when the
-- execution is queued: one row write less per execution, and queued executions stay one row.
-- A step row is updated once more when the step ends; free space on its page lets that update be
-- HOT (no new index entry), since none of the updated columns is indexed.
ALTER TABLE step_runs SET (fillfactor = 80);
