-- Issue 15: modules may be granted `secret:use` (the secret variables they may name as crypto keys).
-- The permission types the schema allows are PERMISSION_TYPES in src/modules/permissions.ts
-- (held against this constraint by test/modules/permission-types-schema.test.ts).
ALTER TABLE wasm_module_permissions DROP CONSTRAINT IF EXISTS wasm_module_permissions_permission_type_check;
ALTER TABLE wasm_module_permissions ADD CONSTRAINT wasm_module_permissions_permission_type_check CHECK (permission_type IN
  ('http:read', 'http:write', 'database:read', 'database:write', 'file:read', 'file:write', 'network:external', 'secret:use'));
