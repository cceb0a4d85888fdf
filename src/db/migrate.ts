import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from './database.ts';
import { VecronError } from '../errors.ts';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url).pathname;
// Any constant works; it only has to be the same in every vecron process.
const MIGRATION_LOCK_KEY = 7_265_736_532;

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

/** Migrations are plain SQL files named `NNN_description.sql`, applied in number order. */
export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f))
    .map((f) => ({ id: Number(f.split('_')[0]), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.id - b.id);
}

/**
 * An old binary must not run on a schema a newer one migrated (as graphile-worker refuses to):
 * its queries may no longer fit the tables, and it could not tell. During a rolling upgrade the
 * old processes that already run keep going (migrations only add, see docs/operations.md), but an
 * old one that restarts stops here with a message that says what to do.
 */
function refuseNewerSchema(applied: { id: number; name: string }[], known: Migration[]): void {
  const latestKnown = known.length ? known[known.length - 1].id : 0;
  const newer = applied.filter((r) => r.id > latestKnown);
  if (newer.length === 0) return;
  const latest = newer[newer.length - 1];
  throw new VecronError(
    'unavailable',
    `the database schema is newer than this vecron: it has migration ${latest.name}, this version knows up to ` +
      `${known.length ? known[known.length - 1].name : 'none'}; run the vecron version that applied it (or a newer one)`,
    { database_migration: latest.id, known_migration: latestKnown },
  );
}

/**
 * Applies pending migrations (refusing a schema newer than this binary's migrations). A session-level advisory lock serialises processes that start at
 * the same moment: the second one waits, then finds nothing left to do. Each migration runs in its
 * own transaction together with its bookkeeping row, so a failure leaves no half-applied file.
 */
export async function migrate(db: Database, migrations = listMigrations()): Promise<number[]> {
  return db.withSession(async (s) => {
    await s.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await s.exec(`CREATE TABLE IF NOT EXISTS vecron_migrations (
        id integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const appliedRows = (await s.query<{ id: number; name: string }>('SELECT id, name FROM vecron_migrations ORDER BY id')).rows;
      refuseNewerSchema(appliedRows, migrations);
      const done = new Set(appliedRows.map((r) => r.id));
      const applied: number[] = [];
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        await s.exec('BEGIN');
        try {
          await s.exec(m.sql);
          await s.query('INSERT INTO vecron_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
          await s.exec('COMMIT');
        } catch (err) {
          await s.exec('ROLLBACK');
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(m.id);
      }
      return applied;
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}
