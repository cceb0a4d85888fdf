-- Variables (global and per job; secret ones encrypted at rest) and webhook HMAC secrets.

CREATE TABLE variables (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  scope           text NOT NULL DEFAULT 'global' CHECK (scope IN ('global', 'job')),
  job_id          uuid REFERENCES jobs (id) ON DELETE CASCADE,
  name            text NOT NULL,
  -- the value of a plain variable; null for secret ones
  value           jsonb,
  secret          boolean NOT NULL DEFAULT false,
  -- AES-256-GCM of a secret value (src/secrets/crypto.ts); null for plain ones
  encrypted_value text,
  description     text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  updated_by      text,
  CHECK ((scope = 'global') = (job_id IS NULL)),
  CHECK (NOT secret OR encrypted_value IS NOT NULL)
);
-- one variable per name and scope; global variables have no job
CREATE UNIQUE INDEX variables_scope_name_idx
  ON variables ((coalesce(job_id, '00000000-0000-0000-0000-000000000000'::uuid)), name);
CREATE INDEX variables_job_idx ON variables (job_id) WHERE job_id IS NOT NULL;

CREATE TABLE job_webhook_secrets (
  job_id           uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  -- AES-256-GCM of the HMAC secret
  encrypted_secret text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- the webhook rate limit counts a job's recent webhook executions
CREATE INDEX executions_webhook_idx ON executions (job_id, created_at) WHERE trigger_type = 'webhook';
