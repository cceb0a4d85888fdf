/**
 * `db_query`: one SQL statement on a datasource that an admin defined (docs/abi.md).
 *
 * Request `{"datasource": "NAME", "sql": "...", "params": [...], "max_rows"?: n}`;
 * answer `{"columns": [{name, type}], "rows": [{...}], "row_count", "affected_rows"}`.
 *
 * - The datasource is a variable (normally secret) holding a postgresql:// or mysql:// URL, like the
 *   database step's named connections. The module never sees it: no answer and no message carries
 *   the URL or any part of it (user, password, host, database) — server messages are scrubbed too.
 * - The statement is classified by a real parser (sql-classify.ts) before any connection: one
 *   statement, no DDL; every table it names needs `database:read` or `database:write` on
 *   `datasource/table`. A statement that names no table needs `database:read` on the datasource.
 * - Values go in `params` only (`$1` on PostgreSQL, `?` on MySQL), sent apart from the SQL text.
 * - A read runs in a READ ONLY transaction that is rolled back, so the server refuses any write a
 *   function might attempt.
 * - Rows are capped at min(max_rows, limits.maxRows) and their JSON at limits.maxResponseBytes:
 *   more is `too_large` (never a silently cut result). The call ends by limits.maxCallMs or the
 *   step's deadline (`timeout`), or when the run stops (`cancelled`): the statement is then cancelled
 *   on the server (the database step's cancel logic, src/executors/database/client.ts).
 */
import { isMainThread } from 'node:worker_threads';
import { egressDeniedIn } from '../../egress/index.ts';
import { StepError } from '../../engine/step-error.ts';
import { type DatabaseKind, getPool, isConnectionError, MAX_TIMER_MS, runStatement } from '../../executors/database/client.ts';
import { classifySql } from './sql-classify.ts';
import { HostCallError, type HostCallContext, type HostErrorCode, type HostFunction } from './types.ts';

/**
 * Connections per datasource URL (the pool is shared with database steps that use the same URL).
 * A guest's worker (JSPI runs, worker-io.ts) runs one guest at a time: a pool of its own, smaller.
 */
const POOL_SIZE = isMainThread ? 5 : 2;
const DATASOURCE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
const MAX_PARAMS = 1000;
const FIELDS = new Set(['datasource', 'sql', 'params', 'max_rows']);

const bad = (message: string): never => {
  throw new HostCallError('bad_request', message);
};

interface Datasource {
  name: string;
  kind: DatabaseKind;
  url: string;
  /** Every part of the URL a message must not show. */
  secrets: string[];
}

export const dbQuery: HostFunction = {
  name: 'db_query',
  async call(request, ctx) {
    for (const k of Object.keys(request)) if (!FIELDS.has(k)) bad(`${k}: is not a db_query field (datasource, sql, params, max_rows)`);
    const name = request.datasource;
    if (typeof name !== 'string' || !DATASOURCE_NAME.test(name)) bad('datasource: must be the name of a datasource (letters, digits, _ . -)');
    if (typeof request.sql !== 'string') bad('sql: must be a string holding one statement');
    const params = parseParams(request.params);
    const limits = ctx.session.limits;
    let rowLimit = limits.maxRows;
    if (request.max_rows !== undefined) {
      const m = request.max_rows;
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 1) bad('max_rows: must be a positive integer');
      rowLimit = Math.min(m as number, limits.maxRows);
    }

    const ds = datasource(name as string, ctx);
    const stmt = await classifySql(ds.kind, request.sql as string);

    const tables = [...stmt.tables.keys()];
    ctx.target(tables.length ? `${ds.name}/${tables.join(',')}`.slice(0, 300) : ds.name);
    if (tables.length === 0) ctx.require('database:read', ds.name);
    for (const [table, uses] of stmt.tables) {
      if (uses.has('read')) ctx.require('database:read', `${ds.name}/${table}`);
      if (uses.has('write')) ctx.require('database:write', `${ds.name}/${table}`);
    }

    const left = Number.isFinite(ctx.session.deadline) ? ctx.session.deadline - Date.now() : Infinity;
    if (left <= 0) throw new HostCallError('timeout', "the step's deadline has passed: the statement was not sent");
    if (ctx.signal.aborted) throw stopped(ctx);
    const timeoutMs = Math.max(1, Math.min(limits.maxCallMs, left, MAX_TIMER_MS));
    try {
      const pool = getPool(ds.kind, ds.url, POOL_SIZE);
      const r = await runStatement(pool, {
        sql: request.sql as string,
        params,
        rowLimit,
        maxBytes: limits.maxResponseBytes,
        timeoutMs,
        signal: ctx.signal,
        readOnly: !stmt.writes,
      });
      if (r.total > rowLimit) {
        const which =
          request.max_rows !== undefined && (request.max_rows as number) <= limits.maxRows
            ? `max_rows (${rowLimit})`
            : `the limit of ${rowLimit} rows per call`;
        throw new HostCallError('too_large', `the statement returned ${r.total} rows, more than ${which}; add a LIMIT or page through the rows`);
      }
      if (r.overBytes) {
        throw new HostCallError('too_large', `the rows are larger than the limit of ${limits.maxResponseBytes} bytes per answer; select fewer columns or rows`);
      }
      return { columns: r.fields, rows: r.rows, row_count: r.rows.length, affected_rows: r.affected };
    } catch (err) {
      throw toHostError(err, ds, ctx, timeoutMs);
    }
  },
};

/** Parameters: JSON values; objects and arrays are sent as JSON text (as in the database step). */
function parseParams(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return bad('params: must be an array of values');
  if (v.length > MAX_PARAMS) bad(`params: at most ${MAX_PARAMS} values`);
  return v.map((x) => (x === null || typeof x !== 'object' ? x : JSON.stringify(x)));
}

/**
 * Datasources resolved for a run, by session (one per run; gone with it): a module names the same
 * datasource call after call, and a run's variables do not change while it runs. An admin's change
 * (a rotated password) is read by the next run.
 */
const resolved = new WeakMap<HostCallContext['session'], Map<string, Datasource>>();

function datasource(name: string, ctx: HostCallContext): Datasource {
  let byName = resolved.get(ctx.session);
  const hit = byName?.get(name);
  if (hit !== undefined) return hit;
  const ds = resolveDatasource(name, ctx);
  if (byName === undefined) resolved.set(ctx.session, (byName = new Map()));
  byName.set(name, ds);
  return ds;
}

function resolveDatasource(name: string, ctx: HostCallContext): Datasource {
  const raw = ctx.session.variable(name);
  const url = typeof raw === 'string' ? raw.trim() : '';
  // The same answer for a missing variable and one that is not a datasource URL: nothing of its value shows.
  const notDefined = () =>
    new HostCallError('not_found', `datasource '${name}' is not defined: an admin defines it as a secret variable holding a postgresql:// or mysql:// URL`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw notDefined();
  }
  const scheme = u.protocol.toLowerCase();
  const kind: DatabaseKind | null =
    scheme === 'postgres:' || scheme === 'postgresql:' ? 'postgresql' : scheme === 'mysql:' || scheme === 'mariadb:' ? 'mysql' : null;
  if (!kind) throw notDefined();
  const secrets = [url, u.password, safeDecode(u.password), u.username, safeDecode(u.username), u.host, u.hostname]
    .filter((s) => s && s.length >= 3)
    .sort((a, b) => b.length - a.length);
  return { name, kind, url: kind === 'mysql' ? url.replace(/^mariadb:/i, 'mysql:') : url, secrets };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A message with every part of the datasource URL replaced by `***`. */
function scrub(message: string, ds: Datasource): string {
  let m = message;
  for (const s of ds.secrets) m = m.split(s).join('***');
  return m.slice(0, 1000);
}

function stopped(ctx: HostCallContext): HostCallError {
  const reason = ctx.signal.reason;
  if (reason instanceof HostCallError) return reason;
  const timeout = /timeout|timed out|deadline/i.test(String((reason as Error)?.message ?? reason ?? '')) || (reason as { code?: string })?.code === 'timeout';
  return new HostCallError(timeout ? 'timeout' : 'cancelled', 'the run was stopped during the call; the statement was cancelled on the server');
}

function toHostError(err: unknown, ds: Datasource, ctx: HostCallContext, timeoutMs: number): HostCallError {
  if (err instanceof HostCallError) return err;
  const where = `datasource '${ds.name}'`;
  const fail = (code: HostErrorCode, message: string) => new HostCallError(code, scrub(message, ds));
  const denied = egressDeniedIn(err);
  if (denied) return fail('egress_denied', `${where}: the egress policy refused the connection (${denied.refusal.reason})`);
  if (ctx.signal.aborted) return stopped(ctx);
  if (err instanceof StepError) {
    if (err.code === 'db_timeout') return fail('timeout', `${where}: the statement was cancelled on the server after ${timeoutMs} ms (the call's time limit)`);
    if (err.code === 'aborted') return stopped(ctx);
    if (err.code === 'db_invalid_config') return fail('upstream_error', `${where}: its connection URL is not usable; ask an admin to check it`);
  }
  const e = err as { code?: string; errno?: number; sqlState?: string; message?: string };
  const sqlstate = ds.kind === 'postgresql' ? (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined) : e?.sqlState;
  // 08P01 (protocol violation) is the statement's fault, e.g. a wrong number of parameters.
  if (isConnectionError(err) && sqlstate !== '08P01' && !(sqlstate && !sqlstate.startsWith('08'))) {
    return fail('upstream_error', `${where}: cannot connect to the database${typeof e?.code === 'string' ? ` (${e.code})` : ''}`);
  }
  if (sqlstate === '28P01' || sqlstate === '28000' || e?.errno === 1045 || e?.errno === 1044 || e?.errno === 1698) {
    return fail('upstream_error', `${where}: the database refused the datasource's credentials; ask an admin to check them`);
  }
  if (sqlstate === '3D000' || e?.errno === 1049) return fail('upstream_error', `${where}: the database does not exist; ask an admin to check the datasource`);
  if (sqlstate === '57014' || e?.errno === 1969 || e?.errno === 3024) return fail('timeout', `${where}: the server stopped the statement (its own time limit)`);
  const code = sqlstate ? ` (sqlstate ${sqlstate})` : e?.errno ? ` (errno ${e.errno})` : '';
  return fail('upstream_error', `${where}: the database refused the statement: ${String(e?.message ?? err).slice(0, 500)}${code}`);
}
