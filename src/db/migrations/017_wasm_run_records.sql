-- Issue 20: the complete record of a WASM run, for replay (src/wasm/replay/types.ts WasmRunRecord):
-- one row per recorded run, next to its wasm_execution_logs row and deleted with it (and with the
-- execution). The record is JSON text, not jsonb: a replay serves its texts exactly as kept (jsonb
-- would re-order keys). A large record lives in the blob store under blob_key and `record` is NULL;
-- whoever deletes a row must delete that blob too (the retention sweep: rows past expires_at).
CREATE TABLE wasm_run_records (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  wasm_log_id    uuid NOT NULL UNIQUE REFERENCES wasm_execution_logs (id) ON DELETE CASCADE,
  execution_id   uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
  job_id         uuid NOT NULL,
  step_id        text NOT NULL,
  attempt        integer NOT NULL,
  module_id      uuid REFERENCES wasm_modules (id) ON DELETE SET NULL,
  module_hash    text NOT NULL,
  version        integer NOT NULL,
  ok             boolean NOT NULL,
  replayable     boolean NOT NULL,
  not_replayable_reason text,
  size_bytes     bigint NOT NULL,
  record         text,
  blob_key       text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  CHECK ((record IS NULL) <> (blob_key IS NULL))
);
CREATE INDEX wasm_run_records_execution_idx ON wasm_run_records (execution_id, step_id, attempt DESC);
-- The last N recorded runs of a job's step (the shadow test).
CREATE INDEX wasm_run_records_job_step_idx ON wasm_run_records (job_id, step_id, created_at DESC);
CREATE INDEX wasm_run_records_expires_idx ON wasm_run_records (expires_at);

-- A module's own recording setting (issue 20): all, failed (only runs ending in an error) or off.
-- NULL: the server's VECRON_WASM_RECORD. The stricter of the module's, the step's and the server's wins.
ALTER TABLE wasm_modules ADD COLUMN record_mode text CHECK (record_mode IN ('all', 'failed', 'off'));
