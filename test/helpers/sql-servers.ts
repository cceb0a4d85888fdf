/**
 * SQL servers that `database` steps talk to in tests, each a fresh database of its own:
 * - `pglite`: PGlite behind its PostgreSQL wire server (@electric-sql/pglite-socket), always;
 * - `postgres`: a database on the server of TEST_DATABASE_URL;
 * - `mysql`: a database on the MariaDB/MySQL server of TEST_MYSQL_URL.
 * A variant whose variable is not set is registered as one skipped test with the reason (CI sets
 * both and fails on any skipped test).
 */
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { createPostgresDatabase } from './db.ts';

export type SqlKind = 'pglite' | 'postgres' | 'mysql';

export interface SqlServer {
  kind: SqlKind;
  type: 'postgresql' | 'mysql';
  /** Connection URL of the test database. */
  url: string;
  /** Runs SQL as the test's own admin connection (not through the step). */
  sql(text: string, params?: unknown[]): Promise<any[]>;
  close(): Promise<void>;
}

export async function openSqlServer(kind: SqlKind): Promise<SqlServer> {
  if (kind === 'pglite') {
    const pgl = await PGlite.create();
    const server = new PGLiteSocketServer({ db: pgl, port: 0, host: '127.0.0.1', maxConnections: 16 } as any);
    await server.start();
    const port = (server as any).server?.address()?.port ?? Number(((server as any).getServerConn?.() ?? '').split(':').pop());
    return {
      kind,
      type: 'postgresql',
      url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
      sql: async (text, params) => (await pgl.query(text, params as any[])).rows as any[],
      async close() {
        await server.stop();
        await pgl.close();
      },
    };
  }
  if (kind === 'postgres') {
    const { url, drop } = await createPostgresDatabase('vecron_step');
    const own = new pg.Pool({ connectionString: url, max: 2 });
    return {
      kind,
      type: 'postgresql',
      url,
      sql: async (text, params) => (await own.query(text, params as any[])).rows,
      async close() {
        await own.end();
        await drop();
      },
    };
  }
  const adminUrl = process.env.TEST_MYSQL_URL!;
  const name = `vecron_step_${randomBytes(6).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: adminUrl });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const own = mysql.createPool({ uri: u.toString(), connectionLimit: 2, dateStrings: true });
  return {
    kind,
    type: 'mysql',
    url: u.toString(),
    sql: async (text, params) => {
      const [rows] = await own.query(text, params);
      return rows as any[];
    },
    async close() {
      await own.end();
      const a = await mysql.createConnection({ uri: adminUrl });
      await a.query(`DROP DATABASE IF EXISTS ${name}`);
      await a.end();
    },
  };
}

/** Why a kind cannot run here, or null. */
export function sqlSkipReason(kind: SqlKind): string | null {
  if (kind === 'postgres' && !process.env.TEST_DATABASE_URL) return 'TEST_DATABASE_URL is not set';
  if (kind === 'mysql' && !process.env.TEST_MYSQL_URL) return 'TEST_MYSQL_URL is not set';
  return null;
}

/** Registers `fn`'s tests once per SQL server kind; a kind that cannot run is one skipped test. */
export function forEachSqlServer(fn: (kind: SqlKind) => void, kinds: SqlKind[] = ['pglite', 'postgres', 'mysql']): void {
  for (const kind of kinds) {
    const skip = sqlSkipReason(kind);
    if (skip) {
      test(`${kind}: skipped, ${skip}`, { skip }, () => {});
      continue;
    }
    fn(kind);
  }
}
