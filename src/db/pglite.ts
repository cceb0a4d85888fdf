import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult, Row } from './database.ts';

type PGliteLike = Pick<PGlite, 'query' | 'exec'>;

function wrap(pg: PGliteLike): Queryable {
  return {
    async query<T = Row>(sql: string, params: unknown[] = []): Promise<QueryResult<T>> {
      const r = await pg.query<T>(sql, params as any[]);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await pg.exec(sql);
    },
  };
}

/**
 * Embedded PostgreSQL (PGlite). It has a single connection: statements run one at a time, and a
 * transaction holds the connection until it ends. `dataDir` null means in memory (tests);
 * `loadDataDir`, a dump (PGlite's dumpDataDir) to start a new data directory from.
 */
export async function openPglite(dataDir: string | null, loadDataDir?: Blob): Promise<Database> {
  return wrapPglite(await PGlite.create(dataDir ?? undefined, loadDataDir ? { loadDataDir } : undefined));
}

/** Adapts an open PGlite instance (tests load them from a template). */
export function wrapPglite(pg: PGlite): Database {
  const base = wrap(pg);
  return {
    kind: 'pglite',
    query: base.query,
    exec: base.exec,
    transaction: (fn) => pg.transaction((tx) => fn(wrap(tx))),
    withSession: (fn) => fn(base),
    async listen(channel, onMessage) {
      const unsub = await pg.listen(channel, onMessage);
      return async () => {
        await unsub();
      };
    },
    async notify(channel, payload) {
      await pg.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    // One in-process connection: it cannot drop, so there is nothing to reconnect.
    onReconnect: () => () => {},
    connectionState: () =>
      pg.closed
        ? { ok: false, reason: 'the embedded database is closed', since: null, listener: 'idle' }
        : { ok: true, reason: null, since: null, listener: 'connected' },
    async close() {
      if (!pg.closed) await pg.close();
    },
  };
}
