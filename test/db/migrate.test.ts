import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { forEachDatabase, openTestDb, openPostgresTestDb } from '../helpers/db.ts';
import { migrate, listMigrations } from '../../src/db/migrate.ts';
import { wrapPglite } from '../../src/db/pglite.ts';
import { openPostgres } from '../../src/db/postgres.ts';

describe('migrations', () => {
  it('apply every numbered file in order on a new PGlite database, then nothing on a second run', async () => {
    const db = wrapPglite(await PGlite.create());
    try {
      const applied = await migrate(db);
      assert.deepEqual(
        applied,
        listMigrations().map((m) => m.id),
      );
      assert.deepEqual(await migrate(db), []);
      const tables = await db.query<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1");
      for (const t of ['api_tokens', 'audit_log', 'executions', 'jobs', 'step_runs', 'vecron_migrations']) {
        assert.ok(
          tables.rows.some((r) => r.t === t),
          `table ${t} exists`,
        );
      }
    } finally {
      await db.close();
    }
  });

  it('roll back a failing migration completely and name it', async () => {
    const db = wrapPglite(await PGlite.create());
    try {
      const bad = [
        { id: 1, name: '001_ok.sql', sql: 'CREATE TABLE a (x int);' },
        { id: 2, name: '002_broken.sql', sql: 'CREATE TABLE b (x int); SELECT * FROM no_such_table;' },
      ];
      await assert.rejects(migrate(db, bad), /002_broken\.sql failed/);
      const b = await db.query("SELECT to_regclass('b') AS t");
      assert.equal(b.rows[0].t, null, 'table b of the failed migration was rolled back');
      const ids = await db.query<{ id: number }>('SELECT id FROM vecron_migrations');
      assert.deepEqual(
        ids.rows.map((r) => r.id),
        [1],
      );
    } finally {
      await db.close();
    }
  });

  it('refuse to run an old binary on a schema a newer one migrated, and change nothing', async () => {
    const db = wrapPglite(await PGlite.create());
    try {
      const newer = [
        { id: 1, name: '001_a.sql', sql: 'CREATE TABLE a (x int);' },
        { id: 2, name: '002_b.sql', sql: 'CREATE TABLE b (x int);' },
      ];
      assert.deepEqual(await migrate(db, newer), [1, 2]);
      const older = [newer[0]];
      await assert.rejects(migrate(db, older), (err: any) => {
        assert.equal(err.code, 'unavailable');
        assert.match(err.message, /schema is newer than this vecron: it has migration 002_b\.sql, this version knows up to 001_a\.sql/);
        assert.deepEqual(err.details, { database_migration: 2, known_migration: 1 });
        return true;
      });
      // Same binary, or a newer one: fine.
      assert.deepEqual(await migrate(db, newer), []);
      assert.deepEqual(await migrate(db, [...newer, { id: 3, name: '003_c.sql', sql: 'CREATE TABLE c (x int);' }]), [3]);
    } finally {
      await db.close();
    }
  });

  it('are applied exactly once when several processes start at the same moment (PostgreSQL)', {
    skip: !process.env.TEST_DATABASE_URL && 'TEST_DATABASE_URL is not set',
  }, async () => {
    const base = await openPostgresTestDb(); // already migrated: use a fresh schema in it instead
    try {
      await base.exec('CREATE SCHEMA race');
      const url = new URL(base.url);
      url.searchParams.set('options', '-c search_path=race');
      const dbs = await Promise.all([1, 2, 3, 4].map(() => openPostgres(url.toString(), { poolSize: 2 })));
      const results = await Promise.all(dbs.map((d) => migrate(d)));
      await Promise.all(dbs.map((d) => d.close()));
      const all = results.flat().sort((a, b) => a - b);
      assert.deepEqual(
        all,
        listMigrations().map((m) => m.id),
        'each migration applied by exactly one process',
      );
      const rows = await base.query('SELECT count(*)::int AS n FROM race.vecron_migrations');
      assert.equal(rows.rows[0].n, listMigrations().length);
    } finally {
      await base.close();
    }
  });
});

forEachDatabase((kind) => {
  describe(`${kind}: database layer`, () => {
    it('runs parameterised queries, transactions that roll back, and LISTEN/NOTIFY', async () => {
      const db = await openTestDb(kind);
      try {
        const r = await db.query<{ n: number; j: unknown }>('SELECT $1::int + 1 AS n, $2::jsonb AS j', [41, JSON.stringify({ a: [1] })]);
        assert.deepEqual(r.rows[0], { n: 42, j: { a: [1] } });

        await db.exec('CREATE TABLE t (x int)');
        await assert.rejects(
          db.transaction(async (tx) => {
            await tx.query('INSERT INTO t VALUES (1)');
            throw new Error('boom');
          }),
          /boom/,
        );
        await db.transaction(async (tx) => tx.query('INSERT INTO t VALUES (2)'));
        const rows = await db.query<{ x: number }>('SELECT x FROM t');
        assert.deepEqual(rows.rows, [{ x: 2 }]);

        const got: string[] = [];
        const unlisten = await db.listen('test_channel', (p) => got.push(p));
        await db.notify('test_channel', 'hello');
        for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(got, ['hello']);
        await unlisten();
        await db.notify('test_channel', 'after');
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(got, ['hello'], 'no message after unlisten');
      } finally {
        await db.close();
      }
    });
  });
});
