/** The permission types the API accepts are exactly what the schema stores (a mismatch was a 500). */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/db/database.ts';
import { PERMISSION_TYPES } from '../../src/modules/permissions.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: wasm_module_permissions.permission_type`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(async () => {
      await db?.close();
    });

    it('allows exactly PERMISSION_TYPES', async () => {
      const { rows } = await db.query<{ def: string }>(
        `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
         WHERE c.conrelid = 'wasm_module_permissions'::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%permission_type%'`,
      );
      assert.equal(rows.length, 1);
      const allowed = [...rows[0].def.matchAll(/'([^']+)'::text/g)].map((m) => m[1]).sort();
      assert.deepEqual(allowed, [...PERMISSION_TYPES].sort());
    });

    it('stores every type, secret:use included', async () => {
      const m = (
        await db.query<{ id: string }>(
          `INSERT INTO wasm_modules (id, name, version, author, minio_path, hash, size_bytes, info)
           VALUES (gen_random_uuid(), 'perm-check', '1.0.0', 'a', 'wasm-modules/x.wasm', repeat('0', 64), 1, '{}') RETURNING id`,
        )
      ).rows[0];
      for (const t of PERMISSION_TYPES) {
        await db.query('INSERT INTO wasm_module_permissions (module_id, permission_type, resource_pattern) VALUES ($1, $2, NULL)', [m.id, t]);
      }
      const n = (await db.query<{ n: string }>('SELECT count(*) AS n FROM wasm_module_permissions WHERE module_id = $1', [m.id])).rows[0].n;
      assert.equal(Number(n), PERMISSION_TYPES.length);
    });
  });
});
