/**
 * Classifies one SQL statement of a `db_query` call with a real parser, so that permissions can be
 * checked per table before anything reaches the database:
 * - PostgreSQL: libpg-query, PostgreSQL's own parser compiled to WASM (every valid statement parses
 *   exactly as the server will parse it);
 * - MySQL/MariaDB: node-sql-parser's MariaDB grammar (a PEG grammar: a statement it cannot parse is
 *   refused, never guessed at).
 *
 * Rules (docs/abi.md, db_query): exactly one statement; only SELECT (VALUES, TABLE, read-only WITH),
 * INSERT (REPLACE on MySQL), UPDATE, DELETE and MERGE; no DDL or utility statements; no SELECT ...
 * INTO, no locking clauses, no session variables; a few built-in functions that run SQL text or keep
 * session state (query_to_xml, dblink, set_config, advisory locks, GET_LOCK, ...) are refused because
 * the table check cannot see through them. Every table is reported with how it is used: `write` for
 * the target of INSERT/UPDATE/DELETE/MERGE, `read` for everything read (and for a target whose rows
 * come back through RETURNING). References to the statement's own CTEs are not tables.
 *
 * Anything refused here is `bad_request`: the statement is not one db_query runs, whatever the
 * module's permissions (permission_denied is kept for what a grant would allow).
 *
 * The main thread must not stall on a parse: libpg-query is C and linear; node-sql-parser is a PEG
 * parser that takes milliseconds per hundred characters of expression, so MySQL statements longer
 * than INLINE_MYSQL_CHARS are parsed in a thread of their own (mysql-parse-worker.mjs) with a hard
 * time limit. Trees deeper than MAX_DEPTH are refused rather than walked.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { HostCallError } from './types.ts';

export type SqlDialect = 'postgresql' | 'mysql';
export type TableAccess = 'read' | 'write';

export interface ClassifiedStatement {
  /** The statement's verb: select, insert, update, delete, merge (replace on MySQL). */
  verb: string;
  /** True when the statement writes (a data-modifying CTE makes a SELECT a write too). */
  writes: boolean;
  /** Every table the statement names, as `schema.table` when qualified, with its uses. */
  tables: Map<string, Set<TableAccess>>;
}

const require = createRequire(import.meta.url);
const MAX_SQL = 64 * 1024;
/** Nesting of the parse tree past which a statement is refused (a real statement is far below it). */
const MAX_DEPTH = 1000;
/** MySQL statements up to this length are parsed on the calling thread (well under a millisecond). */
export const INLINE_MYSQL_CHARS = 512;
/** Time a MySQL parse may take in its thread before it is stopped and the statement refused. */
let mysqlParseTimeoutMs = 5000;
/** For tests: the MySQL parse time limit (null: the default, 5 s). */
export function setMysqlParseTimeout(ms: number | null): void {
  mysqlParseTimeoutMs = ms ?? 5000;
}

const refuse = (message: string): never => {
  throw new HostCallError('bad_request', message);
};

/**
 * The classification of a statement. Statements a module accepted before are answered from a
 * bounded cache (a module sends the same few statements again and again, with new `params`): the
 * answer depends only on the dialect and the text. The answer is shared: callers only read it.
 */
export async function classifySql(dialect: SqlDialect, sql: string): Promise<ClassifiedStatement> {
  if (typeof sql !== 'string' || sql.trim() === '') refuse('sql: must be a non-empty string holding one statement');
  if (sql.length > MAX_SQL) refuse(`sql: at most ${MAX_SQL} characters`);
  const key = sql.length <= CACHE_MAX_SQL ? `${dialect}\n${sql}` : null;
  if (key !== null) {
    const hit = classified.get(key);
    if (hit !== undefined) {
      classified.delete(key); // re-inserted: the map's order is the recency order
      classified.set(key, hit);
      return hit;
    }
  }
  let stmt: ClassifiedStatement;
  if (dialect === 'postgresql') {
    await loadSqlParsers();
    stmt = classifyPg(sql);
  } else stmt = await classifyMysql(sql);
  if (key !== null) {
    if (classified.size >= CACHE_ENTRIES) classified.delete(classified.keys().next().value as string);
    classified.set(key, stmt);
  }
  return stmt;
}

/** Accepted statements by dialect and text, least recently used first (refusals are not kept: they parse again). */
const classified = new Map<string, ClassifiedStatement>();
const CACHE_ENTRIES = 1000;
/** Longer statements are classified every time (the cache holds at most about CACHE_ENTRIES * this many characters). */
const CACHE_MAX_SQL = 4096;

/** For tests: how many accepted statements the cache holds. */
export function classifiedCacheSize(): number {
  return classified.size;
}

const tooDeep = (): never => refuse(`sql: the statement is nested more than ${MAX_DEPTH} levels deep`);

function addTable(tables: Map<string, Set<TableAccess>>, name: string, access: TableAccess): void {
  if (name.includes('/')) refuse(`sql: table name '${name.slice(0, 100)}' contains '/', which permissions use as the datasource separator`);
  let s = tables.get(name);
  if (!s) tables.set(name, (s = new Set()));
  s.add(access);
}

/* ------------------------------------------------------------------------------------------------
 * PostgreSQL (libpg-query)
 * ---------------------------------------------------------------------------------------------- */

let pgParser: { parseSync(sql: string): any } | null = null;

/** Loads the WASM parser once (about 50 ms); db_query calls it before the first PostgreSQL query. */
export async function loadSqlParsers(): Promise<void> {
  if (pgParser) return;
  const lpq = require('libpg-query');
  await lpq.loadModule();
  pgParser = lpq;
}

const PG_STATEMENTS: Record<string, string> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
};
const PG_DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** Built-ins that run SQL given as text, reach other servers or files, or keep state on the pooled connection. */
const PG_REFUSED_FUNCTIONS = [
  /^(query|cursor|table|schema|database)_to_xml(schema|_and_xmlschema)?$/,
  /^dblink/,
  /^set_config$/,
  /^pg_(try_)?advisory_/,
  /^lo_/,
  /^pg_read_(binary_)?file$/,
  /^pg_ls_/,
  /^pg_stat_file$/,
  /^pg_(terminate|cancel)_backend$/,
  /^pg_reload_conf$/,
  /^pg_notify$/,
];

function classifyPg(sql: string): ClassifiedStatement {
  if (!pgParser) refuse('sql: the PostgreSQL parser is not loaded (loadSqlParsers)');
  let tree: any;
  try {
    tree = pgParser!.parseSync(sql);
  } catch (err) {
    refuse(`sql: not a valid PostgreSQL statement: ${(err as Error).message}`);
  }
  const stmts: any[] = tree?.stmts ?? [];
  if (stmts.length === 0) refuse('sql: holds no statement');
  if (stmts.length > 1) refuse(`sql: holds ${stmts.length} statements; db_query runs exactly one per call`);
  const wrapper = stmts[0].stmt ?? {};
  const kind = Object.keys(wrapper)[0];
  const verb = PG_STATEMENTS[kind];
  if (!verb) refuse(`sql: ${describePg(kind)} is not allowed; db_query runs SELECT, INSERT, UPDATE, DELETE and MERGE only`);
  const out: ClassifiedStatement = { verb, writes: false, tables: new Map() };
  walkPg(wrapper, new Set(), out);
  return out;
}

function describePg(kind: string | undefined): string {
  if (!kind) return 'this statement';
  const name = kind.replace(/Stmt$/, '');
  const ddl = /^(Create|Alter|Drop|Rename|Truncate|Comment|Grant|Revoke|Index|View|Define|Reindex|Cluster|Vacuum|Refresh)/.test(name);
  return ddl ? `DDL (${kind})` : `the statement ${kind}`;
}

const rangeVarName = (rv: any): string => [rv.catalogname, rv.schemaname, rv.relname].filter((x) => typeof x === 'string' && x !== '').join('.');

/** Walks the tree; `ctes` are the CTE names visible at this point (they shadow tables when unqualified). */
function walkPg(node: unknown, ctes: ReadonlySet<string>, out: ClassifiedStatement, depth = 0): void {
  if (depth > MAX_DEPTH) tooDeep();
  const d = depth + 1;
  if (Array.isArray(node)) {
    for (const n of node) walkPg(n, ctes, out, d);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, any>;
  if (typeof obj.relname === 'string') {
    // A RangeVar: a table, a view, or one of the statement's CTEs.
    if (!obj.schemaname && !obj.catalogname && ctes.has(obj.relname)) return;
    addTable(out.tables, rangeVarName(obj), 'read');
    return;
  }
  for (const [key, value] of Object.entries(obj)) {
    if (PG_DML.has(key)) {
      walkPgDml(value, ctes, out, d);
    } else if (key === 'SelectStmt') {
      if (value.intoClause) refuse('sql: SELECT ... INTO creates a table; it is not allowed');
      if (value.lockingClause) refuse('sql: locking clauses (FOR UPDATE, FOR SHARE) are not allowed: the lock would end with the one-statement call');
      const scope = withScope(value.withClause, ctes, out, d);
      for (const [k, v] of Object.entries(value)) if (k !== 'withClause') walkPg(v, scope, out, d);
    } else if (key === 'FuncCall') {
      const parts: string[] = (value.funcname ?? []).map((n: any) => n?.String?.sval ?? '');
      const name = (parts[parts.length - 1] ?? '').toLowerCase();
      if (PG_REFUSED_FUNCTIONS.some((re) => re.test(name))) {
        refuse(
          `sql: the function ${name}() is not allowed: it runs SQL text, reaches outside the database or keeps session state, which the table check cannot see`,
        );
      }
      walkPg(value, ctes, out, d);
    } else {
      walkPg(value, ctes, out, d);
    }
  }
}

function walkPgDml(stmt: any, ctes: ReadonlySet<string>, out: ClassifiedStatement, depth: number): void {
  out.writes = true;
  const scope = withScope(stmt.withClause, ctes, out, depth);
  // The target is always a table: PostgreSQL does not let a CTE be the target of a write.
  const target = rangeVarName(stmt.relation ?? {});
  if (!target) refuse('sql: the statement has no target table');
  addTable(out.tables, target, 'write');
  // PostgreSQL 18's tree has returningClause.exprs (older ones returningList).
  const returning = stmt.returningClause?.exprs ?? stmt.returningList;
  if (Array.isArray(returning) && returning.length > 0) addTable(out.tables, target, 'read');
  for (const [k, v] of Object.entries(stmt)) if (k !== 'withClause' && k !== 'relation') walkPg(v, scope, out, depth);
}

/** The CTE names visible in a statement with this WITH clause; walks the CTE bodies in their own scope. */
function withScope(w: any, outer: ReadonlySet<string>, out: ClassifiedStatement, depth: number): ReadonlySet<string> {
  if (!w || !Array.isArray(w.ctes)) return outer;
  const names: string[] = w.ctes.map((c: any) => c?.CommonTableExpr?.ctename).filter((n: unknown) => typeof n === 'string');
  const scope = new Set(outer);
  if (w.recursive) for (const n of names) scope.add(n);
  for (const c of w.ctes) {
    const cte = c?.CommonTableExpr;
    if (!cte) continue;
    // Non-recursive: a CTE sees the ones before it, not itself (its own name is the table).
    walkPg(cte.ctequery, new Set(scope), out, depth);
    scope.add(cte.ctename);
  }
  return scope;
}

/* ------------------------------------------------------------------------------------------------
 * MySQL / MariaDB (node-sql-parser)
 * ---------------------------------------------------------------------------------------------- */

let myParser: { parse(sql: string, opt: object): { tableList: string[]; ast: any } } | null = null;

const MY_VERBS = new Set(['select', 'insert', 'replace', 'update', 'delete']);
/** Functions that read server files, keep session state on the pooled connection, or run SQL text. */
const MY_REFUSED_FUNCTIONS = new Set([
  'load_file',
  'get_lock',
  'release_lock',
  'release_all_locks',
  'is_used_lock',
  'is_free_lock',
  'master_pos_wait',
  'sys_exec',
  'sys_eval',
]);

interface MyParsed {
  tableList: string[];
  ast: any;
}

/* The parser's thread: one, started on the first long statement, replaced after a timeout. */
let worker: Worker | null = null;
/** Settles when the current thread has loaded its parser (the time limit counts from then). */
let workerReady: Promise<void> = Promise.resolve();
let nextId = 0;
/** Calls in flight, each with the thread it was sent to (a thread that ends fails only its own calls). */
const pending = new Map<number, { resolve: (p: MyParsed) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; thread: Worker }>();

function parserThread(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./mysql-parse-worker.mjs', import.meta.url), {
    execArgv: [],
    resourceLimits: { maxOldGenerationSizeMb: 128 },
    stdout: false,
    stderr: false,
  });
  w.unref();
  let ready!: () => void;
  workerReady = new Promise<void>((r) => (ready = r));
  w.on('message', (m: { id: number; ready?: boolean; ok: boolean; tableList?: string[]; ast?: any; message?: string }) => {
    if (m.ready) return ready();
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve({ tableList: m.tableList ?? [], ast: m.ast });
    else p.reject(new HostCallError('bad_request', `sql: not a MySQL/MariaDB statement db_query can check: ${String(m.message).slice(0, 300)}`));
  });
  const fail = (err: Error) => {
    ready();
    if (worker === w) worker = null;
    for (const [id, p] of pending) {
      // A thread replaced after a timeout ends later: the calls already sent to its successor stay.
      if (p.thread !== w) continue;
      pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new HostCallError('unavailable', `the SQL checker stopped (${err.message}); retry the call`));
    }
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`exit ${code}`)));
  worker = w;
  return w;
}

async function parseInThread(sql: string): Promise<MyParsed> {
  const w = parserThread();
  await workerReady;
  if (worker !== w) throw new HostCallError('unavailable', 'the SQL checker stopped; retry the call');
  const id = ++nextId;
  return new Promise<MyParsed>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new HostCallError('bad_request', `sql: the statement is too complex to check within ${mysqlParseTimeoutMs} ms`));
      // The parse cannot be interrupted: the thread goes, the calls queued behind it get 'unavailable'.
      if (worker === w) worker = null;
      void w.terminate();
    }, mysqlParseTimeoutMs);
    pending.set(id, { resolve, reject, timer, thread: w });
    w.postMessage({ id, sql });
  });
}

/** Stops the parser's thread (tests, shutdown); a later long statement starts a new one. */
export async function closeSqlParsers(): Promise<void> {
  const w = worker;
  worker = null;
  await w?.terminate();
}

async function classifyMysql(sql: string): Promise<ClassifiedStatement> {
  // MySQL runs the text of /*! ... */ and MariaDB that of /*M! ... */ as SQL, but a parser sees a comment.
  if (/\/\*M?!/i.test(sql)) refuse('sql: executable comments (/*! ... */) are not allowed');
  let parsed: MyParsed;
  if (sql.length > INLINE_MYSQL_CHARS) {
    parsed = await parseInThread(sql);
  } else {
    if (!myParser) {
      const { Parser } = require('node-sql-parser/build/mariadb');
      myParser = new Parser();
    }
    try {
      parsed = myParser!.parse(sql, { database: 'MariaDB' });
    } catch (err) {
      return refuse(`sql: not a MySQL/MariaDB statement db_query can check: ${String((err as Error).message).slice(0, 300)}`);
    }
  }
  const asts = (Array.isArray(parsed!.ast) ? parsed!.ast : [parsed!.ast]).filter(Boolean);
  if (asts.length === 0) refuse('sql: holds no statement');
  if (asts.length > 1) refuse(`sql: holds ${asts.length} statements; db_query runs exactly one per call`);
  const ast = asts[0];
  const verb = String(ast.type ?? '').toLowerCase();
  if (!MY_VERBS.has(verb)) {
    const ddl = /^(create|alter|drop|rename|truncate|grant|revoke)/.test(verb);
    refuse(
      `sql: ${ddl ? `DDL (${verb.toUpperCase()})` : `the statement ${verb.toUpperCase() || '(unknown)'}`} is not allowed; db_query runs SELECT, INSERT, REPLACE, UPDATE and DELETE only`,
    );
  }
  walkMy(ast, 0);
  const out: ClassifiedStatement = { verb, writes: verb !== 'select', tables: new Map() };

  // Names of the top-level CTEs; one is a table reference only where a CTE body names it too
  // (a recursive CTE, or a CTE that reads the table it shadows): those are checked as tables.
  const cteNames = new Set<string>((ast.with ?? []).map((c: any) => c?.name?.value).filter((n: unknown) => typeof n === 'string'));
  const inBodies = new Set<string>();
  for (const c of ast.with ?? []) for (const t of c?.stmt?.tableList ?? []) inBodies.add(String(t).split('::').slice(1).join('::'));
  for (const entry of parsed!.tableList) {
    const [op, db, table] = String(entry).split('::');
    const o = op.toLowerCase();
    if (!MY_VERBS.has(o)) refuse(`sql: the statement uses a table as '${op}', which db_query does not allow`);
    if (db === 'null' && cteNames.has(table) && !inBodies.has(`null::${table}`)) continue;
    const name = db === 'null' ? table : `${db}.${table}`;
    addTable(out.tables, name, o === 'select' ? 'read' : 'write');
  }
  if (ast.returning) for (const uses of out.tables.values()) if (uses.has('write')) uses.add('read');
  return out;
}

function walkMy(node: unknown, depth: number): void {
  if (depth > MAX_DEPTH) tooDeep();
  if (Array.isArray(node)) {
    for (const n of node) walkMy(n, depth + 1);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, any>;
  if (obj.into && (obj.into.keyword || obj.into.expr)) refuse('sql: SELECT ... INTO (files or variables) is not allowed');
  if (obj.locking_read) refuse('sql: locking reads (FOR UPDATE, LOCK IN SHARE MODE) are not allowed: the lock would end with the one-statement call');
  if (obj.type === 'assign' || (obj.type === 'var' && obj.prefix !== undefined && obj.prefix !== null && String(obj.prefix).startsWith('@'))) {
    refuse('sql: session variables (@name) are not allowed: they would stay on the pooled connection');
  }
  if (obj.type === 'function') {
    const parts: any[] = obj.name?.name ?? [];
    const name = String(parts[parts.length - 1]?.value ?? '').toLowerCase();
    if (MY_REFUSED_FUNCTIONS.has(name)) refuse(`sql: the function ${name.toUpperCase()}() is not allowed: it reads server files or keeps session state`);
  }
  for (const v of Object.values(obj)) walkMy(v, depth + 1);
}
