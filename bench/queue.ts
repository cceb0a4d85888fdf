/**
 * Queue and scheduler benchmark (issue 3): vecron against graphile-worker, in the same run, on the
 * same PostgreSQL server (one fresh database, dropped at the end), with the same concurrency.
 *
 *   node --import tsx bench/queue.ts        (or `npm run bench`)
 *
 * 1. Throughput end to end: N executions whose only work is one HTTP request to an in-process
 *    server on 127.0.0.1 that answers 204 at once; wall time from the first enqueue until the last
 *    execution is finished. vecron: a job with one `http` step, enqueued with enqueueExecution() from
 *    src/state/enqueue.ts, run by src/queue/worker.ts (services built like src/app.ts);
 *    graphile-worker: a task making the same request, enqueued with addJob().
 *    Both: one worker process (this one), concurrency 8, poll interval 1 s, 10 pooled connections
 *    (plus the LISTEN connection), enqueued 50 at a time from a separate pool of 10.
 *    Also vecron on embedded PGlite (in memory, one process), as an extra row.
 * 2. Lag from due time to step start: vecron: 10 cron jobs `*\/1 * * * * *` run by a real Scheduler
 *    and Worker for ~20 s; lag = step_runs.started_at of the step − executions.fire_time.
 *    graphile-worker: 10 jobs per second with runAt on the next whole seconds for ~20 s;
 *    lag = task start − run_at, measured in the task.
 * Plus where the time goes: database statements per execution (counted through a wrapper around
 * the Database / pg.Pool each system uses), pg_stat_database transactions and row writes per
 * execution, round trip / NOTIFY / claim latency on an idle database, and vecron's lag split into
 * its segments.
 *
 * Environment: BENCH_DATABASE_URL or TEST_DATABASE_URL (postgres superuser URL; when neither is set,
 * `bash scripts/services.sh start` is run), BENCH_N (8000), BENCH_CONCURRENCY (8), BENCH_LAG_SECONDS
 * (20), BENCH_LAG_JOBS (10), BENCH_WARMUP (300), BENCH_ROUNDS (5), BENCH_WARMUP_ROUNDS (2), BENCH_WRITE_DOCS (1; 0 = do not touch
 * docs/benchmarks.md), BENCH_TIME_LIMIT_SECONDS (900: hard stop).
 */
import { mergeRunVariables } from '../src/variables/repository.ts';
import { secretKeyFor } from '../src/secrets/crypto.ts';
import { createServer, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import PgBoss from 'pg-boss';
import pino from 'pino';
import { request as undiciRequest } from 'undici';
import { PGlite } from '@electric-sql/pglite';
import {
  Logger as GraphileLogger,
  makeWorkerUtils,
  run as runGraphile,
  runMigrations as graphileMigrate,
  type Runner,
  type TaskList,
  type WorkerEvents,
  type WorkerUtils,
} from 'graphile-worker';
import { loadConfig, type Config } from '../src/config/index.ts';
import type { Database, Queryable, QueryResult, Row } from '../src/db/database.ts';
import { openPostgres } from '../src/db/postgres.ts';
import { wrapPglite } from '../src/db/pglite.ts';
import { migrate } from '../src/db/migrate.ts';
import { openBlobStore } from '../src/storage/index.ts';
import type { BlobStore } from '../src/storage/blob-store.ts';
import { createMetrics } from '../src/metrics.ts';
import { Worker } from '../src/queue/worker.ts';
import { Scheduler } from '../src/scheduler/scheduler.ts';
import { enqueueExecution } from '../src/state/enqueue.ts';
import { claimExecutions } from '../src/state/claim.ts';
import { startTableUpkeep } from '../src/db/upkeep.ts';
import { createJob, type JobRecord } from '../src/jobs/repository.ts';
import { parseJobDocument } from '../src/jobs/validate.ts';
import { stepDefinitions } from '../src/executors/definitions.ts';
import type { Logger } from '../src/logger.ts';
import type { RunVariables } from '../src/engine/run-execution.ts';
import { fmtMs, fmtNum, latencyCells, markdownTable, summarize, type Summary } from './stats.ts';
import { benchCommand, envInt, machineInfo, writeSection } from './report.ts';
import { loadCondition, nprocs, underLoad } from './cpu-burner.ts';

const HEADING = '## Queue and scheduler (issue 3)';
const root = new URL('..', import.meta.url).pathname;

// Rounds of 8,000 after two warm-up rounds: a worker's steady state (see the report's text for why).
const N = envInt('BENCH_N', 8000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 8);
const LAG_SECONDS = envInt('BENCH_LAG_SECONDS', 20);
const LAG_JOBS = envInt('BENCH_LAG_JOBS', 10);
const WARMUP = envInt('BENCH_WARMUP', 300, 0);
const ROUNDS = envInt('BENCH_ROUNDS', 5);
/** Whole rounds per system run first and not counted (a fresh database and fresh processes warm up). */
const WARMUP_ROUNDS = envInt('BENCH_WARMUP_ROUNDS', 2, 0);
const TIME_LIMIT_S = envInt('BENCH_TIME_LIMIT_SECONDS', 900);
const WRITE_DOCS = process.env.BENCH_WRITE_DOCS !== '0';
const POLL_INTERVAL_MS = 1000;
const LEASE_SECONDS = 30;
const POOL_SIZE = 10;
const ENQUEUE_BATCH = 50;
/** Longest a throughput run may take before it is reported as incomplete. */
const THROUGHPUT_TIMEOUT_MS = 45_000;
const LAG_GOAL_MS = 50;
/** vecron's throughput over graphile-worker's (paired median) that the goal asks for (issue 19). */
const THROUGHPUT_GOAL = 1.1;

const GRAPHILE_VERSION = (JSON.parse(readFileSync(join(root, 'node_modules/graphile-worker/package.json'), 'utf8')) as { version: string }).version;
const PGBOSS_VERSION = (JSON.parse(readFileSync(join(root, 'node_modules/pg-boss/package.json'), 'utf8')) as { version: string }).version;
/** pg-boss polls (no wake-up on insert); 0.5 s is the shortest interval it accepts. */
const PGBOSS_POLL_SECONDS = 0.5;
/** Jobs one pg-boss worker fetches per poll (see pgBossThroughput). */
const PGBOSS_BATCH = envInt('BENCH_PGBOSS_BATCH', 100);
/** The extra rows: vecron on PGlite (quiet only) and the lag under load. */
const PGLITE_ROW = process.env.BENCH_PGLITE !== '0';
/** The loaded condition (issue 19): the same throughput rounds and vecron's lag with a CPU burner per core. */
const LOADED = process.env.BENCH_LOADED !== '0';
/** The bench's own connections (setup, counters): left out of the PostgreSQL CPU column. */
const SETUP_APP_NAME = 'vecron-bench-setup';

const log = (msg: string) => process.stderr.write(`[bench queue] ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/* ------------------------------------------------------------------------------------------------
 * Database server and the bench database
 * ---------------------------------------------------------------------------------------------- */

function adminDatabaseUrl(): string {
  const url = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL;
  if (url) return url;
  log('neither BENCH_DATABASE_URL nor TEST_DATABASE_URL is set: starting the local servers (bash scripts/services.sh start)');
  const out = execFileSync('bash', ['scripts/services.sh', 'start'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 15 * 60_000, // a first start may install the packages
  });
  const vars: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^export ([A-Z_][A-Z0-9_]*)='([^']*)'$/.exec(line.trim());
    if (m) vars[m[1]] = m[2];
  }
  if (!vars.TEST_DATABASE_URL) throw new Error(`scripts/services.sh start printed no TEST_DATABASE_URL; its output was:\n${out}`);
  process.env.TEST_DATABASE_URL = vars.TEST_DATABASE_URL;
  return vars.TEST_DATABASE_URL;
}

async function adminQuery(adminUrl: string, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end().catch(() => {});
  }
}

async function createBenchDatabase(adminUrl: string): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `vecron_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  let dropped = false;
  return {
    url: u.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Transactions and row writes of the current database, from the statistics system. */
async function dbCounters(db: Queryable): Promise<{ xacts: number; writes: number }> {
  const { rows } = await db.query<{ xacts: number; writes: number }>(
    `SELECT xact_commit + xact_rollback AS xacts, tup_inserted + tup_updated + tup_deleted AS writes
     FROM pg_stat_database WHERE datname = current_database()`,
  );
  return { xacts: Number(rows[0].xacts), writes: Number(rows[0].writes) };
}

/** CPU time of this process and, on Linux, how busy the whole machine was, over a window. */
function cpuMeter(): () => { processMs: number; machineBusyPct: number | null } {
  const machine = (): { busy: number; total: number } | null => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      const total = f.reduce((a, b) => a + b, 0);
      const idle = f[3] + (f[4] ?? 0); // idle + iowait
      return { busy: total - idle, total };
    } catch {
      return null;
    }
  };
  const p0 = process.cpuUsage();
  const m0 = machine();
  return () => {
    const p = process.cpuUsage(p0);
    const m1 = machine();
    return {
      processMs: (p.user + p.system) / 1000,
      machineBusyPct: m0 && m1 && m1.total > m0.total ? (100 * (m1.busy - m0.busy)) / (m1.total - m0.total) : null,
    };
  };
}

/** CPU time (ms) of one process from /proc (utime + stime; 100 ticks per second on Linux), 0 where unreadable. */
function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU time of the PostgreSQL backends serving the system under test (every backend of the bench
 * database but the bench's own setup connections), read from /proc (the server runs on this
 * host). Sampled before the pools close: a backend's time is gone with its process. Background
 * processes shared by the whole server (WAL writer, checkpointer) are not in it.
 */
function pgCpuMeter(setupDb: Queryable): { start(): Promise<void>; stop(): Promise<number | null> } {
  const sample = async (): Promise<Map<number, number>> => {
    const { rows } = await setupDb.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name IS DISTINCT FROM '${SETUP_APP_NAME}'`,
    );
    return new Map(rows.map((r) => [r.pid, procCpuMs(r.pid)]));
  };
  let before = new Map<number, number>();
  return {
    async start() {
      before = await sample();
    },
    async stop() {
      const after = await sample();
      let ms = 0;
      let seen = false;
      for (const [pid, t] of after) {
        if (t > 0) seen = true;
        ms += t - (before.get(pid) ?? 0);
      }
      return seen ? ms : null;
    },
  };
}

/* ------------------------------------------------------------------------------------------------
 * Counting database statements
 * ---------------------------------------------------------------------------------------------- */

interface StatementStat {
  count: number;
  ms: number[];
}

/** Counts and times the statements a system sends; one instance per system and phase. */
class Probe {
  readonly statements = new Map<string, StatementStat>();
  transactions = 0;
  readonly transactionMs: number[] = [];
  readonly statementsPerTransaction: number[] = [];

  record(label: string, ms: number): void {
    let s = this.statements.get(label);
    if (!s) this.statements.set(label, (s = { count: 0, ms: [] }));
    s.count++;
    s.ms.push(ms);
  }

  reset(): void {
    this.statements.clear();
    this.transactions = 0;
    this.transactionMs.length = 0;
    this.statementsPerTransaction.length = 0;
  }

  /** Round trips: every statement, plus BEGIN and COMMIT of each db.transaction(). */
  get roundTrips(): number {
    let n = 2 * this.transactions;
    for (const s of this.statements.values()) n += s.count;
    return n;
  }

  rows(perExec: number, top = 12): { label: string; perExec: number; mean: number; p99: number; sharePct: number }[] {
    const all = [...this.statements.entries()].map(([label, s]) => {
      const sum = s.ms.reduce((a, b) => a + b, 0);
      return { label, count: s.count, sum, summary: summarize(s.ms) };
    });
    const total = all.reduce((a, r) => a + r.sum, 0) || 1;
    return all
      .sort((a, b) => b.sum - a.sum)
      .slice(0, top)
      .map((r) => ({ label: r.label, perExec: r.count / perExec, mean: r.summary.mean, p99: r.summary.p99, sharePct: (100 * r.sum) / total }));
  }

  /** A Database that reports every statement here, otherwise the same as `db`. */
  wrap(db: Database): Database {
    const probe = this;
    const wrapQ = (q: Queryable, counter?: { n: number }): Queryable => ({
      async query<T = Row>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
        const t = performance.now();
        try {
          return await q.query<T>(sql, params);
        } finally {
          probe.record(statementLabel(sql), performance.now() - t);
          if (counter) counter.n++;
        }
      },
      async exec(sql: string): Promise<void> {
        const t = performance.now();
        try {
          await q.exec(sql);
        } finally {
          probe.record(statementLabel(sql), performance.now() - t);
          if (counter) counter.n++;
        }
      },
    });
    const base = wrapQ(db);
    return {
      kind: db.kind,
      query: base.query,
      exec: base.exec,
      async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
        const t = performance.now();
        const counter = { n: 0 };
        try {
          return await db.transaction((tx) => fn(wrapQ(tx, counter)));
        } finally {
          probe.transactions++;
          probe.transactionMs.push(performance.now() - t);
          probe.statementsPerTransaction.push(counter.n);
        }
      },
      withSession: (fn) => db.withSession((s) => fn(wrapQ(s))),
      listen: (channel, onMessage) => db.listen(channel, onMessage),
      onReconnect: (fn) => db.onReconnect(fn),
      connectionState: () => db.connectionState(),
      async notify(channel: string, payload: string): Promise<void> {
        const t = performance.now();
        try {
          await db.notify(channel, payload);
        } finally {
          probe.record(`NOTIFY ${channel} (db.notify)`, performance.now() - t);
        }
      },
      close: () => db.close(),
    };
  }

  /** A pg.Pool whose clients report every query here (for graphile-worker, which takes `pgPool`). */
  pool(url: string, max: number): pg.Pool {
    const pool = new pg.Pool({ connectionString: url, max });
    pool.on('error', () => {});
    pool.on('connect', (client) => {
      const orig = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const q = args[0] as string | { name?: string; text?: string } | undefined;
        const label = typeof q === 'string' ? statementLabel(q) : q?.name ? `${q.name} (prepared)` : statementLabel(q?.text ?? '?');
        const t = performance.now();
        const r = orig(...args);
        const done = () => this.record(label, performance.now() - t);
        if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(done, done);
        else done();
        return r;
      };
    });
    return pool;
  }
}

// Labels are memoised: the regexes below would otherwise cost more for long statements than short
// ones and bias the CPU column against the system with the longer SQL.
const labels = new Map<string, string>();
function statementLabel(sql: string): string {
  let l = labels.get(sql);
  if (l === undefined) labels.set(sql, (l = computeLabel(sql)));
  return l;
}

function computeLabel(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  if (s.startsWith('WITH candidates AS')) return 'claimExecutions: WITH candidates … FOR UPDATE SKIP LOCKED';
  if (s.startsWith('WITH expired AS')) return 'reapExpiredLeases: WITH expired …';
  const short = s.replace(/ AND EXISTS \(SELECT 1 FROM executions x WHERE .*$/, ' AND <fence>');
  return short.length > 72 ? short.slice(0, 71) + '…' : short;
}

/* ------------------------------------------------------------------------------------------------
 * Shared pieces
 * ---------------------------------------------------------------------------------------------- */

/** Counts finished executions/jobs in-process and lets the bench wait for a number of them. */
class Completion {
  finished = 0;
  failed = 0;
  lastAt = 0;
  private readonly waiters = new Set<{ n: number; resolve: () => void }>();

  tick(ok: boolean): void {
    this.finished++;
    if (!ok) this.failed++;
    this.lastAt = performance.now();
    for (const w of this.waiters) if (this.finished >= w.n) w.resolve();
  }

  waitFor(n: number, timeoutMs: number): Promise<boolean> {
    if (this.finished >= n) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = {
        n,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(w);
    });
  }
}

interface Target {
  url: string;
  hits: () => number;
  close: () => Promise<void>;
}

/** The "no-op" work: an HTTP server that answers 204 at once. */
async function startTarget(): Promise<Target> {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.writeHead(204);
    res.end();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/ping`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * What the graphile-worker and pg-boss tasks do: the request the vecron http step makes, with the
 * same client (undici's `request`, from the same package, with the same default headers; vecron's
 * step passes its egress dispatcher). Until 2026-12-03 all three used undici's fetch.
 */
async function ping(url: string): Promise<void> {
  const res = await undiciRequest(url, { headers: { accept: '*/*', 'accept-encoding': 'gzip, deflate' } });
  await res.body.arrayBuffer();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`GET ${url} answered ${res.statusCode}`);
}

interface Ctx {
  benchUrl: string;
  target: Target;
  config: Config;
  logger: Logger;
  blobs: BlobStore;
  setupDb: Database;
}

function jobDocument(name: string, targetUrl: string, schedule: unknown = null) {
  return parseJobDocument({
    name,
    schedule,
    max_retries: 0,
    steps: [{ id: 'ping', type: 'http', config: { url: targetUrl, method: 'GET' } }],
  });
}

interface VecronWorkerHandle {
  worker: Worker;
  done: Completion;
  stop(): Promise<void>;
}

/** A vecron worker with its services built the way src/app.ts builds them. */
async function startVecronWorker(db: Database, ctx: Ctx): Promise<VecronWorkerHandle> {
  const metrics = createMetrics();
  const done = new Completion();
  // Count final outcomes in-process: the worker increments this counter right after it has
  // committed the outcome (state/finish.ts), i.e. when `executions.status` is final.
  const counter = metrics.executionsFinished as unknown as { inc: (...args: unknown[]) => void };
  const inc = counter.inc.bind(counter);
  counter.inc = (...args: unknown[]) => {
    inc(...args);
    done.tick((args[0] as { status?: string } | undefined)?.status === 'succeeded');
  };
  const worker = new Worker(
    {
      db,
      logger: ctx.logger.child({ component: 'worker' }),
      metrics,
      services: { db, blobs: ctx.blobs, config: ctx.config, logger: ctx.logger },
      // As src/app.ts does: variables come with the claim and are merged here.
      loadVariables: async (exec, documentVariables): Promise<RunVariables> =>
        mergeRunVariables(exec.variable_rows ?? [], secretKeyFor(ctx.config), documentVariables),
    },
    { concurrency: CONCURRENCY, leaseSeconds: LEASE_SECONDS, pollIntervalMs: POLL_INTERVAL_MS },
  );
  await worker.start();
  // As src/app.ts does in every process: the busy tables analyzed as they grow (src/db/upkeep.ts).
  const stopUpkeep = ctx.config.dbUpkeepSeconds > 0 ? startTableUpkeep(db, ctx.config.dbUpkeepSeconds * 1000, (err) => log(`upkeep: ${err}`)) : null;
  return {
    worker,
    done,
    async stop() {
      await stopUpkeep?.();
      // All work has finished when the bench stops a worker; a short grace also keeps
      // Worker.stop's grace timer (it is not cleared) from holding the process open for long.
      await worker.stop(2_000);
    },
  };
}

async function enqueueVecron(db: Database, job: JobRecord, n: number): Promise<void> {
  for (let i = 0; i < n; i += ENQUEUE_BATCH) {
    const k = Math.min(ENQUEUE_BATCH, n - i);
    await Promise.all(Array.from({ length: k }, () => enqueueExecution(db, job, { trigger: { type: 'manual', time: new Date().toISOString() } })));
  }
}

/* ------------------------------------------------------------------------------------------------
 * 1. Throughput
 * ---------------------------------------------------------------------------------------------- */

interface StatementRow {
  label: string;
  perExec: number;
  mean: number;
  p99: number;
  sharePct: number;
}

interface ThroughputResult {
  system: string;
  database: string;
  extra: boolean;
  n: number;
  completed: number;
  failed: number;
  timedOut: boolean;
  wallMs: number;
  enqueueMs: number;
  perSec: number;
  workerRoundTrips?: number;
  producerRoundTrips?: number;
  xactsPerExec?: number;
  writesPerExec?: number;
  statements?: StatementRow[];
  producerStatements?: StatementRow[];
  enqueueTxMs?: Summary;
  /** CPU time of this (the only Node) process per execution: worker, enqueuer and target server. */
  nodeCpuMsPerExec: number;
  machineBusyPct: number | null;
  /** CPU time of the PostgreSQL backends serving it, per execution (null where /proc cannot tell). */
  pgCpuMsPerExec?: number | null;
  /** `quiet` or `loaded (N burners)`. */
  condition?: string;
  /** executions/s of every round; the row shows the best one. */
  rounds?: number[];
  verified: string;
}

function throughputOf(completed: number, wallMs: number): number {
  return completed / (wallMs / 1000);
}

async function vecronThroughputPostgres(ctx: Ctx): Promise<ThroughputResult> {
  const workerProbe = new Probe();
  const producerProbe = new Probe();
  const workerDb = workerProbe.wrap(await openPostgres(ctx.benchUrl, { poolSize: POOL_SIZE }));
  const producerDb = producerProbe.wrap(await openPostgres(ctx.benchUrl, { poolSize: POOL_SIZE }));
  const job = await createJob(ctx.setupDb, jobDocument(`throughput-postgres-${randomBytes(3).toString('hex')}`, ctx.target.url), 'bench');
  const w = await startVecronWorker(workerDb, ctx);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await w.stop();
    await workerDb.close();
    await producerDb.close();
  };
  try {
    if (WARMUP) {
      await enqueueVecron(producerDb, job, WARMUP);
      await w.done.waitFor(WARMUP, THROUGHPUT_TIMEOUT_MS);
    }
    await sleep(1100); // idle backends report their statistics at most once a second
    const before = await dbCounters(ctx.setupDb);
    workerProbe.reset();
    producerProbe.reset();
    const base = w.done.finished;
    const pgCpu = pgCpuMeter(ctx.setupDb);
    await pgCpu.start();
    const cpu = cpuMeter();
    const t0 = performance.now();
    await enqueueVecron(producerDb, job, N);
    const enqueueMs = performance.now() - t0;
    const ok = await w.done.waitFor(base + N, THROUGHPUT_TIMEOUT_MS);
    const completed = w.done.finished - base;
    const wallMs = (ok ? w.done.lastAt : performance.now()) - t0;
    const used = cpu();
    const pgMs = await pgCpu.stop();
    const failed = w.done.failed;
    await close();
    await sleep(700); // closed backends flush their statistics on exit
    const after = await dbCounters(ctx.setupDb);
    const verified = await verifyVecron(ctx.setupDb, job.id, WARMUP + N);
    return {
      system: 'vecron',
      database: 'PostgreSQL',
      extra: false,
      n: N,
      completed,
      failed,
      timedOut: !ok,
      wallMs,
      enqueueMs,
      perSec: throughputOf(completed, wallMs),
      workerRoundTrips: workerProbe.roundTrips / completed,
      producerRoundTrips: producerProbe.roundTrips / N,
      xactsPerExec: (after.xacts - before.xacts) / N,
      writesPerExec: (after.writes - before.writes) / N,
      statements: workerProbe.rows(completed),
      producerStatements: producerProbe.rows(N),
      enqueueTxMs: summarize(producerProbe.transactionMs),
      nodeCpuMsPerExec: used.processMs / N,
      machineBusyPct: used.machineBusyPct,
      pgCpuMsPerExec: pgMs === null ? null : pgMs / N,
      condition: loadCondition(),
      verified,
    };
  } finally {
    await close().catch((err) => log(`closing vecron: ${err}`));
  }
}

async function verifyVecron(db: Queryable, jobId: string, expected: number): Promise<string> {
  const { rows } = await db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM executions WHERE job_id = $1 GROUP BY status ORDER BY status`,
    [jobId],
  );
  const succeeded = rows.find((r) => r.status === 'succeeded')?.n ?? 0;
  const text = rows.map((r) => `${r.n} ${r.status}`).join(', ');
  return succeeded === expected ? `${succeeded}/${expected} succeeded in executions` : `MISMATCH: ${text} (expected ${expected} succeeded)`;
}

async function vecronThroughputPglite(ctx: Ctx): Promise<ThroughputResult> {
  const t = performance.now();
  const raw = wrapPglite(await PGlite.create());
  await migrate(raw);
  log(`PGlite in memory created and migrated in ${fmtMs(performance.now() - t)}`);
  const probe = new Probe();
  const db = probe.wrap(raw);
  const job = await createJob(db, jobDocument('throughput-pglite', ctx.target.url), 'bench');
  const w = await startVecronWorker(db, ctx);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await w.stop();
    await raw.close();
  };
  try {
    if (WARMUP) {
      await enqueueVecron(db, job, WARMUP);
      await w.done.waitFor(WARMUP, THROUGHPUT_TIMEOUT_MS);
    }
    probe.reset();
    const base = w.done.finished;
    const cpu = cpuMeter();
    const t0 = performance.now();
    await enqueueVecron(db, job, N);
    const enqueueMs = performance.now() - t0;
    const ok = await w.done.waitFor(base + N, THROUGHPUT_TIMEOUT_MS);
    const completed = w.done.finished - base;
    const wallMs = (ok ? w.done.lastAt : performance.now()) - t0;
    const used = cpu();
    await w.stop();
    const verified = await verifyVecron(raw, job.id, WARMUP + N);
    return {
      system: 'vecron',
      database: 'PGlite (embedded, in memory) — extra row',
      extra: true,
      n: N,
      completed,
      failed: w.done.failed,
      timedOut: !ok,
      wallMs,
      enqueueMs,
      perSec: throughputOf(completed, wallMs),
      workerRoundTrips: probe.roundTrips / N, // worker and producer share the one connection
      nodeCpuMsPerExec: used.processMs / N,
      machineBusyPct: used.machineBusyPct,
      condition: loadCondition(),
      verified,
    };
  } finally {
    await close().catch((err) => log(`closing PGlite: ${err}`));
  }
}

const graphileLogger = new GraphileLogger(() => (level, message) => {
  if (String(level) === 'error' || String(level) === 'warning') process.stderr.write(`[graphile-worker] ${level}: ${message}\n`);
});

interface GraphileHandle {
  runner: Runner;
  pool: pg.Pool;
  done: Completion;
  stop(): Promise<void>;
}

async function startGraphile(ctx: Ctx, probe: Probe, taskList: TaskList): Promise<GraphileHandle> {
  // Pool of 10 for the work plus the one LISTEN connection graphile-worker takes from it
  // (vecron: a pool of 10 plus its own LISTEN connection).
  const pool = probe.pool(ctx.benchUrl, POOL_SIZE + 1);
  const done = new Completion();
  const events = new EventEmitter() as WorkerEvents;
  // 'job:complete' comes right after the worker has *started* to record the outcome (completeJob
  // is not awaited); the throughput run therefore also waits for the jobs table to be empty.
  events.on('job:complete', ({ error }) => done.tick(!error));
  const runner = await runGraphile({
    pgPool: pool,
    concurrency: CONCURRENCY,
    pollInterval: POLL_INTERVAL_MS,
    taskList,
    noHandleSignals: true,
    logger: graphileLogger,
    events,
  });
  let stopped = false;
  return {
    runner,
    pool,
    done,
    async stop() {
      if (stopped) return;
      stopped = true;
      await runner.stop();
      await pool.end();
    },
  };
}

async function graphileQueued(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM graphile_worker._private_jobs`);
  return rows[0].n;
}

async function graphileThroughput(ctx: Ctx): Promise<ThroughputResult> {
  const workerProbe = new Probe();
  const producerProbe = new Probe();
  const g = await startGraphile(ctx, workerProbe, { bench_ping: async () => ping(ctx.target.url) });
  const producerPool = producerProbe.pool(ctx.benchUrl, POOL_SIZE);
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: producerPool, logger: graphileLogger });
  const add = async (n: number) => {
    for (let i = 0; i < n; i += ENQUEUE_BATCH) {
      const k = Math.min(ENQUEUE_BATCH, n - i);
      await Promise.all(Array.from({ length: k }, () => utils.addJob('bench_ping', {}, { maxAttempts: 1 })));
    }
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await g.stop();
    await utils.release();
    await producerPool.end();
  };
  try {
    if (WARMUP) {
      await add(WARMUP);
      await g.done.waitFor(WARMUP, THROUGHPUT_TIMEOUT_MS);
    }
    await sleep(1100);
    const before = await dbCounters(ctx.setupDb);
    workerProbe.reset();
    producerProbe.reset();
    const base = g.done.finished;
    const pgCpu = pgCpuMeter(ctx.setupDb);
    await pgCpu.start();
    const cpu = cpuMeter();
    const t0 = performance.now();
    await add(N);
    const enqueueMs = performance.now() - t0;
    let ok = await g.done.waitFor(base + N, THROUGHPUT_TIMEOUT_MS);
    // Finished = deleted from the jobs table (graphile-worker deletes a job once it succeeded).
    const failedSoFar = g.done.failed;
    while (ok && (await graphileQueued(ctx.setupDb)) > failedSoFar) {
      if (performance.now() - t0 > THROUGHPUT_TIMEOUT_MS) ok = false;
      await sleep(2);
    }
    const completed = g.done.finished - base;
    const wallMs = performance.now() - t0;
    const used = cpu();
    const pgMs = await pgCpu.stop();
    await close();
    await sleep(700);
    const after = await dbCounters(ctx.setupDb);
    const left = await graphileQueued(ctx.setupDb);
    return {
      system: `graphile-worker ${GRAPHILE_VERSION}`,
      database: 'PostgreSQL',
      extra: false,
      n: N,
      completed,
      failed: g.done.failed,
      timedOut: !ok,
      wallMs,
      enqueueMs,
      perSec: throughputOf(completed, wallMs),
      workerRoundTrips: workerProbe.roundTrips / completed,
      producerRoundTrips: producerProbe.roundTrips / N,
      xactsPerExec: (after.xacts - before.xacts) / N,
      writesPerExec: (after.writes - before.writes) / N,
      statements: workerProbe.rows(completed),
      producerStatements: producerProbe.rows(N),
      nodeCpuMsPerExec: used.processMs / N,
      machineBusyPct: used.machineBusyPct,
      pgCpuMsPerExec: pgMs === null ? null : pgMs / N,
      condition: loadCondition(),
      verified: left === 0 ? `${completed} task completions counted, jobs table empty` : `MISMATCH: ${left} jobs left in graphile_worker.jobs`,
    };
  } finally {
    await close().catch((err) => log(`closing graphile-worker: ${err}`));
  }
}

/**
 * pg-boss, as its documentation has a worker run: `work()` called once per concurrent worker (8
 * here, as vecron's and graphile-worker's concurrency), each fetching up to PGBOSS_BATCH jobs per
 * poll and running them one after the other (so at most 8 requests are in flight), then
 * completing the batch in one statement. pg-boss has no wake-up on insert: a worker polls every
 * pollingIntervalSeconds (0.5 s, its minimum) and waits for the rest of the interval after each
 * batch. A larger batch is how pg-boss is made to go fast; with a batch of 1 this setup would be
 * bound to 8 jobs per 0.5 s.
 */
async function pgBossThroughput(ctx: Ctx): Promise<ThroughputResult> {
  const workerProbe = new Probe();
  const producerProbe = new Probe();
  const workerPool = workerProbe.pool(ctx.benchUrl, POOL_SIZE);
  const producerPool = producerProbe.pool(ctx.benchUrl, POOL_SIZE);
  const asDb = (pool: pg.Pool) => ({ executeSql: (text: string, values: unknown[]) => pool.query(text, values as unknown[]) });
  const queue = `bench_ping_${randomBytes(3).toString('hex')}`;
  // The worker side: no cron or maintenance work during the run (supervise off, as graphile-worker's runner does none either).
  const boss = new PgBoss({ db: asDb(workerPool), schedule: false, supervise: false, migrate: false });
  const producer = new PgBoss({ db: asDb(producerPool), schedule: false, supervise: false, migrate: false });
  boss.on('error', (err) => log(`pg-boss: ${err.message}`));
  producer.on('error', (err) => log(`pg-boss producer: ${err.message}`));
  await boss.start();
  await producer.start();
  await boss.createQueue(queue);
  const done = new Completion();
  for (let i = 0; i < CONCURRENCY; i++) {
    await boss.work(queue, { batchSize: PGBOSS_BATCH, pollingIntervalSeconds: PGBOSS_POLL_SECONDS }, async (jobs) => {
      for (const _ of jobs) {
        try {
          await ping(ctx.target.url);
          done.tick(true);
        } catch (err) {
          done.tick(false);
          throw err;
        }
      }
    });
  }
  const add = async (n: number) => {
    for (let i = 0; i < n; i += ENQUEUE_BATCH) {
      const k = Math.min(ENQUEUE_BATCH, n - i);
      await Promise.all(Array.from({ length: k }, () => producer.send(queue, {}, { retryLimit: 0 })));
    }
  };
  // pg-boss keeps completed jobs (archived later): finished = no job of the queue left in another state.
  const unfinished = async () =>
    (await ctx.setupDb.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state <> 'completed'`, [queue])).rows[0].n;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await boss.stop({ graceful: true, wait: true, timeout: 5000 });
    await producer.stop({ graceful: false, wait: true, timeout: 1000 });
    await workerPool.end();
    await producerPool.end();
  };
  try {
    if (WARMUP) {
      await add(WARMUP);
      await done.waitFor(WARMUP, THROUGHPUT_TIMEOUT_MS);
    }
    await sleep(1100);
    const before = await dbCounters(ctx.setupDb);
    workerProbe.reset();
    producerProbe.reset();
    const base = done.finished;
    const pgCpu = pgCpuMeter(ctx.setupDb);
    await pgCpu.start();
    const cpu = cpuMeter();
    const t0 = performance.now();
    await add(N);
    const enqueueMs = performance.now() - t0;
    let ok = await done.waitFor(base + N, THROUGHPUT_TIMEOUT_MS);
    // complete() is sent after the batch's handler returned and not awaited by pg-boss: wait for it.
    const failedSoFar = done.failed;
    while (ok && (await unfinished()) > failedSoFar) {
      if (performance.now() - t0 > THROUGHPUT_TIMEOUT_MS) ok = false;
      await sleep(2);
    }
    const completed = done.finished - base;
    const wallMs = performance.now() - t0;
    const used = cpu();
    const pgMs = await pgCpu.stop();
    await close();
    await sleep(700);
    const after = await dbCounters(ctx.setupDb);
    const left = await unfinished();
    return {
      system: `pg-boss ${PGBOSS_VERSION}`,
      database: 'PostgreSQL',
      extra: false,
      n: N,
      completed,
      failed: done.failed,
      timedOut: !ok,
      wallMs,
      enqueueMs,
      perSec: throughputOf(completed, wallMs),
      workerRoundTrips: workerProbe.roundTrips / completed,
      producerRoundTrips: producerProbe.roundTrips / N,
      xactsPerExec: (after.xacts - before.xacts) / N,
      writesPerExec: (after.writes - before.writes) / N,
      statements: workerProbe.rows(completed),
      producerStatements: producerProbe.rows(N),
      nodeCpuMsPerExec: used.processMs / N,
      machineBusyPct: used.machineBusyPct,
      pgCpuMsPerExec: pgMs === null ? null : pgMs / N,
      condition: loadCondition(),
      verified:
        left === 0 ? `${completed} handler completions counted, every job completed in pgboss.job` : `MISMATCH: ${left} jobs not completed in pgboss.job`,
    };
  } finally {
    await close().catch((err) => log(`closing pg-boss: ${err}`));
  }
}

/* ------------------------------------------------------------------------------------------------
 * 2. Lag from due time to step start
 * ---------------------------------------------------------------------------------------------- */

interface LagResult {
  system: string;
  condition: string;
  how: string;
  expected: number;
  lag: Summary;
  segments?: { name: string; s: Summary }[];
  fireTx?: { ms: Summary; statements: Summary };
  notes: string[];
}

async function vecronLag(ctx: Ctx): Promise<LagResult> {
  const probe = new Probe();
  const db = probe.wrap(await openPostgres(ctx.benchUrl, { poolSize: POOL_SIZE }));
  const tag = randomBytes(3).toString('hex');
  const jobIds: string[] = [];
  for (let i = 0; i < LAG_JOBS; i++) {
    const def = jobDocument(`lag-${tag}-${i}`, ctx.target.url, { type: 'cron', expression: '*/1 * * * * *', timezone: 'UTC' });
    jobIds.push((await createJob(ctx.setupDb, def, 'bench')).id);
  }
  // One process with the scheduler and worker roles, as src/app.ts starts them (one pool).
  const w = await startVecronWorker(db, ctx);
  const scheduler = new Scheduler(
    db,
    { intervalMs: ctx.config.schedulerIntervalMs, misfireThresholdMs: ctx.config.misfireThresholdSeconds * 1000, lookaheadMs: ctx.config.schedulerLookaheadMs },
    ctx.logger.child({ component: 'scheduler' }),
  );
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await scheduler.stop();
    await w.stop();
    await db.close();
  };
  try {
    const startedAt = Date.now();
    await scheduler.start();
    // Run until LAG_SECONDS whole seconds have fired (the first fire time is the next whole second).
    const until = (Math.floor(startedAt / 1000) + LAG_SECONDS) * 1000 + 500;
    await sleep(until - Date.now());
    await scheduler.stop();
    // Let the last fire times finish.
    for (let i = 0; i < 100; i++) {
      const { rows } = await ctx.setupDb.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM executions WHERE job_id = ANY($1::uuid[]) AND status IN ('queued', 'running')`,
        [jobIds],
      );
      if (rows[0].n === 0) break;
      await sleep(50);
    }
    await stop();
    // Later phases (the loaded rows) must not meet these jobs: disable them, drop what they left queued.
    await ctx.setupDb.query(`UPDATE jobs SET enabled = false WHERE id = ANY($1::uuid[])`, [jobIds]);
    await ctx.setupDb.query(`DELETE FROM executions WHERE job_id = ANY($1::uuid[]) AND status IN ('queued', 'running')`, [jobIds]);
    const { rows } = await ctx.setupDb.query<{ fire_time: Date; created_at: Date; claimed_at: Date | null; step_started_at: Date | null; status: string }>(
      `SELECT e.fire_time, e.created_at, e.started_at AS claimed_at, s.started_at AS step_started_at, e.status
       FROM executions e JOIN step_runs s ON s.execution_id = e.id AND s.position = 0
       WHERE e.job_id = ANY($1::uuid[]) AND e.trigger_type = 'schedule'
       ORDER BY e.fire_time`,
      [jobIds],
    );
    const started = rows.filter((r) => r.step_started_at && r.claimed_at);
    const ms = (a: Date, b: Date) => a.getTime() - b.getTime();
    const fireSeconds = new Set(rows.map((r) => r.fire_time.getTime())).size;
    const notStarted = rows.length - started.length;
    const notes = [`${rows.length} executions for ${fireSeconds} fire times × ${LAG_JOBS} jobs`];
    if (notStarted) notes.push(`${notStarted} never started`);
    const notOk = rows.filter((r) => r.status !== 'succeeded').length;
    if (notOk) notes.push(`${notOk} did not succeed`);
    // With more jobs due at once than slots, the last ones of a second wait for a slot to free up.
    const bySecond = new Map<number, typeof started>();
    for (const r of started) {
      const k = r.fire_time.getTime();
      if (!bySecond.has(k)) bySecond.set(k, []);
      bySecond.get(k)!.push(r);
    }
    const freeSlot: number[] = [];
    const waited: number[] = [];
    for (const group of bySecond.values()) {
      group.sort((a, b) => a.claimed_at!.getTime() - b.claimed_at!.getTime());
      group.forEach((r, i) => (i < CONCURRENCY ? freeSlot : waited).push(ms(r.step_started_at!, r.fire_time)));
    }
    return {
      system: 'vecron',
      condition: loadCondition(),
      how: `${LAG_JOBS} cron jobs \`*/1 * * * * *\`, Scheduler + Worker in one process`,
      expected: fireSeconds * LAG_JOBS,
      lag: summarize(started.map((r) => ms(r.step_started_at!, r.fire_time))),
      segments: [
        { name: 'fire time → scheduler transaction start (executions.created_at)', s: summarize(started.map((r) => ms(r.created_at, r.fire_time))) },
        { name: 'scheduler transaction start → claimed (executions.started_at)', s: summarize(started.map((r) => ms(r.claimed_at!, r.created_at))) },
        { name: 'claimed → step start (step_runs.started_at)', s: summarize(started.map((r) => ms(r.step_started_at!, r.claimed_at!))) },
        { name: `whole lag, the first ${CONCURRENCY} of each second (a slot was free)`, s: summarize(freeSlot) },
        ...(waited.length ? [{ name: `whole lag, the others (waited for one of the ${CONCURRENCY} slots)`, s: summarize(waited) }] : []),
      ],
      // Rounds with nothing due run a transaction with only the SELECT; keep the ones that fired.
      fireTx: {
        ms: summarize(probe.transactionMs.filter((_, i) => probe.statementsPerTransaction[i] > 1)),
        statements: summarize(probe.statementsPerTransaction.filter((n) => n > 1)),
      },
      notes,
    };
  } finally {
    await stop().catch((err) => log(`stopping the vecron scheduler: ${err}`));
  }
}

async function graphileLag(ctx: Ctx): Promise<LagResult> {
  const lags: number[] = [];
  const g = await startGraphile(ctx, new Probe(), {
    bench_lag: async (_payload, helpers) => {
      lags.push(Date.now() - helpers.job.run_at.getTime());
      await ping(ctx.target.url);
    },
  });
  const utils = await makeWorkerUtils({ connectionString: ctx.benchUrl, logger: graphileLogger });
  try {
    const first = (Math.floor(Date.now() / 1000) + 2) * 1000;
    const specs = [];
    for (let s = 0; s < LAG_SECONDS; s++) {
      for (let k = 0; k < LAG_JOBS; k++) specs.push({ identifier: 'bench_lag', payload: {}, runAt: new Date(first + s * 1000), maxAttempts: 1 });
    }
    await utils.addJobs(specs);
    const expected = specs.length;
    const lastDue = first + (LAG_SECONDS - 1) * 1000;
    await g.done.waitFor(expected, Math.max(0, lastDue - Date.now()) + POLL_INTERVAL_MS + 5000);
    const notes = [`${lags.length} of ${expected} jobs started`];
    if (g.done.failed) notes.push(`${g.done.failed} failed`);
    return {
      system: `graphile-worker ${GRAPHILE_VERSION}`,
      condition: loadCondition(),
      how: `${LAG_JOBS} jobs per second with runAt = the next whole seconds, pollInterval ${POLL_INTERVAL_MS} ms`,
      expected,
      lag: summarize(lags),
      notes,
    };
  } finally {
    await Promise.resolve(utils.release()).catch(() => {});
    await g.stop().catch((err) => log(`stopping graphile-worker: ${err}`));
  }
}

/* ------------------------------------------------------------------------------------------------
 * Latency of single operations on an idle database
 * ---------------------------------------------------------------------------------------------- */

async function timed(n: number, fn: (i: number) => Promise<unknown>): Promise<Summary> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    ms.push(performance.now() - t);
  }
  return summarize(ms);
}

async function idleLatencies(ctx: Ctx): Promise<{ name: string; s: Summary }[]> {
  const db = await openPostgres(ctx.benchUrl, { poolSize: 2 });
  try {
    const out: { name: string; s: Summary }[] = [];
    await timed(20, () => db.query('SELECT 1'));
    out.push({ name: '`SELECT 1` round trip (pool)', s: await timed(200, () => db.query('SELECT 1')) });
    let deliver: (() => void) | null = null;
    const unlisten = await db.listen('bench_ping', () => deliver?.());
    out.push({
      name: 'NOTIFY → LISTEN callback (db.notify to delivery)',
      s: await timed(200, (i) => {
        const p = new Promise<void>((r) => (deliver = r));
        return db.notify('bench_ping', String(i)).then(() => p);
      }),
    });
    await unlisten();
    out.push({
      name: 'claimExecutions on an empty queue (limit 8)',
      s: await timed(200, () => claimExecutions(db, 'bench-probe', CONCURRENCY, LEASE_SECONDS)),
    });
    const job = await createJob(db, jobDocument(`latency-${randomBytes(3).toString('hex')}`, ctx.target.url), 'bench');
    out.push({
      name: 'enqueueExecution() of one execution (one statement: row, event, NOTIFY)',
      s: await timed(100, () => enqueueExecution(db, job, { trigger: { type: 'manual', time: new Date().toISOString() } })),
    });
    // Node side: the engine calls loadExecutor() (a dynamic import) for every step it runs.
    await stepDefinitions.http.loadExecutor();
    out.push({ name: 'stepDefinitions.http.loadExecutor() (dynamic import, Node side)', s: await timed(500, () => stepDefinitions.http.loadExecutor()) });
    return out;
  } finally {
    await db.close();
  }
}

/* ------------------------------------------------------------------------------------------------
 * Report
 * ---------------------------------------------------------------------------------------------- */

interface Results {
  throughput: ThroughputResult[];
  lag: LagResult[];
  idle: { name: string; s: Summary }[];
  pgVersion: string;
  totalMs: number;
  loadStart: number[];
  loadEnd: number[];
  /** Load average (1/5/15 min) at the end of the loaded rows ([] without them). */
  loadLoaded: number[];
}

function throughputTable(rs: ThroughputResult[]): string {
  return markdownTable(
    [
      'system',
      'database',
      'condition',
      'executions/s',
      `wall time (${fmtNum(N)})`,
      'enqueue done after',
      'statements/exec: worker + enqueue',
      'DB xacts/exec',
      'row writes/exec',
      'Node CPU/exec',
      'PostgreSQL CPU/exec',
      'machine CPU busy',
    ],
    rs.map((r) => [
      r.system,
      r.database,
      r.condition ?? 'quiet',
      `**${fmtNum(r.perSec)}**${r.timedOut ? ` (INCOMPLETE: ${r.completed}/${r.n})` : ''}`,
      fmtMs(r.wallMs),
      fmtMs(r.enqueueMs),
      r.workerRoundTrips === undefined
        ? 'n/a'
        : r.producerRoundTrips === undefined
          ? `${r.workerRoundTrips.toFixed(1)} (one connection)`
          : `${r.workerRoundTrips.toFixed(1)} + ${r.producerRoundTrips.toFixed(1)}`,
      r.xactsPerExec === undefined ? 'n/a' : r.xactsPerExec.toFixed(1),
      r.writesPerExec === undefined ? 'n/a' : r.writesPerExec.toFixed(1),
      fmtMs(r.nodeCpuMsPerExec),
      r.pgCpuMsPerExec == null ? 'n/a' : fmtMs(r.pgCpuMsPerExec),
      r.machineBusyPct === null ? 'n/a' : `${r.machineBusyPct.toFixed(0)} %`,
    ]),
    ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}

function statementsTable(rows: StatementRow[]): string {
  return markdownTable(
    ['statement', 'per exec', 'mean', 'p99', 'share of DB time'],
    rows.map((r) => [`\`${r.label.replace(/`/g, "'")}\``, r.perExec.toFixed(2), fmtMs(r.mean), fmtMs(r.p99), `${r.sharePct.toFixed(0)} %`]),
    ['left', 'right', 'right', 'right', 'right'],
  );
}

/** Median of the ratios of rounds run back to back (round i of `a` over round i of `b`), and the ratios. */
function pairedRatio(a?: ThroughputResult, b?: ThroughputResult): { median: number; pairs: number[] } {
  const pairs = (a?.rounds ?? []).map((x, i) => x / (b?.rounds?.[i] ?? NaN)).filter(Number.isFinite);
  const median = pairs.length ? [...pairs].sort((x, y) => x - y)[Math.floor(pairs.length / 2)] : NaN;
  return { median, pairs };
}

function report(res: Results, m: ReturnType<typeof machineInfo>): { markdown: string; ok: boolean } {
  const find = (cond: 'quiet' | 'loaded', sys: string) =>
    res.throughput.find((r) => !r.extra && (r.condition ?? 'quiet').startsWith(cond) && r.system.startsWith(sys));
  const v = find('quiet', 'vecron');
  const g = find('quiet', 'graphile');
  const b = find('quiet', 'pg-boss');
  const vl = res.lag.find((r) => r.system === 'vecron' && r.condition === 'quiet');
  const vlLoaded = res.lag.find((r) => r.system === 'vecron' && r.condition !== 'quiet');
  const gl = res.lag.find((r) => r.system.startsWith('graphile'));
  const ratio = v && g ? v.perSec / g.perSec : NaN;
  // Rounds alternate (vecron round i, then graphile-worker and pg-boss round i), so each pair ran
  // under the same conditions; on a machine whose speed drifts by ±10 % from minute to minute, the
  // median of the paired ratios is the steadiest comparison, and it decides the goal.
  const ratioLine = (cond: 'quiet' | 'loaded'): { ok: boolean; text: string } | null => {
    const [cv, cg, cb] = [find(cond, 'vecron'), find(cond, 'graphile'), find(cond, 'pg-boss')];
    if (!cv || !cg) return null;
    const pg = pairedRatio(cv, cg);
    const pb = pairedRatio(cv, cb);
    const ok = pg.median >= THROUGHPUT_GOAL;
    const fmt = (r: { median: number; pairs: number[] }) =>
      `${Number.isFinite(r.median) ? r.median.toFixed(2) : 'n/a'} (pairs ${r.pairs.map((x) => x.toFixed(2)).join(', ')})`;
    return {
      ok,
      text:
        `- vecron throughput at least ${THROUGHPUT_GOAL}× graphile-worker's, ${cv.condition}: **${ok ? 'met' : 'NOT met'}** ` +
        `(median of the ${pg.pairs.length} paired round ratios ${fmt(pg)}; best rounds ${fmtNum(cv.perSec)} vs ${fmtNum(cg.perSec)} executions/s). ` +
        `Against pg-boss ${PGBOSS_VERSION} (no goal): ${fmt(pb)}${cb ? `, best rounds ${fmtNum(cv.perSec)} vs ${fmtNum(cb.perSec)}` : ''}.`,
    };
  };
  const out: string[] = [];
  const loads = (l: number[]) => l.map((x) => x.toFixed(1)).join(' / ');

  out.push(
    `Run ${m.date} on ${m.nproc} CPUs (\`nproc\`; ${m.cpu}, ${m.memoryGiB} GiB), Node ${m.node} (${m.platform}), ` +
      `PostgreSQL ${res.pgVersion}, ` +
      `graphile-worker ${GRAPHILE_VERSION}, pg-boss ${PGBOSS_VERSION}. Command: \`${benchCommand('bench/queue.ts')}\` ` +
      `(N=${N}, concurrency ${CONCURRENCY}, ${ROUNDS} throughput round(s) per system and condition, ${LAG_JOBS} due per second for ${LAG_SECONDS} s; ` +
      `the whole suite took ${fmtMs(res.totalMs)}). Load average at start ${loads(res.loadStart)}` +
      (res.loadLoaded.length ? `, at the end of the loaded rows ${loads(res.loadLoaded)}` : '') +
      `, at the end ${loads(res.loadEnd)} (1/5/15 min)` +
      (res.loadStart[0] > m.nproc * 0.5
        ? ': **other processes were using the machine**, so absolute numbers are low and noisy; the ratios are the useful part.'
        : '.') +
      ` "Loaded" rows ran with a CPU burner per core (bench/cpu-burner.ts: ${nprocs()} child processes spinning at normal priority).`,
  );
  out.push('');
  out.push('### Goals');
  out.push('');
  const lagGoal = (r: LagResult | undefined, what: string) =>
    `- vecron lag p99 under ${LAG_GOAL_MS} ms, ${what}: **${r && r.lag.p99 < LAG_GOAL_MS ? 'met' : 'NOT met'}** (p99 ${r ? fmtMs(r.lag.p99) : 'n/a'}, p50 ${r ? fmtMs(r.lag.p50) : 'n/a'}` +
    `${gl && what === 'quiet' ? `; graphile-worker p99 ${fmtMs(gl.lag.p99)}` : ''}).`;
  out.push(lagGoal(vl, 'quiet'));
  if (vlLoaded) out.push(lagGoal(vlLoaded, vlLoaded.condition));
  for (const c of ['quiet', 'loaded'] as const) {
    const l = ratioLine(c);
    if (l) out.push(l.text);
  }
  out.push('');
  out.push(`### Throughput, end to end`);
  out.push('');
  out.push(
    `${fmtNum(N)} executions of one no-op HTTP request (GET to an in-process server on 127.0.0.1 answering 204), ` +
      `enqueued ${ENQUEUE_BATCH} at a time from a separate pool while the worker runs; wall time from the first enqueue until the ` +
      `last one finished (vecron: final status committed in \`executions\`; graphile-worker: task completions counted in-process, ` +
      `then the jobs table seen empty; pg-boss: handler completions counted, then every job seen \`completed\` in \`pgboss.job\`). ` +
      `Each system makes the request with the same client, undici's \`request\` (vecron's http step through its egress-checking dispatcher, ` +
      `with its templates, output capture and masking; the graphile-worker task and the pg-boss handler call \`request(url)\` with the ` +
      `step's default headers and read the body; before 2026-12-03 all three used undici's \`fetch\`). ` +
      `One worker in this process, concurrency ${CONCURRENCY}, ` +
      `${POOL_SIZE} pooled connections (+ 1 for LISTEN: vecron, graphile-worker); vecron and graphile-worker wake on NOTIFY and poll every ${POLL_INTERVAL_MS} ms; ` +
      `pg-boss has no wake-up on insert: ${CONCURRENCY} \`work()\` workers, each fetching up to ${PGBOSS_BATCH} jobs per poll ` +
      `(every ${PGBOSS_POLL_SECONDS * 1000} ms, its shortest), running them one by one and completing the batch in one statement. ` +
      `${WARMUP} warm-up executions first (not counted); ` +
      `${WARMUP_ROUNDS ? `${WARMUP_ROUNDS} whole warm-up round(s) per system not counted, then ` : ''}${ROUNDS} rounds per system and condition, alternating, the best one shown. ` +
      `Rounds are long and come after warm-up rounds so that each system is measured as a long-running worker runs, at its steady state: ` +
      `in the first ~10,000 executions of a process and a new database the JIT and the tables' first statistics are still settling ` +
      `(measured 2026-12-04, quiet: with rounds of 2,000 after one warm-up round, vecron's Node CPU was 0.49-0.85 ms per execution and ` +
      `the paired ratio to graphile-worker 0.74-1.01; with rounds of 8,000 after two, 0.36-0.52 ms and 1.00-1.17; graphile-worker's ` +
      `Node CPU fell too, from about 0.49 to 0.35-0.45 ms). ` +
      `"statements/exec" counts the statements each system sent (BEGIN/COMMIT included) through a wrapper around its pool; ` +
      `"DB xacts" and "row writes" come from \`pg_stat_database\`; "Node CPU" is this process (worker, enqueuer and the target server) ` +
      `per execution, "PostgreSQL CPU" the server's backends of the bench database (from /proc; WAL writer and checkpointer not included), ` +
      `"machine CPU busy" all CPUs (PostgreSQL and the burners included) over the measured window.`,
  );
  out.push('');
  out.push(throughputTable(res.throughput));
  out.push('');
  out.push(`Ratio vecron/graphile-worker (PostgreSQL): **${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}** (best rounds).`);
  const medianOf = (xs: number[] | undefined) => (xs?.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
  const [mv, mg] = [medianOf(res.throughput[0]?.rounds), medianOf(res.throughput[1]?.rounds)];
  if (Number.isFinite(mv / mg)) out.push(`Ratio of the medians of the rounds: **${(mv / mg).toFixed(2)}** (${fmtNum(mv)} vs ${fmtNum(mg)} executions/s).`);
  for (const r of res.throughput) {
    const rounds = r.rounds && r.rounds.length > 1 ? `; rounds: ${r.rounds.map((x) => fmtNum(x)).join(', ')} executions/s` : '';
    out.push(`- ${r.system} on ${r.database}, ${r.condition ?? 'quiet'}: ${r.verified}${r.failed ? `, ${r.failed} failed` : ''}${rounds}.`);
  }
  out.push('');
  out.push('### Lag from due time to step start');
  out.push('');
  out.push(
    markdownTable(
      ['system', 'condition', 'setup', 'samples', 'p50', 'p90', 'p99', 'mean', 'max'],
      res.lag.map((r) => [r.system, r.condition, r.how, `${r.lag.n}/${r.expected}`, ...latencyCells(r.lag)]),
      ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  for (const r of res.lag) out.push(`- ${r.system} (${r.condition}): ${r.notes.join('; ')}.`);
  out.push('');
  out.push('### Where the time goes');
  out.push('');
  if (vl?.segments) {
    out.push(`vecron's lag, split at the timestamps it records (PostgreSQL clock for \`created_at\`/\`started_at\`, Node's for the step; same host):`);
    out.push('');
    out.push(
      markdownTable(
        ['segment', 'p50', 'p90', 'p99', 'mean', 'max'],
        vl.segments.map((s) => [s.name, ...latencyCells(s.s)]),
        ['left', 'right', 'right', 'right', 'right', 'right'],
      ),
    );
    if (vl.fireTx?.ms.n) {
      out.push('');
      out.push(
        `The scheduler's fire transactions (one per round, all ${LAG_JOBS} due jobs in one transaction; NOTIFY reaches the worker at COMMIT): ` +
          `${vl.fireTx.ms.n} transactions, duration p50 ${fmtMs(vl.fireTx.ms.p50)}, p99 ${fmtMs(vl.fireTx.ms.p99)}, ` +
          `${vl.fireTx.statements.p50.toFixed(0)} statements each (p50, BEGIN/COMMIT not counted).`,
      );
    }
    out.push('');
  }
  out.push('Single operations on the idle bench database (sequential, one connection at a time):');
  out.push('');
  out.push(
    markdownTable(
      ['operation', 'p50', 'p90', 'p99', 'mean', 'max'],
      res.idle.map((s) => [s.name, ...latencyCells(s.s)]),
      ['left', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  if (v?.statements) {
    out.push(
      `vecron worker, statements per execution during the PostgreSQL throughput run (top by total time; mean/p99 as seen by the caller, pool wait included):`,
    );
    out.push('');
    out.push(statementsTable(v.statements));
    out.push('');
  }
  if (v?.producerStatements) {
    out.push(
      `vecron enqueue (\`enqueueExecution()\`: one statement; its duration under load p50 ${v.enqueueTxMs ? fmtMs(v.enqueueTxMs.p50) : 'n/a'}, p99 ${v.enqueueTxMs ? fmtMs(v.enqueueTxMs.p99) : 'n/a'}):`,
    );
    out.push('');
    out.push(statementsTable(v.producerStatements));
    out.push('');
  }
  if (g?.statements) {
    out.push(
      `graphile-worker, statements per job during its throughput run (worker side; \`addJob\` is ${g.producerRoundTrips?.toFixed(1)} statement per job):`,
    );
    out.push('');
    out.push(statementsTable(g.statements));
    out.push('');
  }
  if (b?.statements) {
    out.push(`pg-boss, statements per job during its throughput run (worker side; \`send\` is ${b.producerRoundTrips?.toFixed(1)} statement per job):`);
    out.push('');
    out.push(statementsTable(b.statements));
    out.push('');
  }
  out.push('### Observations');
  out.push('');
  for (const o of observations(res, { v, g, vl, gl, ratio, nproc: m.nproc })) out.push(`- ${o}`);
  return { markdown: `${HEADING}\n\n${out.join('\n')}\n`, ok: !res.throughput.some((r) => r.timedOut) };
}

function vecronLookaheadMs(): number {
  return loadConfig({}).schedulerLookaheadMs;
}

function observations(res: Results, x: { v?: ThroughputResult; g?: ThroughputResult; vl?: LagResult; gl?: LagResult; ratio: number; nproc: number }): string[] {
  const o: string[] = [];
  const { v, g, vl, gl } = x;
  const idle = (prefix: string) => res.idle.find((s) => s.name.startsWith(prefix))?.s;
  const rtt = idle('`SELECT 1`');
  if (v && g && v.workerRoundTrips !== undefined && g.workerRoundTrips !== undefined) {
    const vTotal = v.workerRoundTrips + (v.producerRoundTrips ?? 0);
    const gTotal = g.workerRoundTrips + (g.producerRoundTrips ?? 0);
    o.push(
      `Per execution vecron sends ${vTotal.toFixed(1)} statements (worker ${v.workerRoundTrips.toFixed(1)} + enqueue ${v.producerRoundTrips?.toFixed(1)}), ` +
        `graphile-worker ${gTotal.toFixed(1)} (${g.workerRoundTrips.toFixed(1)} + ${g.producerRoundTrips?.toFixed(1)}): ` +
        `${(vTotal / gTotal).toFixed(1)}× as many; PostgreSQL sees ${v.xactsPerExec?.toFixed(1)} vs ${g.xactsPerExec?.toFixed(1)} transactions ` +
        `and ${v.writesPerExec?.toFixed(1)} vs ${g.writesPerExec?.toFixed(1)} row writes per execution, and this Node process spends ` +
        `${fmtMs(v.nodeCpuMsPerExec)} vs ${fmtMs(g.nodeCpuMsPerExec)} of CPU per execution. graphile-worker keeps a job as one row, ` +
        `claimed by one function call and deleted on success; vecron keeps an execution row and a row per step with output, context ` +
        `and timestamps (the run history), fences every write on its lease and stores a status event per change (5 per execution here: queued, running, step running, step succeeded, succeeded), written by the same statements.`,
    );
    const cpu = (r?: ThroughputResult) => (r ? r.nodeCpuMsPerExec + (r.pgCpuMsPerExec ?? 0) : NaN);
    const cpuText = (r: ThroughputResult) => `${fmtMs(r.nodeCpuMsPerExec)} + ${r.pgCpuMsPerExec == null ? 'n/a' : fmtMs(r.pgCpuMsPerExec)} = ${fmtMs(cpu(r))}`;
    const b = res.throughput.find((r) => !r.extra && (r.condition ?? 'quiet') === 'quiet' && r.system.startsWith('pg-boss'));
    const slotMs = (1000 / v.perSec) * CONCURRENCY;
    const gSlotMs = (1000 / g.perSec) * CONCURRENCY;
    o.push(
      `CPU per execution (this Node process + the PostgreSQL backends, best quiet rounds): vecron ${cpuText(v)}, graphile-worker ${cpuText(g)}` +
        `${b ? `, pg-boss ${cpuText(b)}` : ''}. An execution holds one of the ${CONCURRENCY} slots for ~${fmtMs(slotMs)} (graphile-worker ~${fmtMs(gSlotMs)}), ` +
        `far more than the CPU it costs: ${v.machineBusyPct !== null ? `the machine's CPUs were ${v.machineBusyPct.toFixed(0)} % busy and ` : ''}` +
        `each statement waits for a CPU on both sides (idle round trip ${rtt ? fmtMs(rtt.p50) : '?'} p50, see the statement tables for the same ` +
        `statements under load). So the ratio follows CPU per execution only while the machine has CPU to spare; with more runnable processes than ` +
        `cores it also follows how many connections a system keeps busy at once: graphile-worker has one get_job in flight per worker loop (up to ` +
        `${CONCURRENCY}), vecron one claim for all its free slots, amortised over ` +
        `${(1 / (v.statements?.find((r) => r.label.startsWith('claimExecutions'))?.perExec ?? 1)).toFixed(1)} executions. ` +
        `A claim reads only the rows it takes: its ORDER BY run_at, created_at is an index's order (migration 020). Before, the index ` +
        `held run_at only, so every claim read and sorted the whole due backlog (a claim of 3 from 2,000 queued: 1,853 buffers, ~1 ms ` +
        `more), and the enqueuer, which runs ahead of the worker here, made each claim slower. ` +
        `(Two claims in flight per vecron worker were tried in this benchmark, before and after that fix: more PostgreSQL CPU per ` +
        `execution, smaller claims, and no more throughput in the same runs, so the worker keeps one.)`,
    );
    if (b) {
      o.push(
        `pg-boss ${PGBOSS_VERSION} does per job one \`send\` and its share of a batch's fetch and of its \`complete\` ` +
          `(${b.workerRoundTrips?.toFixed(2)} worker statements per job): with batches of up to ${PGBOSS_BATCH} it is the cheapest per job, but a job ` +
          `waits for its worker's next poll (every ${PGBOSS_POLL_SECONDS * 1000} ms, and a worker sleeps out the rest of the interval after each batch), ` +
          `so its throughput depends on the batch size chosen and its latency on the poll interval; it has no wake-up on insert.`,
      );
    }
  }
  if (vl?.segments) {
    const [, , claim, free, waited] = vl.segments;
    o.push(
      `vecron lag p50 ${fmtMs(vl.lag.p50)}, p99 ${fmtMs(vl.lag.p99)} (goal p99 < ${LAG_GOAL_MS} ms). The scheduler queues fire times up to ` +
        `VECRON_SCHEDULER_LOOKAHEAD_MS (${vecronLookaheadMs()} ms) ahead with run_at = the fire time, and the worker sets a timer from the NOTIFY ` +
        `payload, so the scheduler's own transaction is off the critical path (its segments above are negative or about a second: they ` +
        `happen before the fire time). What remains is the worker's timer, the claim and the start of the step: claim to step start ` +
        `${fmtMs(claim.s.p50)} p50 / ${fmtMs(claim.s.p99)} p99.` +
        (waited
          ? ` With ${LAG_JOBS} jobs due per second and ${CONCURRENCY} slots, ${waited.s.n} of ${vl.lag.n} executions had to wait for a slot ` +
            `(their lag p50 ${fmtMs(waited.s.p50)}, p99 ${fmtMs(waited.s.p99)}); those that found a free slot: p50 ${fmtMs(free.s.p50)}, ` +
            `p99 ${fmtMs(free.s.p99)}.`
          : ''),
    );
  }
  if (gl && vl) {
    o.push(
      `graphile-worker's lag (p50 ${fmtMs(gl.lag.p50)}, p99 ${fmtMs(gl.lag.p99)}) is bound by its poll interval: a job whose run_at is in the future ` +
        `is found by the next poll (every ${POLL_INTERVAL_MS} ms here; its NOTIFY on insert comes before the job is due). vecron's workers wake by ` +
        `timer at the run_at they learned from the NOTIFY, so on due-time lag vecron is ahead by an order of magnitude.`,
    );
  }
  return o;
}

/* ------------------------------------------------------------------------------------------------
 * Main
 * ---------------------------------------------------------------------------------------------- */

async function main(): Promise<number> {
  const adminUrl = adminDatabaseUrl();
  const t0 = performance.now();
  const loadStart = loadavg();
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    while (cleanups.length) {
      const c = cleanups.pop()!;
      await c().catch((err) => log(`cleanup: ${(err as Error).message}`));
    }
  };
  // Abandoning a run midway: drop the database under whatever is still running (DROP … WITH
  // (FORCE) ends those connections, whose errors are expected then) and exit.
  const logger: Logger = pino({ name: 'vecron-bench', level: 'warn' }, pino.destination(2));
  const abandon = (why: string, code: number) => {
    log(`${why}: dropping the bench database and exiting`);
    logger.level = 'silent';
    process.on('uncaughtException', (err) => log(`(ignored while abandoning: ${(err as Error).message})`));
    process.on('unhandledRejection', () => {});
    void Promise.race([cleanup(), sleep(10_000)]).finally(() => process.exit(code));
  };
  const watchdog = setTimeout(() => abandon(`time limit of ${TIME_LIMIT_S} s exceeded`, 3), TIME_LIMIT_S * 1000);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => abandon(sig, 130));

  try {
    const benchDb = await createBenchDatabase(adminUrl);
    cleanups.push(() => benchDb.drop());
    log(`database ${benchDb.name} created`);
    const target = await startTarget();
    cleanups.push(() => target.close());
    const dataDir = mkdtempSync(join(tmpdir(), 'vecron-bench-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const config = loadConfig({ DATABASE_URL: benchDb.url, VECRON_DATA_DIR: dataDir, VECRON_LOG_LEVEL: 'warn' });
    const setupUrl = new URL(benchDb.url);
    setupUrl.searchParams.set('application_name', SETUP_APP_NAME);
    const setupDb = await openPostgres(setupUrl.toString(), { poolSize: 2 });
    cleanups.push(() => setupDb.close());
    await migrate(setupDb);
    await graphileMigrate({ connectionString: benchDb.url, logger: graphileLogger });
    {
      // pg-boss creates its schema at its first start.
      const b = new PgBoss({ connectionString: benchDb.url, schedule: false, supervise: false });
      await b.start();
      await b.stop({ graceful: false, wait: true });
    }
    const pgVersion = (
      await setupDb.query<{ v: string }>(
        `SELECT current_setting('server_version') || ', fsync ' || current_setting('fsync') ||
                ', synchronous_commit ' || current_setting('synchronous_commit') || ', on ' || coalesce(inet_server_addr()::text, 'a local socket') AS v`,
      )
    ).rows[0].v;
    const ctx: Ctx = { benchUrl: benchDb.url, target, config, logger, blobs: await openBlobStore(config), setupDb };

    const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      log(`${name}…`);
      const r = await fn();
      log(`${name}: done in ${fmtMs(performance.now() - t)}`);
      return r;
    };
    // Rounds alternate between the systems, so a burst of load from elsewhere on the machine
    // does not land on one system only; each row shows its best round, the goal takes the median
    // of the paired ratios.
    const systems: { name: string; run: () => Promise<ThroughputResult> }[] = [
      { name: 'vecron on PostgreSQL', run: () => vecronThroughputPostgres(ctx) },
      { name: `graphile-worker ${GRAPHILE_VERSION}`, run: () => graphileThroughput(ctx) },
      { name: `pg-boss ${PGBOSS_VERSION}`, run: () => pgBossThroughput(ctx) },
    ];
    // BENCH_SYSTEMS=vecron (a comma list of vecron, graphile, pg-boss) runs only those: for profiling.
    const only = process.env.BENCH_SYSTEMS?.split(',').map((x) => x.trim());
    if (only) systems.splice(0, systems.length, ...systems.filter((x) => only.some((o) => x.name.startsWith(o))));
    const best = (rs: ThroughputResult[]): ThroughputResult => ({
      ...rs.reduce((a, b) => (b.perSec > a.perSec ? b : a)),
      rounds: rs.map((r) => r.perSec),
    });
    const condition = async (): Promise<{ throughput: ThroughputResult[]; lag: LagResult }> => {
      const what = loadCondition();
      for (let r = 1; r <= WARMUP_ROUNDS; r++) {
        for (const sys of systems) await phase(`[${what}] warm-up round ${r}/${WARMUP_ROUNDS} (not counted): ${sys.name}`, sys.run);
      }
      const rounds: ThroughputResult[][] = systems.map(() => []);
      for (let r = 1; r <= ROUNDS; r++) {
        for (const [i, sys] of systems.entries()) {
          const res = await phase(`[${what}] throughput ${r}/${ROUNDS}: ${sys.name}`, sys.run);
          log(
            `  ${fmtNum(res.perSec)} executions/s; Node CPU ${fmtMs(res.nodeCpuMsPerExec)}/exec, PostgreSQL CPU ${res.pgCpuMsPerExec == null ? 'n/a' : fmtMs(res.pgCpuMsPerExec)}/exec; load ${loadavg()[0].toFixed(1)}`,
          );
          rounds[i].push(res);
        }
      }
      const lag = await phase(`[${what}] lag: vecron scheduler + worker, ${LAG_SECONDS} s`, () => vecronLag(ctx));
      log(`  lag p50 ${fmtMs(lag.lag.p50)}, p99 ${fmtMs(lag.lag.p99)} (${lag.lag.n}/${lag.expected}); load ${loadavg()[0].toFixed(1)}`);
      return { throughput: rounds.map(best), lag };
    };
    const quiet = await condition();
    const throughput: ThroughputResult[] = [...quiet.throughput];
    const lag: LagResult[] = [quiet.lag];
    if (PGLITE_ROW) throughput.push(await phase('throughput: vecron on PGlite (in memory)', () => vecronThroughputPglite(ctx)));
    lag.push(await phase(`lag: graphile-worker runAt, ${LAG_SECONDS} s`, () => graphileLag(ctx)));
    const idle = await phase('idle latencies', () => idleLatencies(ctx));
    let loaded: { throughput: ThroughputResult[]; lag: LagResult } | null = null;
    let loadLoaded: number[] = [];
    if (LOADED) {
      loaded = await underLoad(async () => {
        const r = await condition();
        loadLoaded = loadavg();
        return r;
      });
      throughput.push(...loaded.throughput);
      lag.push(loaded.lag);
    }
    for (const r of throughput)
      log(`  [${r.condition}] ${r.system} / ${r.database}: ${fmtNum(r.perSec)} executions/s (${r.completed}/${r.n} in ${fmtMs(r.wallMs)})`);
    for (const r of lag) log(`  ${r.system}: p50 ${fmtMs(r.lag.p50)}, p99 ${fmtMs(r.lag.p99)} (${r.lag.n}/${r.expected})`);

    const { markdown, ok } = report(
      { throughput, lag, idle, pgVersion, totalMs: performance.now() - t0, loadStart, loadEnd: loadavg(), loadLoaded },
      machineInfo(),
    );
    process.stdout.write(`\n${markdown}\n`);
    if (WRITE_DOCS) {
      writeSection(HEADING, markdown.slice(HEADING.length));
      log('results written to docs/benchmarks.md');
    }
    if (target.hits() < (WARMUP + N) * 3) log(`warning: the target server saw only ${target.hits()} requests`);
    return ok ? 0 : 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
    // Everything is closed; if some library still holds a handle, do not hang.
    setTimeout(() => {
      log(`open handles left after cleanup (${process.getActiveResourcesInfo().join(', ')}): exiting anyway`);
      process.exit(code);
    }, 5000).unref();
  },
  (err) => {
    log(`failed: ${(err as Error)?.stack ?? err}`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 2000).unref();
  },
);
