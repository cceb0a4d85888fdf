-- The claim (src/state/claim.ts) takes the oldest runnable executions: ORDER BY run_at, created_at
-- LIMIT n ... FOR UPDATE SKIP LOCKED. The index it used (016) held run_at only, so PostgreSQL read
-- every due row of the backlog and sorted them to return the first few: a claim of 3 from a
-- backlog of 2,000 read 1,853 buffers and took ~1 ms more than it should (the queue benchmark,
-- issue 13), and it grew with the backlog. With both sort keys in the index a claim reads the
-- rows it returns (plus any another worker holds locked), whatever the backlog. Same predicate as
-- before: each queued row still enters exactly one of the two queue indexes.
CREATE INDEX executions_claim_idx ON executions (run_at, created_at)
  WHERE status = 'queued' AND concurrency_key IS NULL AND rate_key IS NULL;
DROP INDEX IF EXISTS executions_queued_idx;
