-- The WASM module registry: modules (bytes in the blob store), their permissions, the authors'
-- trusted signing keys, and one log row per module run.

CREATE TABLE wasm_modules (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  version       text NOT NULL,
  description   text,
  author        text NOT NULL,
  -- blob store key of the original bytes (the seed's name: MinIO is the usual store)
  minio_path    text NOT NULL,
  -- SHA-256 of the original bytes, checked on every load
  hash          text NOT NULL,
  size_bytes    bigint NOT NULL,
  -- the Ed25519 key that verified the signature, when the upload was signed
  signed_by_key uuid,
  -- what the upload checks found: imports, exports, entries, function count, memory, tables
  info          jsonb NOT NULL,
  enabled       boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text,
  UNIQUE (name, version)
);
CREATE INDEX wasm_modules_created_idx ON wasm_modules (created_at DESC);

CREATE TABLE wasm_module_permissions (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- keeps the order in which permissions were given
  seq              bigint GENERATED ALWAYS AS IDENTITY,
  module_id        uuid NOT NULL REFERENCES wasm_modules (id) ON DELETE CASCADE,
  permission_type  text NOT NULL CHECK (permission_type IN
                     ('http:read', 'http:write', 'database:read', 'database:write', 'file:read', 'file:write', 'network:external')),
  -- glob over the resource (URL, table, path, host); NULL = any resource of that type
  resource_pattern text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text
);
CREATE INDEX wasm_module_permissions_module_idx ON wasm_module_permissions (module_id);

-- Trusted Ed25519 public keys, per author. Revoked keys are kept (revoked_at) for the record.
CREATE TABLE wasm_author_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  author       text NOT NULL,
  -- raw 32-byte key, hex
  public_key   text NOT NULL UNIQUE,
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text,
  revoked_at   timestamptz,
  revoked_by   text
);
CREATE INDEX wasm_author_keys_author_idx ON wasm_author_keys (author) WHERE revoked_at IS NULL;

-- One row per run of a module in a job. The module may be deleted later: its name and version are
-- copied so the history stays readable.
CREATE TABLE wasm_execution_logs (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  execution_id      uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
  step_id           text NOT NULL,
  attempt           integer NOT NULL DEFAULT 1,
  module_id         uuid REFERENCES wasm_modules (id) ON DELETE SET NULL,
  module_name       text NOT NULL,
  module_version    text NOT NULL,
  function_name     text NOT NULL,
  fuel_consumed     bigint NOT NULL,
  memory_used_bytes bigint NOT NULL,
  duration_ms       double precision NOT NULL,
  error             jsonb,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wasm_execution_logs_execution_idx ON wasm_execution_logs (execution_id, created_at);
CREATE INDEX wasm_execution_logs_module_idx ON wasm_execution_logs (module_id, created_at DESC);
