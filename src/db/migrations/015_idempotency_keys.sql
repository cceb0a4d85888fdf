-- Issue 18: idempotency keys for the manual and webhook triggers (src/triggers/idempotency.ts).
-- A repeated `Idempotency-Key` on the same job and trigger kind within the window answers with the
-- execution the first request created instead of making a second one. The primary key is what
-- makes this race-safe across API processes: concurrent requests with one key all insert here, one
-- wins, the others wait on the unique index until its transaction ends and then read its row.
CREATE TABLE idempotency_keys (
  job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  -- manual and webhook triggers authenticate differently (API token, HMAC secret): separate key spaces
  source        text NOT NULL CHECK (source IN ('manual', 'webhook')),
  key           text NOT NULL,
  -- sha256 of the request (payload; for webhooks the raw body and query): the same key with another
  -- request is refused (idempotency_key_reused)
  fingerprint   text NOT NULL,
  -- set in the transaction that inserted the key; a key whose execution is deleted goes with it
  execution_id  uuid REFERENCES executions (id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (job_id, source, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_execution_idx ON idempotency_keys (execution_id);
