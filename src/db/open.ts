import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { VecronError } from '../errors.ts';
import type { Database } from './database.ts';
import { migrate } from './migrate.ts';

/**
 * PGlite keeps its files in one directory that exactly one process may open; a second process
 * would corrupt it. A pid file guards against that and names the process holding it.
 */
function lockDataDir(dir: string): () => void {
  const lockFile = join(dir, 'vecron.pid');
  try {
    const pid = Number(readFileSync(lockFile, 'utf8'));
    if (pid && pid !== process.pid) {
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (alive) {
        throw new VecronError(
          'unavailable',
          `the embedded database in ${dir} is in use by process ${pid}; stop it first, use the HTTP API, ` +
            'or set DATABASE_URL to a PostgreSQL server so that several processes can share it',
        );
      }
    }
  } catch (err) {
    if (err instanceof VecronError) throw err;
  }
  writeFileSync(lockFile, String(process.pid));
  return () => rmSync(lockFile, { force: true });
}

export interface OpenOptions {
  onError?: (err: Error) => void;
  /** Apply pending migrations (default true). */
  migrate?: boolean;
}

/** Opens the configured database and brings its schema up to date. */
export async function openDatabase(config: Config, opts: OpenOptions = {}): Promise<Database> {
  let db: Database;
  // Each driver is loaded only when it is used (issue 19's cold start: pg is ~60 ms of module loading).
  if (config.databaseUrl) {
    const { openPostgres } = await import('./postgres.ts');
    try {
      db = await openPostgres(config.databaseUrl, { poolSize: config.dbPoolSize, onError: opts.onError });
    } catch (err) {
      const u = new URL(config.databaseUrl);
      throw new VecronError('unavailable', `cannot connect to PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname}: ${(err as Error).message}`);
    }
  } else {
    const [{ openPglite }, { copyPgliteTemplate }] = await Promise.all([import('./pglite.ts'), import('./pglite-template.ts')]);
    const dir = join(config.dataDir, 'pglite');
    mkdirSync(config.dataDir, { recursive: true });
    const unlock = lockDataDir(config.dataDir);
    try {
      // A new data directory starts as a copy of the template `npm install` made, when there is
      // one: PGlite's own initdb would take several seconds of the first start.
      // A directory with files but no PG_VERSION is left to PGlite as it is (never deleted).
      const empty = !existsSync(dir) || readdirSync(dir).length === 0;
      if (empty && !existsSync(join(dir, 'PG_VERSION'))) {
        if (existsSync(dir)) rmdirSync(dir);
        if (!(await copyPgliteTemplate(dir))) mkdirSync(dir, { recursive: true });
      }
      const inner = await openPglite(dir);
      db = { ...inner, close: async () => (await inner.close(), unlock()) };
    } catch (err) {
      unlock();
      throw err;
    }
  }
  if (opts.migrate !== false) {
    try {
      await migrate(db);
    } catch (err) {
      await db.close();
      throw err;
    }
  }
  return db;
}
