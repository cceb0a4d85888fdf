/**
 * The database step: one SQL statement or stored procedure call on PostgreSQL (node-postgres) or
 * MySQL/MariaDB (mysql2), through a pool per connection string that lives until shutdown.
 *
 * - Parameters are always sent separately from the SQL (PostgreSQL extended protocol with `$1`,
 *   MySQL prepared statements with `?`); objects and arrays are sent as JSON text.
 * - Rows are streamed: at most `row_limit` are kept; a result with more rows fails the step
 *   (db_row_limit_exceeded) after the server has finished the statement.
 * - The timeout cancels the statement on the server (PostgreSQL CancelRequest, MySQL `KILL QUERY`);
 *   a connection that does not answer the cancel within a grace period is destroyed.
 *
 * Output: `{ rows, row_count, fields: [{name, type}], affected_rows, command, duration_ms }`.
 * Failure codes: db_connection_not_found, db_invalid_config, db_connection_failed, db_auth_failed,
 * db_query_failed, db_timeout, db_row_limit_exceeded, db_procedure_not_found, aborted.
 */
import { EgressSocket, egressConnect, egressDeniedIn } from '../../egress/index.ts';
import { connect as netConnect } from 'node:net';
import pg from 'pg';
import mysql from 'mysql2';
import type { StepExecute, StepRunContext } from '../executor.ts';
import type { DatabaseStepConfig, DatabaseType } from './definition.ts';
import { StepError } from '../../engine/step-error.ts';
import { onShutdown } from '../shutdown.ts';

/** After a cancel is sent, how long the statement may take to stop before its connection is destroyed. */
const CANCEL_GRACE_MS = 5_000;
/** Connection attempts give up after this long (or the step's timeout, if shorter). */
const CONNECT_TIMEOUT_MS = 10_000;
/** Idle pooled connections are closed after this long. */
const IDLE_TIMEOUT_MS = 30_000;
/** Distinct connection strings with a pool; beyond it the least recently used idle pool is closed. */
const MAX_POOLS = 64;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DatabaseStepOutput {
  rows: Record<string, unknown>[];
  row_count: number;
  fields: { name: string; type: string }[];
  /** Rows inserted, updated or deleted by a DML statement; null for other statements. */
  affected_rows: number | null;
  command: string | null;
  duration_ms: number;
  /** What the step connected with, from the config before secret substitution: a named connection's
   * name, or the connection string with its password (and any secret) shown as `***`. */
  connection: string;
}

interface RunRequest {
  sql: string;
  params: unknown[];
  rowLimit: number;
  timeoutMs: number;
  signal: AbortSignal;
}

interface RawResult {
  rows: Record<string, unknown>[];
  total: number;
  fields: { name: string; type: string }[];
  affected: number | null;
  command: string | null;
}

export const execute: StepExecute<DatabaseStepConfig> = async (config, ctx) => {
  const started = performance.now();
  const type = config.database_type;
  const url = connectionString(config, ctx);
  const timeoutMs = effectiveTimeoutMs(config, ctx);
  const params = (config.parameters ?? []).map(toParam);
  const pool = getPool(type, url, ctx.services.config?.stepDbPoolSize ?? 5);
  const req: RunRequest = { sql: '', params, rowLimit: config.row_limit ?? 10_000, timeoutMs, signal: ctx.signal };
  pool.active++;
  try {
    if (config.query_type === 'stored_procedure') {
      const name = procedureName(config.query.trim(), type);
      req.sql =
        type === 'postgresql' ? await pgProcedureSql(pool as PgPool, name, params.length, req) : `CALL ${name.sql}(${params.map(() => '?').join(', ')})`;
    } else {
      req.sql = config.query;
    }
    const r = type === 'postgresql' ? await runPg(pool as PgPool, req) : await runMysql(pool as MyPool, req);
    if (r.total > req.rowLimit) {
      throw new StepError(
        'db_row_limit_exceeded',
        `the query returned ${r.total} rows, more than row_limit (${req.rowLimit}); add a LIMIT or raise row_limit`,
        { retryable: false, details: { row_count: r.total, row_limit: req.rowLimit } },
      );
    }
    const output: DatabaseStepOutput = {
      connection: shownConnection(config, ctx),
      rows: r.rows,
      row_count: r.rows.length,
      fields: r.fields,
      affected_rows: r.affected,
      command: r.command,
      duration_ms: Math.round(performance.now() - started),
    };
    ctx.logger.debug({ type, host: pool.host, rows: output.row_count, duration_ms: output.duration_ms }, 'database step done');
    return output;
  } catch (err) {
    const e = toStepError(err, ctx, type, pool.host);
    ctx.logger.debug({ type, host: pool.host, code: e.code, duration_ms: Math.round(performance.now() - started) }, 'database step failed');
    throw e;
  } finally {
    pool.active--;
    pool.lastUsed = Date.now();
  }
};

/* ------------------------------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------------------------------- */

function invalid(message: string): StepError {
  return new StepError('db_invalid_config', message, { retryable: false });
}

/** The connection string: a named connection (a variable, normally secret) or the resolved template. */
function connectionString(config: DatabaseStepConfig, ctx: StepRunContext): string {
  let url: unknown;
  if (config.connection !== undefined) {
    url = ctx.services.variable(config.connection);
    if (url === undefined || url === null) {
      throw new StepError(
        'db_connection_not_found',
        `named connection '${config.connection}' is not defined: create a secret variable '${config.connection}' holding its connection URL`,
        { retryable: false },
      );
    }
    if (typeof url !== 'string' || url.trim() === '') {
      throw new StepError('db_connection_not_found', `named connection '${config.connection}' must be a variable holding a connection URL string`, {
        retryable: false,
      });
    }
  } else {
    url = config.connection_string;
    if (typeof url !== 'string' || url.trim() === '') throw invalid('connection_string resolved to an empty value');
  }
  const s = (url as string).trim();
  if (config.database_type === 'postgresql') {
    if (/^postgres(ql)?:\/\//i.test(s) || /^\w+\s*=/.test(s)) return s;
    throw invalid(`the connection string for postgresql must be a 'postgresql://…' URL or 'key=value' pairs (got scheme '${scheme(s)}')`);
  }
  if (/^(mysql|mariadb):\/\//i.test(s)) return s.replace(/^mariadb:/i, 'mysql:');
  throw invalid(`the connection string for mysql must be a 'mysql://…' URL (got scheme '${scheme(s)}')`);
}

/** The connection as recorded in the output: never the password, whatever form the string has. */
function shownConnection(config: DatabaseStepConfig, ctx: StepRunContext): string {
  if (config.connection !== undefined) return `named connection '${config.connection}'`;
  const shown = (ctx.shownConfig?.() as DatabaseStepConfig | undefined)?.connection_string ?? config.connection_string ?? '';
  const s = String(shown).trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    try {
      const u = new URL(s);
      if (u.password) u.password = '***';
      for (const k of [...u.searchParams.keys()]) if (/pass|secret|key|token/i.test(k)) u.searchParams.set(k, '***');
      return u.toString().replace(/%2A%2A%2A/g, '***');
    } catch {
      return s.replace(/:[^:@/]*@/, ':***@');
    }
  }
  return s.replace(/(password|sslpassword|sslkey)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/gi, '$1=***');
}

function scheme(s: string): string {
  return /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1] ?? '(none)';
}

/** config.timeout_seconds if set, else until the step deadline; never past the deadline. */
function effectiveTimeoutMs(config: DatabaseStepConfig, ctx: StepRunContext): number {
  const own = config.timeout_seconds !== undefined ? config.timeout_seconds * 1000 : Infinity;
  const left = Number.isFinite(ctx.deadline) ? Math.max(0, ctx.deadline - Date.now()) : Infinity;
  return Math.min(own, left, MAX_TIMER_MS);
}

/** Template values -> driver parameters: objects and arrays as JSON text, undefined as NULL. */
function toParam(v: unknown): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}

/** `proc`, `schema.proc`, `"Quoted".proc`, `` `db`.`proc` ``: checked again here, templates may have made it. */
const IDENT = /^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"|`(?:[^`]|``)+`)$/;

interface ProcName {
  /** Parts as the server stores them (unquoted names folded to lower case for PostgreSQL). */
  parts: string[];
  /** The name quoted for the SQL text. */
  sql: string;
}

function procedureName(raw: string, type: DatabaseType): ProcName {
  const parts: string[] = [];
  let i = 0;
  while (i < raw.length) {
    let j: number;
    if (raw[i] === '"' || raw[i] === '`') {
      const q = raw[i];
      j = i + 1;
      while (j < raw.length && !(raw[j] === q && raw[j + 1] !== q)) j += raw[j] === q ? 2 : 1;
      j++;
    } else {
      j = raw.indexOf('.', i);
      if (j < 0) j = raw.length;
    }
    parts.push(raw.slice(i, j));
    if (j < raw.length && raw[j] !== '.') parts.push(raw.slice(j)); // garbage after a quote: rejected below
    i = j + 1;
  }
  if (parts.length === 0 || parts.length > 3 || parts.some((p) => !IDENT.test(p))) {
    throw invalid(`'${raw.slice(0, 200)}' is not a procedure name: use 'name' or 'schema.name' (arguments go in 'parameters')`);
  }
  const unquote = (p: string) =>
    p[0] === '"' || p[0] === '`'
      ? p
          .slice(1, -1)
          .split(p[0] + p[0])
          .join(p[0])
      : p;
  const stored = parts.map((p) => (p[0] === '"' || p[0] === '`' ? unquote(p) : type === 'postgresql' ? p.toLowerCase() : p));
  const q = type === 'postgresql' ? '"' : '`';
  return { parts: stored, sql: stored.map((p) => q + p.split(q).join(q + q) + q).join('.') };
}

/* ------------------------------------------------------------------------------------------------
 * Pools
 * ---------------------------------------------------------------------------------------------- */

interface PoolBase {
  key: string;
  /** host:port for messages and logs (never the password). */
  host: string;
  active: number;
  lastUsed: number;
  end(): Promise<void>;
}
interface PgPool extends PoolBase {
  kind: 'postgresql';
  pool: pg.Pool;
  /** For cancel requests, which go to the server directly. */
  target: { host: string; port: number };
}
interface MyPool extends PoolBase {
  kind: 'mysql';
  pool: mysql.Pool;
  options: mysql.PoolOptions;
}

const pools = new Map<string, PgPool | MyPool>();
let unregister: (() => void) | null = null;

/** Closes every pool (also registered as a shutdown hook while any pool exists). */
export async function closeDatabasePools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  unregister?.();
  unregister = null;
  await Promise.all(all.map((p) => p.end().catch(() => {})));
}

/** Open pools, for tests and metrics. */
export function databasePoolCount(): number {
  return pools.size;
}

function getPool(type: DatabaseType, url: string, size: number): PgPool | MyPool {
  const key = `${type}\n${url}`;
  let p = pools.get(key);
  if (p) {
    pools.delete(key); // re-insert: the map's order is the recency order
    pools.set(key, p);
    p.lastUsed = Date.now();
    return p;
  }
  if (pools.size >= MAX_POOLS) {
    for (const [k, old] of pools) {
      if (old.active === 0) {
        pools.delete(k);
        void old.end().catch(() => {});
        break;
      }
    }
  }
  p = type === 'postgresql' ? createPgPool(key, url, size) : createMyPool(key, url, size);
  pools.set(key, p);
  unregister ??= onShutdown(closeDatabasePools);
  return p;
}

/** Values that JSON and the step output can carry: dates as ISO text, bytes as base64. */
function jsonValue(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? v.toString() : v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  return v;
}

function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(row)) row[k] = jsonValue(row[k]);
  return row;
}

/* ------------------------------------------------------------------------------------------------
 * PostgreSQL
 * ---------------------------------------------------------------------------------------------- */

// Type names of common OIDs, for `fields[].type`.
const PG_TYPES: Record<number, string> = {
  16: 'bool',
  17: 'bytea',
  18: 'char',
  19: 'name',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  25: 'text',
  26: 'oid',
  114: 'json',
  700: 'float4',
  701: 'float8',
  1042: 'bpchar',
  1043: 'varchar',
  1082: 'date',
  1083: 'time',
  1114: 'timestamp',
  1184: 'timestamptz',
  1186: 'interval',
  1266: 'timetz',
  1700: 'numeric',
  2950: 'uuid',
  3802: 'jsonb',
  1000: 'bool[]',
  1005: 'int2[]',
  1007: 'int4[]',
  1016: 'int8[]',
  1009: 'text[]',
  1015: 'varchar[]',
  1021: 'float4[]',
  1022: 'float8[]',
  1231: 'numeric[]',
  2951: 'uuid[]',
  2278: 'void',
  2249: 'record',
};

const pgText = (s: string) => s;
/** Dates and timestamps without time zone stay as the server's text (no local-time shift); int8 becomes
 * a number when it is exact, numeric stays text (no rounding of amounts). */
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 1082 || oid === 1114 || oid === 1083) return pgText;
    if (oid === 20) {
      return (s: string) => {
        const n = Number(s);
        return Number.isSafeInteger(n) ? n : s;
      };
    }
    return (pg.types.getTypeParser as any)(oid, format);
  },
};

/** libpq `key=value` strings -> node-postgres options (URLs are passed as they are). */
function pgOptions(conn: string): pg.PoolConfig {
  if (/^postgres(ql)?:\/\//i.test(conn)) return { connectionString: conn };
  const out: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/g;
  for (let m = re.exec(conn); m; m = re.exec(conn)) out[m[1]] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  const port = out.port ? Number(out.port) : undefined;
  return {
    host: out.host ?? out.hostaddr,
    port,
    user: out.user,
    password: out.password,
    database: out.dbname,
    ssl:
      out.sslmode && out.sslmode !== 'disable' && out.sslmode !== 'allow' && out.sslmode !== 'prefer'
        ? { rejectUnauthorized: out.sslmode === 'verify-full' || out.sslmode === 'verify-ca' }
        : undefined,
    application_name: out.application_name,
  };
}

function createPgPool(key: string, url: string, size: number): PgPool {
  const opts = pgOptions(url);
  const probe = new pg.Client(opts as pg.ClientConfig); // parses the URL the way the pool will
  const target = { host: probe.host || 'localhost', port: probe.port || 5432 };
  const pool = new pg.Pool({
    ...opts,
    // Every connection (the pool reconnects at any time) passes the egress policy; unix sockets are local.
    ...(target.host.startsWith('/') ? {} : { stream: () => new EgressSocket() }),
    max: size,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: opts.application_name ?? 'vecron',
    types: pgTypes as any,
    allowExitOnIdle: true,
  });
  pool.on('error', () => {}); // an idle client lost its connection: the pool drops it
  return {
    kind: 'postgresql',
    key,
    host: `${target.host}:${target.port}`,
    target,
    pool,
    active: 0,
    lastUsed: Date.now(),
    end: () => pool.end(),
  };
}

/** Sends a PostgreSQL CancelRequest for the backend `pid` (a connection of its own, as the protocol wants). */
function pgCancel(target: { host: string; port: number }, pid: number, secret: number): Promise<void> {
  return new Promise((resolve) => {
    const sock = target.host.startsWith('/') ? netConnect(`${target.host}/.s.PGSQL.${target.port}`) : egressConnect(target.host, target.port);
    const done = () => (sock.destroy(), resolve());
    sock.setTimeout(CANCEL_GRACE_MS, done);
    sock.on('error', done);
    sock.on('close', done);
    sock.on('connect', () => {
      const b = Buffer.alloc(16);
      b.writeInt32BE(16, 0);
      b.writeInt32BE(80877102, 4);
      b.writeInt32BE(pid, 8);
      b.writeInt32BE(secret | 0, 12);
      sock.end(b);
    });
  });
}

async function withTimeout<T>(
  req: RunRequest,
  acquire: () => Promise<{ run: () => Promise<T>; cancel: () => Promise<void>; release: (destroy: boolean) => void }>,
): Promise<T> {
  const conn = await acquireWithin(acquire, req);
  let fired: 'timeout' | 'abort' | null = null;
  let killer: NodeJS.Timeout | null = null;
  let gaveUp: ((e: unknown) => void) | null = null;
  const giveUp = new Promise<never>((_, reject) => (gaveUp = reject));
  giveUp.catch(() => {});
  const stop = (why: 'timeout' | 'abort') => {
    if (fired) return;
    fired = why;
    void conn.cancel().catch(() => {});
    killer = setTimeout(() => gaveUp!(new Error('the server did not stop the statement after a cancel request')), CANCEL_GRACE_MS);
  };
  const timer = setTimeout(() => stop('timeout'), req.timeoutMs);
  const onAbort = () => stop('abort');
  req.signal.addEventListener('abort', onAbort, { once: true });
  let destroy = false;
  try {
    const result = await Promise.race([conn.run(), giveUp]);
    if (fired) throw fired; // it finished anyway (e.g. MySQL SLEEP() returns 1 when killed)
    return result;
  } catch (err) {
    if (fired) {
      destroy = !!killer && (err as Error)?.message?.startsWith('the server did not stop');
      if (fired === 'abort') throw abortError(req.signal, err);
      throw new StepError('db_timeout', `the statement was cancelled on the server after ${fmtSeconds(req.timeoutMs)}s (timeout)`, {
        retryable: true,
        details: { timeout_seconds: req.timeoutMs / 1000, cancel: destroy ? 'no answer, connection closed' : 'cancelled' },
      });
    }
    destroy = isConnectionError(err);
    throw err;
  } finally {
    clearTimeout(timer);
    if (killer) clearTimeout(killer);
    req.signal.removeEventListener('abort', onAbort);
    conn.release(destroy);
  }
}

async function acquireWithin<T>(acquire: () => Promise<T>, req: RunRequest): Promise<T> {
  if (req.signal.aborted) throw abortError(req.signal, null);
  let t: NodeJS.Timeout | undefined;
  const p = acquire();
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(
          () => reject(new StepError('db_timeout', `no connection within the step's timeout of ${fmtSeconds(req.timeoutMs)}s`, { retryable: true })),
          req.timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    // A connection that arrives late goes back to the pool.
    p.then(
      (c: any) => c?.release?.(false),
      () => {},
    );
    throw err;
  } finally {
    clearTimeout(t);
  }
}

function fmtSeconds(ms: number): number {
  return +(ms / 1000).toFixed(3);
}

function runPg(p: PgPool, req: RunRequest): Promise<RawResult> {
  return withTimeout(req, async () => {
    const client = await p.pool.connect();
    const c = client as unknown as { processID: number; secretKey: number };
    return {
      release: (destroy) => client.release(destroy ? new Error('cancelled statement did not stop') : undefined),
      cancel: () => pgCancel(p.target, c.processID, c.secretKey),
      run: () =>
        new Promise<RawResult>((resolve, reject) => {
          const rows: Record<string, unknown>[] = [];
          let total = 0;
          const q = new pg.Query({ text: req.sql, values: req.params as any[] });
          q.on('row', (row: Record<string, unknown>) => {
            if (++total <= req.rowLimit) rows.push(jsonRow(row));
          });
          q.on('error', reject);
          q.on('end', (r: pg.QueryResult) => {
            const command = r?.command ?? null;
            const dml = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
            resolve({
              rows,
              total,
              fields: (r?.fields ?? []).map((f) => ({ name: f.name, type: PG_TYPES[f.dataTypeID] ?? `oid:${f.dataTypeID}` })),
              affected: dml ? (r.rowCount ?? 0) : null,
              command,
            });
          });
          client.query(q as any);
        }),
    };
  });
}

/** PostgreSQL: a procedure is run with CALL, a function with SELECT * FROM; the catalogue says which. */
async function pgProcedureSql(p: PgPool, name: ProcName, nParams: number, req: RunRequest): Promise<string> {
  const [schema, proc] = name.parts.length === 1 ? [null, name.parts[0]] : name.parts.slice(-2);
  const r = await runPg(p, {
    ...req,
    rowLimit: 10,
    sql: `SELECT DISTINCT p.prokind::text AS kind FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE p.proname = $1 AND (($2::text IS NULL AND pg_catalog.pg_function_is_visible(p.oid)) OR n.nspname = $2::text)`,
    params: [proc, schema],
  });
  const kinds = r.rows.map((x) => x.kind);
  const args = Array.from({ length: nParams }, (_, i) => `$${i + 1}`).join(', ');
  if (kinds.includes('p')) return `CALL ${name.sql}(${args})`;
  if (kinds.includes('f')) return `SELECT * FROM ${name.sql}(${args})`;
  throw new StepError('db_procedure_not_found', `no procedure or function '${name.parts.join('.')}' is visible to this connection`, { retryable: false });
}

/* ------------------------------------------------------------------------------------------------
 * MySQL / MariaDB
 * ---------------------------------------------------------------------------------------------- */

const MYSQL_TYPES: Record<number, string> = Object.fromEntries(
  Object.entries((mysql as any).Types ?? {}).map(([name, id]) => [id as number, name.toLowerCase()]),
);

function createMyPool(key: string, url: string, size: number): MyPool {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid('the mysql connection string is not a valid URL');
  }
  const host = u.hostname || 'localhost';
  const port = Number(u.port) || 3306;
  const options: mysql.PoolOptions = {
    uri: url,
    // Every connection passes the egress policy (see src/egress).
    stream: () => {
      const sock = egressConnect(host, port);
      sock.setNoDelay(true);
      sock.once('connect', () => sock.setKeepAlive(true));
      return sock;
    },
    connectionLimit: size,
    maxIdle: size,
    idleTimeout: IDLE_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    waitForConnections: true,
    supportBigNumbers: true, // BIGINT beyond 2^53 as text
    decimalNumbers: false, // DECIMAL as text: no rounding of amounts
    dateStrings: true, // DATE/DATETIME as the server's text: no local-time shift
    multipleStatements: false,
    enableKeepAlive: true,
  };
  const pool = mysql.createPool(options);
  pool.on('error' as any, () => {});
  return {
    kind: 'mysql',
    key,
    host: `${u.hostname}:${u.port || 3306}`,
    pool,
    options,
    active: 0,
    lastUsed: Date.now(),
    end: () => new Promise<void>((resolve) => pool.end(() => resolve())),
  };
}

/** `KILL QUERY` from a connection of its own (the pool may be exhausted). */
function myKill(p: MyPool, threadId: number): Promise<void> {
  return new Promise((resolve) => {
    const c = mysql.createConnection({ uri: p.options.uri, stream: p.options.stream, connectTimeout: CANCEL_GRACE_MS });
    c.on('error', () => {});
    c.query('KILL QUERY ?', [threadId], () => c.end(() => resolve()));
  });
}

function runMysql(p: MyPool, req: RunRequest): Promise<RawResult> {
  return withTimeout(req, async () => {
    const conn = await new Promise<mysql.PoolConnection>((resolve, reject) => p.pool.getConnection((err, c) => (err ? reject(err) : resolve(c))));
    return {
      release: (destroy) => (destroy ? conn.destroy() : conn.release()),
      cancel: () => myKill(p, conn.threadId),
      run: () =>
        new Promise<RawResult>((resolve, reject) => {
          const rows: Record<string, unknown>[] = [];
          let total = 0;
          let fields: { name: string; type: string }[] = [];
          let firstSet: number | null = null;
          let affected: number | null = null;
          let failed = false;
          const cmd = conn.execute({ sql: req.sql, values: req.params as any[] }) as any;
          cmd.on('fields', (f: any[] | undefined, index: number) => {
            if (f && firstSet === null) {
              firstSet = index ?? 0;
              fields = f.map((x) => ({ name: x.name, type: MYSQL_TYPES[x.columnType] ?? `type:${x.columnType}` }));
            }
          });
          cmd.on('result', (row: any, index: number) => {
            if (row && row.constructor?.name === 'ResultSetHeader') {
              if (affected === null && firstSet === null) affected = row.affectedRows;
              return;
            }
            if ((index ?? 0) !== firstSet) return; // a CALL's later result sets
            if (++total <= req.rowLimit) rows.push(jsonRow(row));
          });
          cmd.on('error', (e: unknown) => ((failed = true), reject(e)));
          cmd.on('end', () => {
            if (failed) return;
            const verb = /^\s*(\w+)/.exec(req.sql)?.[1]?.toUpperCase() ?? null;
            resolve({ rows, total, fields, affected: firstSet === null ? affected : null, command: verb });
          });
        }),
    };
  });
}

/* ------------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------------- */

const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    (typeof e?.code === 'string' && (NET_CODES.has(e.code) || e.code.startsWith('08'))) ||
    /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(e?.message ?? '')
  );
}

function abortError(signal: AbortSignal, cause: unknown): StepError {
  const reason = signal.reason;
  if (reason instanceof StepError) return reason;
  const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : '';
  return new StepError('aborted', `the database statement was cancelled${why}`, { retryable: true, cause });
}

function toStepError(err: unknown, ctx: StepRunContext, type: DatabaseType, host: string): StepError {
  if (err instanceof StepError) return err;
  const denied = egressDeniedIn(err);
  if (denied) return denied;
  if (ctx.signal.aborted) return abortError(ctx.signal, err);
  const e = err as { code?: string; errno?: number; sqlState?: string; message?: string; position?: string; detail?: string; hint?: string };
  const msg = (e?.message ?? String(err)).slice(0, 1000);
  const sqlstate = type === 'postgresql' ? (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined) : e?.sqlState;
  const errno = type === 'mysql' ? e?.errno : undefined;

  // Network and connection set-up.
  if (isConnectionError(err) && !(sqlstate && !sqlstate.startsWith('08'))) {
    return new StepError('db_connection_failed', `cannot connect to ${type} at ${host}: ${msg}`, {
      retryable: true,
      cause: err,
      details: { host, cause: e?.code },
    });
  }
  // Authentication.
  if (sqlstate === '28P01' || sqlstate === '28000' || errno === 1045 || errno === 1044 || errno === 1698) {
    return new StepError('db_auth_failed', `${type} at ${host} refused the credentials: ${msg}`, {
      retryable: false,
      cause: err,
      details: { host, sqlstate, errno },
    });
  }
  // Unknown database: retrying will not create it.
  if (sqlstate === '3D000' || errno === 1049) {
    return new StepError('db_connection_failed', `${type} at ${host}: ${msg}`, { retryable: false, cause: err, details: { host, sqlstate, errno } });
  }
  // Server busy or restarting.
  if (sqlstate === '53300' || sqlstate === '57P01' || sqlstate === '57P03' || errno === 1040 || errno === 1053) {
    return new StepError('db_connection_failed', `${type} at ${host} is not accepting work: ${msg}`, {
      retryable: true,
      cause: err,
      details: { host, sqlstate, errno },
    });
  }
  // A server-side time limit set by the DBA (statement_timeout, max_statement_time, max_execution_time).
  if (sqlstate === '57014' || errno === 1969 || errno === 3024) {
    return new StepError('db_timeout', `${type} at ${host} stopped the statement: ${msg}`, { retryable: true, cause: err, details: { sqlstate, errno } });
  }
  // Everything else is the statement's fault; deadlocks and serialization failures may pass on a retry.
  const transient = sqlstate === '40001' || sqlstate === '40P01' || sqlstate === '55P03' || errno === 1213 || errno === 1205;
  const details: Record<string, unknown> = {};
  if (sqlstate) details.sqlstate = sqlstate;
  if (errno) details.errno = errno;
  if (e?.position) details.position = Number(e.position);
  if (e?.detail) details.detail = e.detail;
  if (e?.hint) details.hint = e.hint;
  return new StepError('db_query_failed', `${type} query failed: ${msg}`, { retryable: transient, cause: err, details });
}
