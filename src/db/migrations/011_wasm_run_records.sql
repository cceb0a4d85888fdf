-- Issue 15: a module run's log lines and its record of privileged host calls (function, target,
-- duration, bytes, outcome, bounded and masked request and response: docs/abi.md), kept with the
-- run's row and shown by GET /api/v1/wasm/executions/{id}/logs. Rows from before keep empty ones.
ALTER TABLE wasm_execution_logs ADD COLUMN logs jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE wasm_execution_logs ADD COLUMN host_calls jsonb NOT NULL DEFAULT '[]'::jsonb;
-- Host calls past the record's cap (1,000 a run): counted, not kept.
ALTER TABLE wasm_execution_logs ADD COLUMN host_calls_dropped integer NOT NULL DEFAULT 0;
