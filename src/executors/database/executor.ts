/**
 * The database step: one SQL statement or stored procedure call on PostgreSQL (node-postgres) or
 * MySQL/MariaDB (mysql2), through a pool per connection string that lives until shutdown.
 *
 * The pools, parameters, row streaming and cancel-on-timeout live in client.ts (shared with the
 * WASM `db_query` host function); this file is the step: its config, named connections, stored
 * procedures and its error codes.
 * - Objects and arrays in `parameters` are sent as JSON text.
 * - A result with more rows than `row_limit` fails the step (db_row_limit_exceeded) after the
 *   server has finished the statement.
 *
 * Output: `{ rows, row_count, fields: [{name, type}], affected_rows, command, duration_ms }`.
 * Failure codes: db_connection_not_found, db_invalid_config, db_connection_failed, db_auth_failed,
 * db_query_failed, db_timeout, db_row_limit_exceeded, db_procedure_not_found, aborted.
 */
import { egressDeniedIn } from '../../egress/index.ts';
import type { StepExecute, StepRunContext } from '../executor.ts';
import type { DatabaseStepConfig, DatabaseType } from './definition.ts';
import { StepError } from '../../engine/step-error.ts';
import { MAX_TIMER_MS, type PgPool, type RunRequest, abortError, getPool, isConnectionError, runPg, runStatement } from './client.ts';

export { closeDatabasePools, databasePoolCount } from './client.ts';

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

export const execute: StepExecute<DatabaseStepConfig> = async (config, ctx) => {
  const started = performance.now();
  const type = config.database_type;
  const url = connectionString(config, ctx);
  const timeoutMs = effectiveTimeoutMs(config, ctx);
  const params = (config.parameters ?? []).map(toParam);
  const pool = getPool(type, url, ctx.services.config?.stepDbPoolSize ?? 5);
  const req: RunRequest = { sql: '', params, rowLimit: config.row_limit ?? 10_000, timeoutMs, signal: ctx.signal };
  pool.active++; // the procedure lookup and the statement: the pool stays open across both
  try {
    if (config.query_type === 'stored_procedure') {
      const name = procedureName(config.query.trim(), type);
      req.sql =
        type === 'postgresql' ? await pgProcedureSql(pool as PgPool, name, params.length, req) : `CALL ${name.sql}(${params.map(() => '?').join(', ')})`;
    } else {
      req.sql = config.query;
    }
    const r = await runStatement(pool, req);
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
