import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Database, Queryable, QueryResult, Row } from './database.ts';

// int8 (bigint) comes back as a JS number: our counters and byte sizes stay below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

/**
 * Every parameterised statement is sent as a named prepared statement: PostgreSQL parses and plans
 * it once per connection instead of on every call (the queue's statements are long CTEs that run
 * thousands of times a minute). Names come from the SQL text, so the set is bounded by the code.
 */
const statementNames = new Map<string, string>();
function statementName(sql: string): string {
  let n = statementNames.get(sql);
  if (!n) {
    n = 'v_' + createHash('sha1').update(sql).digest('hex').slice(0, 20);
    statementNames.set(sql, n);
  }
  return n;
}

function wrap(client: pg.Pool | pg.PoolClient | pg.Client): Queryable {
  return {
    async query<T = Row>(sql: string, params: unknown[] = []): Promise<QueryResult<T>> {
      const r = await client.query({ name: statementName(sql), text: sql, values: params as any[] });
      return { rows: r.rows as T[], rowCount: r.rowCount ?? r.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

export interface PostgresOptions {
  poolSize?: number;
  onError?: (err: Error) => void;
}

/**
 * PostgreSQL through a node-postgres pool. LISTEN uses one extra dedicated connection that is
 * re-established (and every channel re-subscribed) if it drops, so a database restart does not
 * silently stop wake-ups; the queue also polls, so a missed NOTIFY only costs latency.
 */
export async function openPostgres(url: string, opts: PostgresOptions = {}): Promise<Database> {
  const onError = opts.onError ?? (() => {});
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, connectionTimeoutMillis: 10_000 });
  pool.on('error', onError); // idle client errors must not crash the process
  const base = wrap(pool);
  await pool.query('SELECT 1'); // fail fast with a clear connection error

  const handlers = new Map<string, Set<(payload: string) => void>>();
  let listener: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  let closed = false;

  async function connectListener(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url });
    client.on('notification', (msg) => {
      for (const h of handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
    });
    client.on('error', (err) => {
      onError(err);
      if (listener === client) listener = null;
      client.end().catch(() => {});
      if (!closed && handlers.size) setTimeout(() => void ensureListener().catch(onError), 500);
    });
    await client.connect();
    for (const ch of handlers.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
    return client;
  }

  async function ensureListener(): Promise<pg.Client> {
    if (listener) return listener;
    connecting ??= connectListener().then(
      (c) => ((listener = c), (connecting = null), c),
      (e) => {
        connecting = null;
        throw e;
      },
    );
    return connecting;
  }

  return {
    kind: 'postgres',
    query: base.query,
    exec: base.exec,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async withSession(fn) {
      const client = await pool.connect();
      try {
        return await fn(wrap(client));
      } finally {
        client.release();
      }
    },
    async listen(channel, onMessage) {
      let set = handlers.get(channel);
      const fresh = !set;
      if (!set) handlers.set(channel, (set = new Set()));
      set.add(onMessage);
      const client = await ensureListener();
      if (fresh && listener === client) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      return async () => {
        set!.delete(onMessage);
        if (set!.size === 0) {
          handlers.delete(channel);
          await listener?.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => {});
        }
      };
    },
    async notify(channel, payload) {
      await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    async close() {
      closed = true;
      const l = listener;
      listener = null;
      await l?.end().catch(() => {});
      await pool.end();
    },
  };
}
