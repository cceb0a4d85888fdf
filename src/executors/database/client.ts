/**
 * The SQL client shared by the database step and the WASM `db_query` host function: one pool per
 * connection string (PostgreSQL through node-postgres, MySQL/MariaDB through mysql2) that lives
 * until shutdown, and one way to run a statement on it.
 *
 * - Parameters are always sent separately from the SQL (PostgreSQL extended protocol with `$1`,
 *   MySQL prepared statements with `?`).
 * - Rows are streamed: at most `rowLimit` are kept (and at most `maxBytes` of their JSON), the rest
 *   only counted, so a caller can refuse a result that is too large without holding it.
 * - The timeout and the abort signal cancel the statement on the server (PostgreSQL CancelRequest,
 *   MySQL `KILL QUERY`); a connection that does not answer the cancel within a grace period is destroyed.
 * - `readOnly` runs the statement inside a READ ONLY transaction that is rolled back: the server
 *   itself refuses any write (a function called by a SELECT included). On PostgreSQL the BEGIN, the
 *   statement and the ROLLBACK go in one round trip and one Sync (PgReadOnlyBatch).
 * - Every connection, cancel connections included, passes the egress policy.
 */
import { EgressSocket, egressConnect } from '../../egress/index.ts';
import { connect as netConnect } from 'node:net';
import pg from 'pg';
import pgUtils from 'pg/lib/utils.js';
import { serialize } from 'pg-protocol';
import PgResult from 'pg/lib/result.js';
import mysql from 'mysql2';
import { StepError } from '../../engine/step-error.ts';
import { onShutdown } from '../shutdown.ts';

export type DatabaseKind = 'postgresql' | 'mysql';

/** After a cancel is sent, how long the statement may take to stop before its connection is destroyed. */
const CANCEL_GRACE_MS = 5_000;
/** Connection attempts give up after this long (or the step's timeout, if shorter). */
const CONNECT_TIMEOUT_MS = 10_000;
/** Idle pooled connections are closed after this long. */
const IDLE_TIMEOUT_MS = 30_000;
/** Distinct connection strings with a pool; beyond it the least recently used idle pool is closed. */
const MAX_POOLS = 64;
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RunRequest {
  sql: string;
  params: unknown[];
  /** Rows kept; more are counted in `total` but not kept. */
  rowLimit: number;
  /** Bytes of kept rows' JSON; beyond it no more rows are kept and `overBytes` is set. */
  maxBytes?: number;
  timeoutMs: number;
  signal: AbortSignal;
  /** Run inside `BEGIN READ ONLY ... ROLLBACK` (START TRANSACTION READ ONLY on MySQL). */
  readOnly?: boolean;
}

export interface RawResult {
  rows: Record<string, unknown>[];
  total: number;
  /** Bytes of the kept rows as JSON. */
  bytes: number;
  overBytes: boolean;
  fields: { name: string; type: string }[];
  affected: number | null;
  command: string | null;
}

/** A connection string's pool: `runStatement` on it. */
export type DatabasePool = PgPool | MyPool;

function invalid(message: string): StepError {
  return new StepError('db_invalid_config', message, { retryable: false });
}

/* ------------------------------------------------------------------------------------------------
 * Pools
 * ---------------------------------------------------------------------------------------------- */

export interface PoolBase {
  key: string;
  /** host:port for messages and logs (never the password). */
  host: string;
  active: number;
  lastUsed: number;
  end(): Promise<void>;
}
export interface PgPool extends PoolBase {
  kind: 'postgresql';
  pool: pg.Pool;
  /** For cancel requests, which go to the server directly. */
  target: { host: string; port: number };
  /** Whether reads may use named statements (off for good once the server refused one: a pooler). */
  named: boolean;
}
export interface MyPool extends PoolBase {
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

/** The pool of a connection string (created on first use; the least recently used idle pool goes past MAX_POOLS). */
export function getPool(type: DatabaseKind, url: string, size: number): DatabasePool {
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

export function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
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

/**
 * A node-postgres client that keeps what the server reported at startup of the application name
 * (ParameterStatus). A server that echoes the name it was sent keeps the startup parameters of
 * each connection, i.e. a session of its own; PGlite's wire server (one backend shared by every
 * connection) reports an empty one. Reads use named statements only on a session of its own.
 */
class ReportingClient extends pg.Client {
  reportedAppName: string | undefined = undefined;
  constructor(config?: pg.ClientConfig) {
    super(config);
    (this as unknown as { connection: NodeJS.EventEmitter }).connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
      if (m.parameterName === 'application_name') this.reportedAppName = m.parameterValue;
    });
  }
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
    Client: ReportingClient as unknown as typeof pg.Client,
  });
  pool.on('error', () => {}); // an idle client lost its connection: the pool drops it
  return {
    kind: 'postgresql',
    key,
    host: `${target.host}:${target.port}`,
    target,
    pool,
    named: true,
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

/** A pooled connection while one statement runs on it. */
interface Leased<T> {
  run: () => Promise<T>;
  cancel: () => Promise<void>;
  release: (destroy: boolean) => void;
}

/**
 * Runs a statement on a connection from `acquire` within `req.timeoutMs` (waiting for the
 * connection included: one deadline for the whole call) and until `req.signal` aborts. Before a
 * connection came, a timeout or an abort ends the wait (a connection that arrives later goes back
 * to the pool); once it runs, the statement is cancelled on the server and given CANCEL_GRACE_MS to
 * stop before its connection is destroyed. One timer, one listener and no Promise.race per
 * statement: this is the path of every db_query call.
 */
function withTimeout<T>(req: RunRequest, acquire: () => Promise<Leased<T>>): Promise<T> {
  if (req.signal.aborted) return Promise.reject(abortError(req.signal, null));
  return new Promise<T>((resolve, reject) => {
    let conn: Leased<T> | null = null;
    let fired: 'timeout' | 'abort' | null = null;
    let settled = false;
    let killer: NodeJS.Timeout | null = null;
    const settle = (destroy: boolean, failed: boolean, outcome: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      req.signal.removeEventListener('abort', onAbort);
      conn?.release(destroy);
      if (failed) reject(outcome);
      else resolve(outcome as T);
    };
    const stoppedError = (cause: unknown, closed: boolean): StepError =>
      fired === 'abort'
        ? abortError(req.signal, cause)
        : new StepError('db_timeout', `the statement was cancelled on the server after ${fmtSeconds(req.timeoutMs)}s (timeout)`, {
            retryable: true,
            details: { timeout_seconds: req.timeoutMs / 1000, cancel: closed ? 'no answer, connection closed' : 'cancelled' },
          });
    const stop = (why: 'timeout' | 'abort') => {
      if (fired || settled) return;
      fired = why;
      if (conn === null) {
        settle(
          false,
          true,
          why === 'abort'
            ? abortError(req.signal, null)
            : new StepError('db_timeout', `no connection within the step's timeout of ${fmtSeconds(req.timeoutMs)}s`, { retryable: true }),
        );
        return;
      }
      void conn.cancel().catch(() => {});
      killer = setTimeout(
        () => settle(true, true, stoppedError(new Error('the server did not stop the statement after a cancel request'), true)),
        CANCEL_GRACE_MS,
      );
    };
    const timer = setTimeout(stop, req.timeoutMs, 'timeout');
    const onAbort = () => stop('abort');
    req.signal.addEventListener('abort', onAbort, { once: true });
    acquire().then(
      (c) => {
        if (settled) return c.release(false); // came after the deadline or the abort: back to the pool
        conn = c;
        c.run().then(
          // A statement that finished after its cancel (MySQL SLEEP() returns 1 when killed) still counts as stopped.
          (value) => (fired ? settle(false, true, stoppedError(null, false)) : settle(false, false, value)),
          (err) => (fired ? settle(false, true, stoppedError(err, false)) : settle(isConnectionError(err), true, err)),
        );
      },
      (err) => settle(false, true, err),
    );
  });
}

function fmtSeconds(ms: number): number {
  return +(ms / 1000).toFixed(3);
}

export function runPg(p: PgPool, req: RunRequest): Promise<RawResult> {
  return withTimeout(req, async () => {
    const client = await p.pool.connect();
    const c = client as unknown as { processID: number; secretKey: number; _txStatus?: string | null };
    // A read that did not end with the connection out of any transaction: the connection is not reused.
    let dirty = false;
    return {
      release: (destroy) =>
        client.release(destroy || dirty ? new Error(destroy ? 'cancelled statement did not stop' : 'connection left inside a transaction') : undefined),
      cancel: () => pgCancel(p.target, c.processID, c.secretKey),
      run: async () => {
        if (!req.readOnly) {
          const s = pgStatement(req);
          client.query(s.query as any);
          return await s.result;
        }
        const names = p.named ? statementNames(client, req.sql) : null;
        try {
          return await readBatch(client, req, names);
        } catch (err) {
          if (names === null || !NAMED_REFUSED.has((err as { code?: string })?.code as string)) throw err;
          // The server lost or refused the named statement (a pooler that moves sessions, or a
          // schema change under a kept plan): the statement did not run; sent once more unnamed.
          if ((err as { code?: string }).code !== '0A000') p.named = false;
          return await readBatch(client, req, null);
        } finally {
          if (c._txStatus !== 'I') dirty = true;
        }
      },
    };
  });
}

/**
 * A read in one batch (PgReadOnlyBatch), named statements when `names` are given; its result once
 * the batch's ReadyForQuery came (its ROLLBACK done). A failure makes the server skip the rest of
 * the batch, its ROLLBACK included: the transaction (if BEGIN ran) is then rolled back here, before
 * the connection serves anything else (a ROLLBACK outside a transaction is only a warning).
 */
async function readBatch(client: pg.PoolClient, req: RunRequest, names: BatchNames | null): Promise<RawResult> {
  try {
    return await new Promise<RawResult>((resolve, reject) => {
      client.query(new PgReadOnlyBatch(req, names, (err, r) => (err === null ? resolve(r as RawResult) : reject(err))) as any);
    });
  } catch (err) {
    names?.failed();
    // Queued behind the batch: sent at its ReadyForQuery. A connection that cannot run it is not
    // reused (runPg checks the transaction status once the read is over).
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Server errors that mean a named statement is gone or unusable: 26000 (no such statement), 42P05 (the name is taken), 0A000 (cached plan must not change result type). */
const NAMED_REFUSED = new Set(['26000', '42P05', '0A000']);

/** Named statements per connection (a read's text is parsed once per connection, not on every call); past it, unnamed. */
const MAX_NAMED_PER_CONNECTION = 64;

interface BatchNames {
  /** Whether BEGIN TRANSACTION READ ONLY and ROLLBACK were parsed on this connection already. */
  beginParsed: boolean;
  /** The read's statement name. */
  statement: string;
  /** This connection's constant messages (ConnectionWire). */
  wire: ConnectionWire;
  /** The statement's columns, once a read of it described them on this connection. */
  described: DescribedStatement | null;
  /** The read failed: its name is not used again (the server may or may not hold it). */
  failed(): void;
  /** The batch sent its Parse messages. */
  sent(): void;
  /** A read of it succeeded with these columns: later reads skip the Describe. */
  describedAs(d: DescribedStatement): void;
}

/**
 * A named statement's columns as its last read was told them: the row parsers (node-postgres's
 * Result, used only to parse rows: parseRow reads it and changes nothing) and the columns as a
 * result shows them. Every read still asks the server (Describe): the parsers are reused only when
 * its RowDescription is the same (a renamed column, say, makes new ones).
 */
interface DescribedStatement {
  fields: readonly { name: string; dataTypeID: number; format?: string }[];
  parser: PgResult;
  columns: { name: string; type: string }[];
}

function sameFields(a: DescribedStatement['fields'], b: DescribedStatement['fields']): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].name !== b[i].name || a[i].dataTypeID !== b[i].dataTypeID || a[i].format !== b[i].format) return false;
  return true;
}

interface NamedStatement {
  name: string;
  described: DescribedStatement | null;
}

/** A connection's constant parts of a read batch, serialized once. */
interface ConnectionWire {
  /** Parse of its ROLLBACK and BEGIN TRANSACTION READ ONLY statements (once per connection). */
  parseBoth: Buffer;
  /** Bind + Execute of its BEGIN. */
  begin: Buffer;
  /** Bind + Execute of its ROLLBACK, and the batch's Sync. */
  rollbackSync: Buffer;
}

function connectionWire(prefix: string): ConnectionWire {
  const begin = `${prefix}begin`;
  const rollback = `${prefix}rollback`;
  return {
    parseBoth: Buffer.concat([
      serialize.parse({ text: 'ROLLBACK', name: rollback, types: [] }),
      serialize.parse({ text: 'BEGIN TRANSACTION READ ONLY', name: begin, types: [] }),
    ]),
    begin: Buffer.concat([serialize.bind({ portal: '', statement: begin, values: [] }), serialize.execute({ portal: '', rows: 0 })]),
    rollbackSync: Buffer.concat([
      serialize.bind({ portal: '', statement: rollback, values: [] }),
      serialize.execute({ portal: '', rows: 0 }),
      serialize.sync(),
    ]),
  };
}

/** The unnamed batch's constant parts: BEGIN parsed, bound and run; the statement described and run; ROLLBACK likewise, and Sync. */
const UNNAMED_BEGIN = Buffer.concat([
  serialize.parse({ text: 'BEGIN TRANSACTION READ ONLY', name: '', types: [] }),
  serialize.bind({ portal: '', statement: '', values: [] }),
  serialize.execute({ portal: '', rows: 0 }),
]);
const DESCRIBE_EXECUTE = Buffer.concat([serialize.describe({ type: 'P', name: '' }), serialize.execute({ portal: '', rows: 0 })]);
const UNNAMED_ROLLBACK_SYNC = Buffer.concat([
  serialize.parse({ text: 'ROLLBACK', name: '', types: [] }),
  serialize.bind({ portal: '', statement: '', values: [] }),
  serialize.execute({ portal: '', rows: 0 }),
  serialize.sync(),
]);

interface ConnectionNames {
  prefix: string;
  wire: ConnectionWire;
  bySql: Map<string, NamedStatement>;
  made: number;
  beginParsed: boolean;
}
const connectionNames = new WeakMap<object, ConnectionNames>();
let connectionSeq = 0;

/**
 * The statement names of a read on this connection, or null when it gets none: the server does not
 * keep a session per connection (PGlite's wire server), or the connection has made its share. The
 * names are unique to the connection (a prefix of the process and the connection), so connections
 * that share one backend can never take each other's. Texts up to 4 KB only.
 */
function statementNames(client: pg.PoolClient, sql: string): BatchNames | null {
  const rc = client as unknown as ReportingClient & { connectionParameters?: { application_name?: string } };
  const sent = rc.connectionParameters?.application_name;
  if (!sent || rc.reportedAppName !== sent || sql.length > 4096) return null;
  let st = connectionNames.get(client);
  if (st === undefined) {
    const prefix = `vecron_${process.pid.toString(36)}_${(++connectionSeq).toString(36)}_`;
    st = { prefix, wire: connectionWire(prefix), bySql: new Map(), made: 0, beginParsed: false };
    connectionNames.set(client, st);
  }
  let named = st.bySql.get(sql);
  if (named === undefined) {
    if (st.made >= MAX_NAMED_PER_CONNECTION) return null;
    named = { name: `${st.prefix}${st.made++}`, described: null };
    st.bySql.set(sql, named);
  }
  return new ConnectionBatchNames(client, st, sql, named);
}

/** BatchNames of one read (a class: a read makes no closures). */
class ConnectionBatchNames implements BatchNames {
  readonly beginParsed: boolean;
  readonly statement: string;
  readonly wire: ConnectionWire;
  readonly described: DescribedStatement | null;
  constructor(
    private readonly client: pg.PoolClient,
    private readonly state: ConnectionNames,
    private readonly sql: string,
    private readonly named: NamedStatement,
  ) {
    this.beginParsed = state.beginParsed;
    this.statement = named.name;
    this.wire = state.wire;
    this.described = named.described;
  }
  failed(): void {
    this.state.bySql.delete(this.sql);
    const conn = (this.client as unknown as { connection: { parsedStatements: Record<string, string>; submittedNamedStatements: Record<string, string> } })
      .connection;
    delete conn.parsedStatements[this.named.name];
    delete conn.submittedNamedStatements[this.named.name];
  }
  sent(): void {
    this.state.beginParsed = true;
  }
  describedAs(d: DescribedStatement): void {
    if (this.state.bySql.get(this.sql) === this.named) this.named.described = d;
  }
}

/** The columns as a result shows them: name and type name. */
function columnsOf(fields: readonly { name: string; dataTypeID: number }[] | undefined): { name: string; type: string }[] {
  return (fields ?? []).map((f) => ({ name: f.name, type: PG_TYPES[f.dataTypeID] ?? `oid:${f.dataTypeID}` }));
}

/** What a finished statement gives its caller: the kept rows, the columns, the rows a DML statement changed. */
function rawResult(keep: Keeper, command: string | null, rowCount: number | null, fields: { name: string; type: string }[]): RawResult {
  const dml = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
  return keep.result(fields, dml ? (rowCount ?? 0) : null, command);
}

/** A CommandComplete's tag: `SELECT 3`, `INSERT 0 1`, `UPDATE 2` (as node-postgres reads it). */
const COMMAND_TAG = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/;

/** The statement as a node-postgres Query whose rows go through the keeper, and its result. */
function pgStatement(req: RunRequest): { query: pg.Query; result: Promise<RawResult> } {
  const keep = new Keeper(req);
  const q = new pg.Query({ text: req.sql, values: req.params as any[] });
  const result = new Promise<RawResult>((resolve, reject) => {
    q.on('row', (row: Record<string, unknown>) => keep.row(row));
    q.on('error', reject);
    q.on('end', (r: pg.QueryResult) => resolve(rawResult(keep, r?.command ?? null, r?.rowCount ?? null, columnsOf(r?.fields))));
  });
  return { query: q, result };
}

/**
 * A read in one round trip instead of three, and one Sync: `BEGIN TRANSACTION READ ONLY`, the
 * statement and `ROLLBACK`, as one extended-protocol batch written at once. The server runs them in
 * order and answers with one ReadyForQuery; if BEGIN fails, the server skips the statement (it never
 * runs outside the read-only transaction), and if the statement fails it skips the ROLLBACK too,
 * which readBatch then sends. The ROLLBACK inside the batch, before its Sync (not a second query
 * after it), saves the server a second flush and the client a second reply: about 13 us of a
 * 38 us round trip on loopback (scratch wire timing, 2026-12-03).
 *
 * Nothing is written unless all of it is: the parameters are mapped to their wire text first (the
 * only step that could throw), then the messages go out in one corked write.
 */
class PgReadOnlyBatch {
  /** For the client, which records a named statement's text at its ParseComplete. */
  readonly name: string | undefined;
  readonly text: string;
  /** The statement's row parsers (node-postgres's own, with the pool's types), made for this read or reused. */
  private parser: PgResult | null = null;
  /** A former read's parsers and columns, reused (the same RowDescription). */
  private reused: DescribedStatement | null = null;
  private readonly keep: Keeper;
  private command: string | null = null;
  private rowCount: number | null = null;
  /** CommandCompletes seen: BEGIN's, then the statement's, then ROLLBACK's. */
  private completes = 0;
  /** A row that could not be parsed: the read fails with it once the server is done. */
  private rowError: unknown = null;
  constructor(
    private readonly req: RunRequest,
    private readonly names: BatchNames | null,
    private done: ((err: unknown, r?: RawResult) => void) | null,
  ) {
    this.name = names?.statement;
    this.text = req.sql;
    this.keep = new Keeper(req);
  }
  submit(connection: any): Error | null {
    const names = this.names;
    const stmtName = this.name;
    const parseStmt =
      stmtName === undefined || (connection.parsedStatements[stmtName] === undefined && connection.submittedNamedStatements[stmtName] === undefined);
    let bind: Buffer;
    try {
      bind = serialize.bind({ portal: '', statement: stmtName, values: this.req.params.map(pgUtils.prepareValue) });
    } catch (err) {
      return err as Error; // nothing was sent: the client fails the query and moves on
    }
    // Named: BEGIN and ROLLBACK are parsed once per connection, both first (so a failure later in the
    // batch cannot leave one of them unparsed). Unnamed: each is parsed right before it runs.
    const out: Buffer[] = [];
    if (names === null) out.push(UNNAMED_BEGIN);
    else {
      if (!names.beginParsed) out.push(names.wire.parseBoth);
      out.push(names.wire.begin);
      names.sent();
    }
    if (parseStmt) {
      out.push(serialize.parse({ text: this.text, name: stmtName, types: [] }));
      if (stmtName !== undefined) connection.submittedNamedStatements[stmtName] = this.text;
    }
    out.push(bind, DESCRIBE_EXECUTE, names === null ? UNNAMED_ROLLBACK_SYNC : names.wire.rollbackSync);
    // One buffer, one write: a corked stream hands ten small buffers to one writev, which cost more
    // here (this and the single deadline of withTimeout: about 7 us of CPU less per read, .scratch A/B).
    if (connection.stream.writable) connection.stream.write(Buffer.concat(out));
    return null;
  }
  private finish(err: unknown, r?: RawResult): void {
    const done = this.done;
    this.done = null;
    done?.(err, r);
  }
  handleRowDescription(msg: { fields: any[] }): void {
    const known = this.names?.described;
    if (known && sameFields(known.fields, msg.fields)) {
      this.parser = known.parser;
      this.reused = known;
      return;
    }
    this.parser = new PgResult(undefined, pgTypes);
    this.parser.addFields(msg.fields);
  }
  handleDataRow(msg: { fields: unknown[] }): void {
    if (this.rowError !== null) return;
    let row: Record<string, unknown>;
    try {
      row = (this.parser as PgResult).parseRow(msg.fields);
    } catch (err) {
      this.rowError = err;
      return;
    }
    this.keep.row(row);
  }
  handleCommandComplete(msg: { text?: string; command?: string }): void {
    // BEGIN's own comes first and ROLLBACK's last: only the statement's counts.
    if (this.completes++ !== 1) return;
    const tag = COMMAND_TAG.exec(msg.text ?? msg.command ?? '');
    if (tag === null) return;
    this.command = tag[1];
    const n = tag[3] ?? tag[2];
    if (n !== undefined) this.rowCount = Number.parseInt(n, 10);
  }
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {} // Execute asks for every row: never suspended
  handleCopyInResponse(connection: any): void {
    connection.sendCopyFail('a read cannot copy from the client');
  }
  handleCopyData(): void {}
  /** The server refused a message (it then skips to the Sync), or the connection failed. */
  handleError(err: unknown): void {
    this.finish(this.rowError ?? err);
  }
  /** The batch is over, its ROLLBACK done. */
  handleReadyForQuery(): void {
    if (this.rowError !== null) {
      this.finish(this.rowError);
      return;
    }
    let columns: { name: string; type: string }[];
    if (this.reused !== null) columns = this.reused.columns.map((c) => ({ ...c }));
    else {
      columns = columnsOf(this.parser?.fields);
      if (this.parser !== null) this.names?.describedAs({ fields: this.parser.fields, parser: this.parser, columns: columns.map((c) => ({ ...c })) });
    }
    this.finish(null, rawResult(this.keep, this.command, this.rowCount, columns));
  }
}

/** Keeps rows up to the row and byte limits; counts them all. A class: a statement makes no closures for it. */
class Keeper {
  readonly rows: Record<string, unknown>[] = [];
  total = 0;
  /** Bytes of the kept rows as JSON (counted only under a byte limit). */
  bytes = 0;
  overBytes = false;
  private readonly rowLimit: number;
  private readonly maxBytes: number;
  constructor(req: RunRequest) {
    this.rowLimit = req.rowLimit;
    this.maxBytes = req.maxBytes ?? Infinity;
  }
  row(row: Record<string, unknown>): void {
    if (++this.total > this.rowLimit || this.overBytes) return;
    const r = jsonRow(row);
    if (this.maxBytes !== Infinity) {
      this.bytes += Buffer.byteLength(JSON.stringify(r)) + 1;
      if (this.bytes > this.maxBytes) {
        this.overBytes = true;
        return;
      }
    }
    this.rows.push(r);
  }
  /** The result with its columns and what a DML statement changed. */
  result(fields: { name: string; type: string }[], affected: number | null, command: string | null): RawResult {
    return { rows: this.rows, total: this.total, bytes: this.bytes, overBytes: this.overBytes, fields, affected, command };
  }
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

export function runMysql(p: MyPool, req: RunRequest): Promise<RawResult> {
  return withTimeout(req, async () => {
    const conn = await new Promise<mysql.PoolConnection>((resolve, reject) => p.pool.getConnection((err, c) => (err ? reject(err) : resolve(c))));
    const plain = (sql: string) => new Promise<void>((resolve, reject) => conn.query(sql, (err) => (err ? reject(err) : resolve())));
    return {
      release: (destroy) => (destroy ? conn.destroy() : conn.release()),
      cancel: () => myKill(p, conn.threadId),
      run: async () => {
        if (req.readOnly) await plain('START TRANSACTION READ ONLY');
        try {
          return await new Promise<RawResult>((resolve, reject) => {
            const keep = new Keeper(req);
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
              keep.row(row);
            });
            cmd.on('error', (e: unknown) => ((failed = true), reject(e)));
            cmd.on('end', () => {
              if (failed) return;
              const verb = /^\s*(\w+)/.exec(req.sql)?.[1]?.toUpperCase() ?? null;
              resolve(keep.result(fields, firstSet === null ? affected : null, verb));
            });
          });
        } finally {
          if (req.readOnly) await plain('ROLLBACK').catch(() => {});
        }
      },
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

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    (typeof e?.code === 'string' && (NET_CODES.has(e.code) || e.code.startsWith('08'))) ||
    /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(e?.message ?? '')
  );
}

export function abortError(signal: AbortSignal, cause: unknown): StepError {
  const reason = signal.reason;
  if (reason instanceof StepError) return reason;
  const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : '';
  return new StepError('aborted', `the database statement was cancelled${why}`, { retryable: true, cause });
}

/** Runs one statement on the pool (counts as active while it runs, so the pool is not closed under it). */
export async function runStatement(p: DatabasePool, req: RunRequest): Promise<RawResult> {
  p.active++;
  try {
    return p.kind === 'postgresql' ? await runPg(p, req) : await runMysql(p, req);
  } finally {
    p.active--;
    p.lastUsed = Date.now();
  }
}
