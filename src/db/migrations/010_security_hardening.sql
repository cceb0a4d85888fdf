-- Issue 12: tokens stored as HMAC-SHA256 (keyed from the server's secret key), no part of a token
-- kept; webhook replay protection and failure throttling shared by the whole cluster; audit rows
-- aggregated per source and minute for refused anonymous calls.

-- Tokens: the shown prefix goes; existing rows keep their plain SHA-256 until they are next used,
-- when authentication rewrites them as HMAC (their plaintext is only known at that moment).
ALTER TABLE api_tokens DROP COLUMN prefix;
ALTER TABLE api_tokens ADD COLUMN hash_scheme text NOT NULL DEFAULT 'sha256'
  CHECK (hash_scheme IN ('sha256', 'hmac-sha256'));
ALTER TABLE api_tokens ALTER COLUMN hash_scheme SET DEFAULT 'hmac-sha256';

-- Webhook signatures accepted within the tolerance window: a second request with the same one is a replay.
CREATE TABLE webhook_signatures_seen (
  signature  text PRIMARY KEY,
  job_id     text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX webhook_signatures_seen_expires_idx ON webhook_signatures_seen (expires_at);

-- Counters per key and window (failed webhook signatures per source address and per job).
CREATE TABLE request_counters (
  key        text PRIMARY KEY,
  count      integer NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX request_counters_expires_idx ON request_counters (expires_at);

-- Aggregated audit rows (one per action, source and minute, with a count in details): the key is
-- set only on those rows.
ALTER TABLE audit_log ADD COLUMN aggregate_key text;
CREATE UNIQUE INDEX audit_log_aggregate_key_idx ON audit_log (aggregate_key) WHERE aggregate_key IS NOT NULL;
