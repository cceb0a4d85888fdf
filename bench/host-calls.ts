/**
 * Host-call benchmark (issue 15): what a privileged host call costs a guest, measured from inside
 * the guest, in one run, through the real engine (a vecron app on PGlite, the module uploaded and
 * granted like any other, each measurement one wasm step of a job). The app and the direct
 * runStatement come from dist/ (built first when stale): the code `vecron start` runs, no tsx.
 *
 *   node --import tsx bench/host-calls.ts        (or `npm run bench -- host-calls`)
 *
 * The guest is fixtures/wasm/host-call-bench: it makes N calls with the same request and reads the
 * monotonic clock (WASI clock_time_get) right before and right after each one, so every sample is
 * one call as the guest sees it: the ABI (request copied out, answer written through `alloc`),
 * fuel, the record of the call, and for a bridged call the hop to the main thread and back.
 * Rows:
 *   - the clock pair alone (no call): the floor that every other row includes;
 *   - worker-served: `time` now, `crypto` sha256 of 1 KB (against Node's createHash of the same 1 KB),
 *     `crypto` hmac_sha256 of 1 KB with a key named by secret (granted by name: the main thread
 *     resolves it once per run and the worker serves the call; against Node's createHmac);
 *   - with I/O: `http_request` GET to a server answering 204 in another process (against Node's
 *     `fetch` to the same server), `db_query` `SELECT 1` (against `SELECT 1` sent directly on a warm
 *     pg pool to the same server; db_query sends a read as BEGIN READ ONLY + the statement +
 *     ROLLBACK, so a second row compares it with that same round trip sent directly). With JSPI
 *     (`npm run bench` starts node with its flags) the guest's worker serves these itself while the
 *     guest is suspended; without, they are bridged to the main thread;
 *   - the bare worker round trip (postMessage to the main thread, the answer through a futex), with
 *     no sandbox: the floor of a bridged call, measured in the same run;
 *   - a design probe, not the product (bench/host-calls-jspi-probe.mjs, a child process): `SELECT 1`
 *     from the guest's worker's own event loop, the guest suspended by JSPI: the floor of a design
 *     that wakes no thread per call, against direct queries in the same child.
 * Every row is measured twice, quiet and loaded (bench/cpu-burner.ts: a spinning process per CPU),
 * and the goals are judged on both.
 * Overhead = the guest's percentile minus the clock pair's p50 minus the direct percentile, per
 * percentile. The direct and guest samples are taken in alternating rounds.
 * Goals (the issue's): the overhead of a call served inside the worker p50 < 10 us (read as: a call
 * without I/O, time and crypto); of a bridged call p50 < 50 us (a call with I/O, wherever served).
 *
 * Environment: BENCH_HOST_CALLS_N (2000 calls per round), BENCH_HOST_CALLS_ROUNDS (3),
 * BENCH_DATABASE_URL or TEST_DATABASE_URL (a PostgreSQL for the db_query rows; without one, PGlite
 * behind its wire server), BENCH_WRITE_DOCS (1; 0 = do not touch docs/benchmarks.md),
 * BENCH_TIME_LIMIT_SECONDS (900: hard stop; the loaded rows take longer); while iterating on one
 * function: BENCH_HOST_CALLS_ONLY (a comma list of row names: time, sha256, hmac, http, db; the
 * clock pair is always measured) and BENCH_HOST_CALLS_CONDITIONS (quiet, loaded, or both, the
 * default); either one set means docs/benchmarks.md is not written.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { request as undiciRequest } from 'undici';
import type { App } from '../src/app.ts';
import { ensureDist, fromDist } from './dist.ts';
import { fmtNum, markdownTable, summarize, type Summary } from './stats.ts';
import { benchCommand, envInt, machineInfo, writeSection } from './report.ts';
import { loadCondition, underLoad } from './cpu-burner.ts';

const HEADING = '## Host calls (issue 15)';
const root = new URL('..', import.meta.url).pathname;
const N = Math.min(envInt('BENCH_HOST_CALLS_N', 2000), 20_000);
const ROUNDS = envInt('BENCH_HOST_CALLS_ROUNDS', 3);
const TIME_LIMIT_S = envInt('BENCH_TIME_LIMIT_SECONDS', 900);
const ONLY = (process.env.BENCH_HOST_CALLS_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const CONDITIONS = process.env.BENCH_HOST_CALLS_CONDITIONS ?? 'both';
const WRITE_DOCS = process.env.BENCH_WRITE_DOCS !== '0' && ONLY.length === 0 && CONDITIONS === 'both';
const GOAL_WORKER_US = 10;
const GOAL_BRIDGED_US = 50;

const log = (msg: string) => process.stderr.write(`[bench host-calls] ${msg}\n`);
// The service's code as users run it: from dist/ (no tsx in this thread or in the guests' workers).
ensureDist(log);
const { loadConfig } = await fromDist<typeof import('../src/config/index.ts')>('config/index');
const { closeDatabasePools, getPool, runStatement } = await fromDist<typeof import('../src/executors/database/client.ts')>('executors/database/client');
const { startApp } = await fromDist<typeof import('../src/app.ts')>('app');
const { createLogger } = await fromDist<typeof import('../src/logger.ts')>('logger');
const hardStop = setTimeout(() => {
  log(`time limit of ${TIME_LIMIT_S} s reached: giving up`);
  process.exit(1);
}, TIME_LIMIT_S * 1000);
hardStop.unref();

function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  const a = Math.abs(us);
  if (a >= 10_000) return `${(us / 1000).toFixed(1)} ms`;
  if (a >= 1000) return `${(us / 1000).toFixed(2)} ms`;
  if (a >= 100) return `${us.toFixed(0)} us`;
  if (a >= 10) return `${us.toFixed(1)} us`;
  return `${us.toFixed(2)} us`;
}

async function samplesOf(n: number, fn: () => unknown | Promise<unknown>): Promise<number[]> {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out;
}

/* ------------------------------------------------------------------ the servers */

// The upstream is another process, as a real one is: the guest's calls and the direct fetch both
// cross to it (a server on this process's main thread would answer a direct fetch without waking a
// thread, and a worker's request only by waking this one).
const http204 = spawn(
  process.execPath,
  [
    '-e',
    "require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.writeHead(204).end()); }).listen(0, '127.0.0.1', function () { process.stdout.write(this.address().port + '\\n'); });",
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const httpPort = await new Promise<number>((resolve, reject) => {
  http204.once('error', reject);
  http204.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
});
const httpUrl = `http://127.0.0.1:${httpPort}/ping`;

let dbUrl = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || '';
let dbKind = 'PostgreSQL';
let pgliteClose: (() => Promise<void>) | null = null;
if (!dbUrl) {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 8 } as never);
  await server.start();
  const port = (server as any).server?.address()?.port;
  dbUrl = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  dbKind = 'PGlite (wire server)';
  pgliteClose = async () => {
    await server.stop();
    await db.close();
  };
}
const directPool = new pg.Pool({ connectionString: dbUrl, max: 1 });
await directPool.query('SELECT 1');
// The same read-only round trip db_query makes (BEGIN READ ONLY + the statement + ROLLBACK, one
// trip), sent directly by vecron's database client: the sandbox's cost without that guarantee's.
const readOnlyPool = getPool('postgresql', dbUrl, 1);
const readOnlyRequest = () => ({
  sql: 'SELECT 1 AS one',
  params: [],
  rowLimit: 10_000,
  maxBytes: 16 << 20,
  timeoutMs: 30_000,
  signal: new AbortController().signal,
  readOnly: true,
});
await runStatement(readOnlyPool, readOnlyRequest());

/* ------------------------------------------------------------------ the app */

const info = machineInfo();
const t0All = performance.now();
const dataDir = mkdtempSync(join(tmpdir(), 'vecron-bench-host-'));
const token = `bench-${randomBytes(16).toString('hex')}`;
const config = loadConfig({
  PORT: '0',
  HOST: '127.0.0.1',
  VECRON_DATA_DIR: dataDir,
  VECRON_LOG_LEVEL: 'warn',
  VECRON_BOOTSTRAP_TOKEN: token,
  VECRON_POLL_INTERVAL_MS: '50',
  VECRON_WORKER_CONCURRENCY: '1',
});
const app: App = await startApp(config, { logger: createLogger('warn') });
const base = app.url!;

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${token}` } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : null;
  if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return parsed;
}

const KEY = randomBytes(24).toString('base64url');
const data1k = 'x'.repeat(1024);
const form = new FormData();
form.set('file', new Blob([readFileSync(join(root, 'fixtures/wasm/host-call-bench/host-call-bench.wasm'))]), 'host-call-bench.wasm');
form.set('name', 'host-call-bench');
form.set('version', '1.0.0');
form.set('author', 'bench');
const mod = await call('POST', '/api/v1/wasm/modules', form);
await call('PUT', `/api/v1/wasm/modules/${mod.id}/permissions`, {
  permissions: [
    { type: 'http:read', resource_pattern: httpUrl },
    { type: 'database:read', resource_pattern: 'bench_db/**' },
    { type: 'database:read', resource_pattern: 'bench_db' },
  ],
});
// Added on its own: a registry whose permissions table cannot store secret:use yet (its migration)
// costs the keyed crypto row only.
const secretUse = await call('POST', `/api/v1/wasm/modules/${mod.id}/permissions`, {
  permissions: [{ type: 'secret:use', resource_pattern: 'BENCH_KEY' }],
}).then(
  () => null,
  (err: Error) => `secret:use could not be granted (${err.message.slice(0, 120)})`,
);
if (secretUse) log(secretUse);
await call('PUT', '/api/v1/variables/bench_db', { value: dbUrl, secret: true });
await call('PUT', '/api/v1/variables/BENCH_KEY', { value: KEY, secret: true });

/** One wasm step making N calls of function `fn` with `req`; the guest's per-call times in us. */
async function guest(name: string, fn: number, req: unknown): Promise<{ us: number[]; first: any; served: string | null }> {
  const job = await call('POST', '/api/v1/jobs', {
    name: `bench-${name}-${randomBytes(4).toString('hex')}`,
    max_retries: 0,
    steps: [
      {
        id: 'calls',
        type: 'wasm',
        config: { module_id: 'host-call-bench@1.0.0', function_name: 'bench', fuel_limit: 1e11, timeout_seconds: 120, input: { n: N, fn, req } },
      },
    ],
  });
  const started = await call('POST', `/api/v1/jobs/${job.id}/trigger`, {});
  for (;;) {
    const e = await call('GET', `/api/v1/executions/${started.execution_id}`);
    if (e.status === 'succeeded') {
      const out = e.steps[0].output;
      // Where the calls were served, as the run's record says.
      const logs = fn === 0 ? null : await call('GET', `/api/v1/wasm/executions/${started.execution_id}/logs`).catch(() => null);
      const served = (logs?.logs?.[0]?.host_calls?.[0]?.served as string | undefined) ?? null;
      await call('DELETE', `/api/v1/jobs/${job.id}`).catch(() => {});
      return { us: (out.ns as number[]).map((x) => x / 1000), first: out.first, served };
    }
    if (!['queued', 'running'].includes(e.status)) throw new Error(`${name}: the run ${e.status}: ${JSON.stringify(e.error)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/* ------------------------------------------------------------------ the rows */

interface Case {
  /** The row's short name (BENCH_HOST_CALLS_ONLY). */
  key: string;
  label: string;
  served: 'worker' | 'host' | '-';
  /** A call without I/O (time, crypto: the 10 us goal) or with it (http_request, db_query: the 50 us goal). */
  io: boolean;
  fn: number;
  req: unknown;
  check: (first: any) => string | null;
  direct?: { label: string; run: () => unknown | Promise<unknown> };
}
const sha1k = createHash('sha256').update(data1k).digest('hex');
const hmac1k = createHmac('sha256', KEY).update(data1k).digest('hex');
// The I/O rows: each request is measured against two references (see the report).
const HTTP_REQUEST = { method: 'GET', url: httpUrl, headers: {}, body: null };
const checkHttp = (f: any) => (f?.status === 204 ? null : `unexpected answer ${JSON.stringify(f).slice(0, 300)}`);
const DB_REQUEST = { datasource: 'bench_db', sql: 'SELECT 1 AS one', params: [] };
const checkDb = (f: any) => (f?.row_count === 1 ? null : `unexpected answer ${JSON.stringify(f).slice(0, 300)}`);
const ALL_CASES: Case[] = [
  { key: 'clock', label: 'clock pair only (no call)', served: '-', io: false, fn: 0, req: null, check: () => null },
  {
    key: 'time',
    io: false,
    label: '`time` {"op":"now"}',
    served: 'worker',
    fn: 1,
    req: { op: 'now' },
    check: (f) => (typeof f?.epoch_ms === 'number' && typeof f?.iso === 'string' ? null : `unexpected answer ${JSON.stringify(f)}`),
    direct: { label: 'Date.now() + toISOString', run: () => new Date().toISOString() },
  },
  {
    key: 'sha256',
    io: false,
    label: '`crypto` sha256 of 1 KB',
    served: 'worker',
    fn: 2,
    req: { op: 'sha256', data: data1k },
    check: (f) => (f?.hex === sha1k ? null : `wrong digest ${JSON.stringify(f)}`),
    direct: { label: "createHash('sha256') of 1 KB", run: () => createHash('sha256').update(data1k).digest('hex') },
  },
  {
    key: 'hmac',
    io: false,
    label: '`crypto` hmac_sha256 of 1 KB, key_secret',
    served: 'worker',
    fn: 2,
    req: { op: 'hmac_sha256', key_secret: 'BENCH_KEY', data: data1k },
    check: (f) => (f?.hex === hmac1k ? null : `wrong hmac ${JSON.stringify(f)}`),
    direct: { label: "createHmac('sha256') of 1 KB", run: () => createHmac('sha256', KEY).update(data1k).digest('hex') },
  },
  {
    key: 'http',
    io: true,
    label: '`http_request` GET, loopback 204',
    served: 'host',
    fn: 3,
    req: HTTP_REQUEST,
    check: checkHttp,
    direct: {
      label: 'fetch() from Node',
      run: async () => {
        const r = await fetch(httpUrl);
        await r.arrayBuffer();
      },
    },
  },
  {
    key: 'http-undici',
    io: true,
    label: '`http_request` GET, loopback 204, against the same client',
    served: 'host',
    fn: 3,
    req: HTTP_REQUEST,
    check: checkHttp,
    direct: {
      label: "undici request() (http_request's client)",
      run: async () => {
        const r = await undiciRequest(httpUrl);
        await r.body.arrayBuffer();
      },
    },
  },
  {
    key: 'db',
    io: true,
    label: '`db_query` SELECT 1',
    served: 'host',
    fn: 4,
    req: DB_REQUEST,
    check: checkDb,
    direct: { label: 'pg pool.query (warm)', run: () => directPool.query('SELECT 1 AS one') },
  },
  {
    key: 'db-ro',
    io: true,
    label: '`db_query` SELECT 1, against the same read-only round trip',
    served: 'host',
    fn: 4,
    req: DB_REQUEST,
    check: checkDb,
    direct: { label: 'BEGIN READ ONLY + SELECT 1 + ROLLBACK, one trip (runStatement)', run: () => runStatement(readOnlyPool, readOnlyRequest()) },
  },
];

const CASES = ALL_CASES.filter((c) => c.fn === 0 || ONLY.length === 0 || ONLY.includes(c.key));

interface Row {
  c: Case;
  guest: number[];
  direct: number[];
  error: string | null;
  /** Where the run's record says the calls were served (the case's `served` until a run says). */
  served: string;
}

/**
 * The floor of every bridged call: a bare round trip between a worker and the main thread, as the
 * bridge makes it (the worker posts a message and blocks in Atomics.wait; the main thread's
 * message handler stores the answer in a SharedArrayBuffer and notifies), measured in the worker,
 * with no sandbox, no JSON and no host function. A bridged call cannot cost less than this.
 */
function bareRoundTrips(n: number): Promise<number[]> {
  const state = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const state = workerData.state, n = workerData.n, out = new Float64Array(n);
     for (let i = 0; i < n; i++) {
       Atomics.store(state, 0, 0);
       const t0 = performance.now();
       parentPort.postMessage(i);
       while (Atomics.load(state, 0) === 0) Atomics.wait(state, 0, 0, 1000);
       out[i] = (performance.now() - t0) * 1000;
     }
     parentPort.postMessage({ done: Array.from(out) });`,
    { eval: true, workerData: { state, n } },
  );
  return new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (typeof m === 'number') {
        Atomics.store(state, 0, 1);
        Atomics.notify(state, 0);
        return;
      }
      resolve(m.done as number[]);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

/**
 * The design probe (bench/host-calls-jspi-probe.mjs): the same `SELECT 1` from a worker's own event
 * loop with the guest suspended by JSPI, paired with direct queries in the same child process.
 * Samples of both, or the reason it could not run.
 */
function jspiProbe(n: number): Promise<{ direct: number[]; jspi: number[] } | { error: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--experimental-wasm-stack-switching', new URL('./host-calls-jspi-probe.mjs', import.meta.url).pathname, dbUrl, String(n), '1'],
      { maxBuffer: 64 << 20, env: { ...process.env, NODE_OPTIONS: '' } },
      (err, stdout, stderr) => {
        if (err)
          return resolve({
            error: `the probe failed: ${
              String(stderr || err.message)
                .trim()
                .split('\n')
                .slice(-1)[0]
            }`,
          });
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop() ?? ''));
        } catch {
          resolve({ error: `the probe printed no result: ${stdout.slice(0, 200)}` });
        }
      },
    );
  });
}

interface Measured {
  condition: string;
  rows: Row[];
  bare: number[];
  /** The JSPI design probe: its guest's calls and its own direct queries, or why it did not run. */
  probe: { direct: number[]; jspi: number[]; error: string | null };
  load0: number;
  load1: number;
}

/** All rows, ROUNDS rounds, guest and direct samples alternating; the bare round trip in each round. */
async function measure(condition: string): Promise<Measured> {
  const rows: Row[] = CASES.map((c) => ({ c, guest: [], direct: [], error: null, served: c.served }));
  const bare: number[] = [];
  const probe = { direct: [] as number[], jspi: [] as number[], error: null as string | null };
  const load0 = loadavg()[0];
  log(`${condition}: ${ROUNDS} rounds of ${N} calls per row, from inside the guest; direct calls alternate with them`);
  for (let round = 0; round < ROUNDS; round++) {
    const skip = round === 0 ? Math.min(100, N >> 3) : 0; // the first calls of the first round warm up
    bare.push(...(await bareRoundTrips(N)).slice(skip));
    if (!probe.error) {
      const p = await jspiProbe(N);
      if ('error' in p) probe.error = p.error;
      else {
        probe.direct.push(...p.direct.slice(skip));
        probe.jspi.push(...p.jspi.slice(skip));
      }
    }
    for (const row of rows) {
      if (secretUse && (row.c.req as { key_secret?: string } | null)?.key_secret) row.error = secretUse;
      if (row.error) continue;
      try {
        const g = await guest(`${row.c.fn}`, row.c.fn, row.c.req);
        const bad = row.c.check(g.first);
        if (bad) throw new Error(bad);
        if (g.served) row.served = g.served;
        row.guest.push(...g.us.slice(skip));
        if (row.c.direct) row.direct.push(...(await samplesOf(N, row.c.direct.run)).slice(skip));
      } catch (err) {
        row.error = String((err as Error).message ?? err).split('\n')[0];
        log(`${condition}: ${row.c.label}: ${row.error}`);
      }
    }
    log(`${condition}: round ${round + 1}/${ROUNDS} done`);
  }
  return { condition, rows, bare, probe, load0, load1: loadavg()[0] };
}

const skipped = (condition: string): Measured => ({
  condition,
  rows: CASES.map((c) => ({ c, guest: [], direct: [], error: 'not measured', served: c.served })),
  bare: [],
  probe: { direct: [], jspi: [], error: 'not measured' },
  load0: 0,
  load1: 0,
});
const quiet = CONDITIONS === 'loaded' ? skipped('quiet') : await measure('quiet');
const loaded = CONDITIONS === 'quiet' ? skipped('loaded (not measured)') : await underLoad(() => measure(loadCondition()));
const seconds = (performance.now() - t0All) / 1000;

/* ------------------------------------------------------------------ the report */

interface Result {
  row: Row;
  g: Summary | null;
  d: Summary | null;
  over50: number;
  over99: number;
}
interface Report {
  m: Measured;
  floorP50: number;
  bare: Summary | null;
  results: Result[];
}
function report(m: Measured): Report {
  const floorP50 = m.rows[0].guest.length ? summarize(m.rows[0].guest).p50 : 0;
  const results = m.rows.map((row) => {
    const g = row.guest.length ? summarize(row.guest) : null;
    const d = row.direct.length ? summarize(row.direct) : null;
    const over = (k: 'p50' | 'p99') => (g ? g[k] - (row.c.fn === 0 ? 0 : floorP50) - (d ? d[k] : 0) : NaN);
    return { row, g, d, over50: over('p50'), over99: over('p99') };
  });
  return { m, floorP50, bare: m.bare.length ? summarize(m.bare) : null, results };
}
const reports = [report(quiet), report(loaded)];

const cells = (r: Report, i: number): string[] => {
  const { row, g, d, over50, over99 } = r.results[i];
  if (row.error) return ['failed', '', '', '', ''];
  const noCall = row.c.fn === 0;
  const hop = row.served === 'host' && r.bare ? fmtUs(over50 - r.bare.p50) : '';
  return [fmtUs(g!.p50), d ? fmtUs(d.p50) : '', noCall ? '' : fmtUs(over50), noCall ? '' : fmtUs(over99), hop];
};
function probeCells(m: Measured): string[] {
  const p = m.probe;
  if (p.error || !p.jspi.length || !p.direct.length) return [p.error === 'not measured' ? '' : 'failed', '', '', '', ''];
  const j = summarize(p.jspi);
  const d = summarize(p.direct);
  return [fmtUs(j.p50), fmtUs(d.p50), fmtUs(j.p50 - d.p50), fmtUs(j.p99 - d.p99), ''];
}
const table = markdownTable(
  [
    'call (from inside the guest)',
    'served',
    'direct',
    ...reports.flatMap((r) => {
      const c = r.m.condition.split(' ')[0];
      return [`${c}: guest p50`, `${c}: direct p50`, `${c}: overhead p50`, `${c}: overhead p99`, `${c}: beyond the hop`];
    }),
  ],
  [
    ...CASES.map((c, i) => [c.label, quiet.rows[i].served, c.direct?.label ?? '', ...reports.flatMap((r) => cells(r, i))]),
    [
      'bare worker round trip (postMessage, Atomics.wait; no sandbox)',
      'floor',
      '',
      ...reports.flatMap((r) => (r.bare ? [fmtUs(r.bare.p50), '', '', `p99 ${fmtUs(r.bare.p99)}`, ''] : ['', '', '', '', ''])),
    ],
    [
      "design probe: `SELECT 1` from the worker's own event loop, guest suspended by JSPI (no sandbox)",
      'probe',
      'pg pool.query (warm), same child',
      ...reports.flatMap((r) => probeCells(r.m)),
    ],
  ],
);
const goalCell = (r: Report, io: boolean, goalUs: number): [string, string] => {
  const rs = r.results.filter((x) => x.row.c.io === io && x.row.c.fn !== 0 && x.row.c.key !== 'db-ro' && x.row.c.key !== 'http-undici');
  const failed = rs.filter((x) => x.row.error);
  const worst = rs.filter((x) => !x.row.error).sort((a, b) => b.over50 - a.over50)[0];
  const measured = worst ? `${fmtUs(worst.over50)} (worst: ${worst.row.c.label})` : 'n/a';
  let status = failed.length
    ? `**not measured** (${failed.map((f) => f.row.c.label).join(', ')} failed)`
    : worst && worst.over50 < goalUs
      ? 'met'
      : '**NOT met**';
  if (io && worst?.row.served === 'host' && r.bare && r.bare.p50 >= goalUs && worst.over50 >= goalUs) {
    status += `; the bare round trip alone is ${fmtUs(r.bare.p50)}`;
  }
  return [measured, status];
};
const goals = markdownTable(
  ['goal', ...reports.flatMap((r) => [`${r.m.condition}: measured (overhead p50)`, `${r.m.condition}: status`])],
  [
    [`call without I/O served inside the worker, overhead p50 < ${GOAL_WORKER_US} us`, ...reports.flatMap((r) => goalCell(r, false, GOAL_WORKER_US))],
    [
      `call with I/O (bridged, or served by the worker under JSPI), overhead p50 < ${GOAL_BRIDGED_US} us`,
      ...reports.flatMap((r) => goalCell(r, true, GOAL_BRIDGED_US)),
    ],
  ],
);
const loads = reports.map((r) => `${r.m.condition}: ${r.m.load0.toFixed(2)} at the start, ${r.m.load1.toFixed(2)} at the end`).join('; ');
const section = `Run ${info.date} on ${info.nproc} CPUs (${info.cpu}, ${info.memoryGiB} GiB, ${info.platform}), Node ${info.node}.
Command: \`${benchCommand('bench/host-calls.ts')}\` (suite \`bench/host-calls.ts\`, ${seconds.toFixed(0)} s;
load average ${loads}). Database for \`db_query\`: ${dbKind}.${
  quiet.load0 > info.nproc || quiet.load1 > info.nproc
    ? `\n**The load average of the quiet rows was above the ${info.nproc} CPUs**: every thread hop there waits for a core, so those figures measure the contention more than the sandbox; judge the quiet goals on a quiet machine.`
    : ''
}

### Goals

Judged on both conditions: quiet, and loaded (\`bench/cpu-burner.ts\`: a spinning process per CPU).

${goals}

### Per call, as the guest sees it

\`fixtures/wasm/host-call-bench\` makes ${fmtNum(N)} calls with the same request in one wasm step
(${ROUNDS} rounds per row and condition, the first ${Math.min(100, N >> 3)} calls of the first round dropped as warm-up) and
reads the monotonic clock (WASI \`clock_time_get\`) right before and right after each call. A call
includes the ABI (the request read from guest memory, the answer JSON written through \`alloc\`),
fuel by bytes, the call's record, and for a bridged call the hop to the main thread and back.
"served" is where the run's record says the calls were served (\`crypto\` with a key granted by
name is served in the worker: the main thread resolves the key once per run).
"direct" is the same work done by Node on the main thread with no sandbox: ${fmtNum(N)} calls per round,
alternating with the guest's rounds. Overhead = guest − clock pair p50 (quiet ${fmtUs(reports[0].floorP50)},
loaded ${fmtUs(reports[1].floorP50)}) − direct, per percentile (so the p99 overhead is a difference of
tails, not the tail of a difference). "beyond the hop" = a bridged call's overhead p50 minus the
bare worker round trip's p50, measured in the same run: what the sandbox adds on top of the two
thread wake-ups.

${table}

With JSPI (node started with \`--experimental-wasm-stack-switching\`, as \`vecron start\` and
\`npm run bench\` do), the guest's worker serves \`http_request\` and \`db_query\` itself while the
guest is suspended ("served: worker" above): no thread is woken per call but the upstream's. The
bare round trip stays the floor of the calls that are still bridged (the file functions, a
datasource named only through a glob pattern, runs without the flag or with another stack limit).
The goal rows read the issue's two goals as: a call without I/O (time, crypto) < 10 us, and a call
with I/O (http_request, db_query; bridged, or served by the worker under JSPI) < 50 us, judged on
the issue's references (fetch, and a plain \`SELECT 1\` on a warm pool). Two more rows compare each
with the same work done the way the function does it: undici's \`request()\` (the client
\`http_request\` uses; \`fetch\` costs more than it), and the same read-only round trip (db_query
runs a read as BEGIN READ ONLY + the statement + ROLLBACK: the server refuses any write, and a
session setting the statement changes is undone before the connection serves anyone else).

The design probe (\`bench/host-calls-jspi-probe.mjs\`) is that design's floor without the sandbox:
a bare \`pool.query\` in a worker whose guest is suspended with JSPI, no JSON, permission or record. Its "guest" time runs from one call's start to the
next's (the query, suspending and resuming the guest, its loop); its direct queries run in the same
child process, alternating by round. It needs \`node --experimental-wasm-stack-switching\` at start
(Node 20's V8 11.3; set later with \`v8.setFlagsFromString\`, a worker suspending around socket I/O
crashed the process here). ${reports
  .map((r) => (r.m.probe.error && r.m.probe.error !== 'not measured' ? `${r.m.condition}: ${r.m.probe.error}.` : ''))
  .join(' ')}
`;
console.log(`${HEADING}\n\n${section}`);
if (WRITE_DOCS) {
  writeSection(HEADING, section);
  log('wrote docs/benchmarks.md');
}

await app.close();
await directPool.end();
await pgliteClose?.();
http204.kill();
await closeDatabasePools();
rmSync(dataDir, { recursive: true, force: true });
// A row left out because secret:use cannot be stored yet is reported, not a failure of the suite.
const failedRows = [...quiet.rows, ...loaded.rows].filter((r) => r.error && r.error !== secretUse && r.error !== 'not measured');
process.exit(failedRows.length ? 1 : 0);
