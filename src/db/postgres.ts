import { createHash } from 'node:crypto';
import pg from 'pg';
import type { ConnectionState, Database, Queryable, QueryResult, Row } from './database.ts';
import { describeDbError, isTransientDbError } from './transient.ts';

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

function wrap(client: pg.Pool | pg.PoolClient | pg.Client, observe: <T>(p: Promise<T>) => Promise<T>): Queryable {
  return {
    async query<T = Row>(sql: string, params: unknown[] = []): Promise<QueryResult<T>> {
      const r = await observe(client.query({ name: statementName(sql), text: sql, values: params as any[] }));
      return { rows: r.rows as T[], rowCount: r.rowCount ?? r.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await observe(client.query(sql));
    },
  };
}

export interface PostgresOptions {
  poolSize?: number;
  onError?: (err: Error) => void;
  /** First and longest wait between attempts to re-establish the LISTEN connection. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/**
 * PostgreSQL through a node-postgres pool, built to survive the database going away (a restart,
 * a failover): no connection error may end the process or silence it.
 * - Every connection has an 'error' listener: idle ones in the pool (pool 'error'), checked-out
 *   ones in transaction()/withSession() (node-postgres leaves those without one, and an
 *   administrator's disconnect, 57P01, would otherwise be an unhandled 'error' event), and the
 *   LISTEN connection. A client that failed is destroyed, not returned to the pool.
 * - LISTEN uses one dedicated connection. When it drops, it is re-established with exponential
 *   backoff (with jitter) until it succeeds, every channel is LISTENed again, and the onReconnect
 *   hooks run so listeners catch up on the notifications that were lost meanwhile.
 * - connectionState() says whether the database answers and why not (for /health and /ready).
 */
export async function openPostgres(url: string, opts: PostgresOptions = {}): Promise<Database> {
  const onError = opts.onError ?? (() => {});
  const minMs = opts.reconnectMinMs ?? 100;
  // At most 1 s between attempts: wake-ups and live events are back within about a second of the database.
  const maxMs = opts.reconnectMaxMs ?? 1_000;
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, connectionTimeoutMillis: 10_000, keepAlive: true });

  // The connection state: failed on a connection error, healthy again on the next success.
  let down: { reason: string; since: number } | null = null;
  const failed = (err: unknown) => {
    if (!isTransientDbError(err)) return;
    if (!down) down = { reason: describeDbError(err), since: Date.now() };
    else down.reason = describeDbError(err);
  };
  const succeeded = () => {
    down = null;
  };
  const observe = <T>(p: Promise<T>): Promise<T> =>
    p.then(
      (v) => (succeeded(), v),
      (err) => {
        failed(err);
        throw err;
      },
    );
  const clientError = (err: Error) => {
    failed(err);
    onError(err);
  };
  pool.on('error', clientError); // idle clients

  const base = wrap(pool, observe);
  await pool.query('SELECT 1'); // fail fast with a clear connection error

  /** A client for one caller, with an error listener for as long as it is checked out. */
  async function checkout(): Promise<{ client: pg.PoolClient; release(err?: unknown): void }> {
    const client = await observe(pool.connect());
    let broken: Error | null = null;
    const onClientError = (err: Error) => {
      broken = err;
      clientError(err);
    };
    client.on('error', onClientError);
    return {
      client,
      release(err?: unknown) {
        client.off('error', onClientError);
        // A client that failed (or whose ROLLBACK failed) is destroyed instead of going back to the pool.
        const bad = broken ?? (err as Error | undefined);
        client.release(bad ? (bad instanceof Error ? bad : new Error(String(bad))) : undefined);
      },
    };
  }

  const handlers = new Map<string, Set<(payload: string) => void>>();
  const reconnectHooks = new Set<() => void>();
  let listener: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let failures = 0;
  let wasLost = false;
  let closed = false;

  function lost(client: pg.Client, err: Error | null): void {
    if (err) clientError(err);
    if (listener !== client) return;
    listener = null;
    wasLost = true;
    client.end().catch(() => {});
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (closed || retryTimer || connecting || handlers.size === 0) return;
    const exp = Math.min(maxMs, minMs * 2 ** Math.min(failures, 10));
    const wait = exp / 2 + Math.random() * (exp / 2);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      ensureListener().catch(() => {}); // a failure schedules the next attempt
    }, wait);
    retryTimer.unref();
  }

  async function connectListener(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url, keepAlive: true });
    client.on('notification', (msg) => {
      for (const h of handlers.get(msg.channel) ?? []) {
        try {
          h(msg.payload ?? '');
        } catch (err) {
          onError(err as Error);
        }
      }
    });
    client.on('error', (err) => lost(client, err));
    client.on('end', () => lost(client, null));
    try {
      await client.connect();
      for (const ch of handlers.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
    } catch (err) {
      client.removeAllListeners('end');
      client.on('error', () => {});
      client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  function ensureListener(): Promise<pg.Client> {
    if (listener) return Promise.resolve(listener);
    connecting ??= connectListener().then(
      (c) => {
        connecting = null;
        if (closed) {
          c.end().catch(() => {});
          throw new Error('database closed');
        }
        listener = c;
        failures = 0;
        succeeded();
        if (wasLost) {
          wasLost = false;
          for (const h of reconnectHooks) {
            try {
              h();
            } catch (err) {
              onError(err as Error);
            }
          }
        }
        return c;
      },
      (e) => {
        connecting = null;
        failures++;
        failed(e);
        wasLost = true;
        scheduleReconnect();
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
      const { client, release } = await checkout();
      const q = wrap(client, observe);
      let failure: unknown;
      try {
        await q.exec('BEGIN');
        const result = await fn(q);
        await q.exec('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e) => (failure = e));
        throw err;
      } finally {
        release(failure);
      }
    },
    async withSession(fn) {
      const { client, release } = await checkout();
      let failure: unknown;
      try {
        return await fn(wrap(client, observe));
      } catch (err) {
        // A session may hold session state (advisory locks): after a connection error, do not reuse it.
        if (isTransientDbError(err)) failure = err;
        throw err;
      } finally {
        release(failure);
      }
    },
    async listen(channel, onMessage) {
      let set = handlers.get(channel);
      const fresh = !set;
      if (!set) handlers.set(channel, (set = new Set()));
      set.add(onMessage);
      // While the database is away the subscription stands and the reconnect loop LISTENs on it later.
      const client = await ensureListener().catch(() => null);
      if (client && fresh && listener === client) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`).catch((err) => lost(client, err));
      }
      return async () => {
        set!.delete(onMessage);
        if (set!.size === 0 && handlers.get(channel) === set) {
          handlers.delete(channel);
          await listener?.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => {});
        }
      };
    },
    async notify(channel, payload) {
      await observe(pool.query('SELECT pg_notify($1, $2)', [channel, payload]));
    },
    onReconnect(fn) {
      reconnectHooks.add(fn);
      return () => void reconnectHooks.delete(fn);
    },
    connectionState(): ConnectionState {
      const listenerState = handlers.size === 0 ? 'idle' : listener ? 'connected' : 'reconnecting';
      if (down) return { ok: false, reason: down.reason, since: down.since, listener: listenerState };
      return { ok: true, reason: null, since: null, listener: listenerState };
    },
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      const l = listener;
      listener = null;
      if (l) {
        l.removeAllListeners('end');
        await l.end().catch(() => {});
      }
      await connecting?.catch(() => {});
      await pool.end();
    },
  };
}
