/**
 * Test databases. Every suite that touches the data layer runs on embedded PGlite, and again on a
 * real PostgreSQL when TEST_DATABASE_URL is set (each test file gets a fresh database there).
 *
 * Creating a PGlite instance from scratch takes ~3 s (initdb); loading a dump of an already migrated
 * one takes ~0.4 s, so the first test process writes a template to test/.cache and the rest load it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Database } from '../../src/db/database.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { migrate, listMigrations } from '../../src/db/migrate.ts';
import { wrapPglite } from '../../src/db/pglite.ts';

export type DbKind = 'pglite' | 'postgres';

export const DB_KINDS: DbKind[] = ['pglite', 'postgres'];

const cacheDir = new URL('../.cache/', import.meta.url).pathname;

async function pgliteTemplate(): Promise<Blob> {
  const hash = createHash('sha256')
    .update(
      listMigrations()
        .map((m) => m.name + m.sql)
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 16);
  const file = join(cacheDir, `pglite-${hash}.tar`);
  if (existsSync(file)) return new Blob([readFileSync(file)]);
  const pgl = await PGlite.create();
  const db = wrapPglite(pgl);
  await migrate(db);
  const dump = await pgl.dumpDataDir('none');
  await pgl.close();
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
  renameSync(tmp, file); // atomic: concurrent test processes never read half a file
  return dump;
}

/** A fresh, migrated in-memory PGlite database. */
export async function openPgliteTestDb(): Promise<Database> {
  const pgl = await PGlite.create({ loadDataDir: await pgliteTemplate() });
  return wrapPglite(pgl);
}

/** Creates an empty database `<prefix>_<random>` on the PostgreSQL server of TEST_DATABASE_URL. */
export async function createPostgresDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) throw new Error('TEST_DATABASE_URL is not set');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

/** A fresh, migrated database on the PostgreSQL server of TEST_DATABASE_URL; dropped on close. */
export async function openPostgresTestDb(): Promise<Database & { url: string }> {
  const { url, drop } = await createPostgresDatabase('vecron_test');
  const db = await openPostgres(url, { poolSize: 10 });
  await migrate(db);
  return {
    ...db,
    url,
    async close() {
      await db.close();
      await drop();
    },
  };
}

export function openTestDb(kind: DbKind): Promise<Database> {
  return kind === 'pglite' ? openPgliteTestDb() : openPostgresTestDb();
}

/**
 * Registers `fn`'s tests once per database kind. Without TEST_DATABASE_URL the PostgreSQL variant
 * is reported as skipped (CI sets the variable and fails on any skipped test).
 */
export function forEachDatabase(fn: (kind: DbKind) => void): void {
  for (const kind of DB_KINDS) {
    if (kind === 'postgres' && !process.env.TEST_DATABASE_URL) {
      test(`postgres: skipped, TEST_DATABASE_URL is not set`, { skip: 'TEST_DATABASE_URL is not set' }, () => {});
      continue;
    }
    fn(kind);
  }
}
