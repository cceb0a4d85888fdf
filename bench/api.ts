/**
 * The HTTP API under load (issue 19): the service from dist/ (`node bin/vecron.js start`, role api,
 * on PostgreSQL) with `BENCH_API_JOBS` (10,000) jobs stored, driven by autocannon at
 * `BENCH_API_CONNECTIONS` (50) connections for `BENCH_API_SECONDS` (10) per row:
 *   GET /api/v1/jobs (first page, a deep page, a search), POST /api/v1/jobs/{id}/trigger (a
 *   different job each request), GET /api/v1/executions/{id};
 * and, in the same run, a bare Fastify route (`GET /` answering a small JSON object, one process,
 * no auth, no database): the ceiling of Node + Fastify on this machine. Quiet, then with every core
 * busy (bench/cpu-burner.ts). Each row is preceded by a 2-second warm-up that is not counted.
 * autocannon runs in this process, on the same cores as the server: as a client on the same host would.
 *
 *   node --import tsx bench/api.ts      (or `npm run bench -- api`)
 *
 * Environment: BENCH_DATABASE_URL or TEST_DATABASE_URL (superuser URL; a scratch database is
 * created and dropped; else scripts/services.sh), BENCH_API_JOBS, BENCH_API_CONNECTIONS,
 * BENCH_API_SECONDS, BENCH_WRITE_DOCS (1; 0 = do not touch docs/benchmarks.md).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import pg from 'pg';
import { loadCondition, underLoad } from './cpu-burner.ts';
import { benchCommand, envInt, machineInfo, writeSection } from './report.ts';
import { adminDatabaseUrl, freePort, procCpuMs, ROOT, scratchDatabase, startService } from './service-process.ts';
import { ensureDist } from './dist.ts';

const JOBS = envInt('BENCH_API_JOBS', 10_000);
const CONNECTIONS = envInt('BENCH_API_CONNECTIONS', 50);
const SECONDS = envInt('BENCH_API_SECONDS', 10);
const log = (s: string) => console.error(`[api] ${s}`);

ensureDist(log);

interface Target {
  name: string;
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** A different path per request (autocannon's setupRequest). */
  path?: () => string;
  /** Statuses that count as success. */
  ok: number[];
  /** The server's process: its CPU time per request is the figure the machine's load moves least. */
  pid: number;
}
interface Row {
  name: string;
  condition: string;
  load: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  total: number;
  cpuPerRequestMs: number;
}
const rows: Row[] = [];

function cannon(t: Target, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const opts: autocannon.Options = {
      url: t.url,
      connections: CONNECTIONS,
      duration: seconds,
      method: t.method ?? 'GET',
      headers: t.headers,
      body: t.body,
    };
    if (t.path) {
      const next = t.path;
      opts.requests = [{ setupRequest: (req) => ({ ...req, path: next() }) }];
    }
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

async function measure(t: Target): Promise<void> {
  await cannon(t, 2);
  const load = loadavg()[0];
  const cpu0 = procCpuMs(t.pid);
  const r = await cannon(t, SECONDS);
  const cpuMs = procCpuMs(t.pid) - cpu0;
  const byStatus = r.statusCodeStats;
  let good = 0;
  for (const [code, s] of Object.entries(byStatus ?? {})) if (t.ok.includes(Number(code))) good += s.count;
  const total = r.requests.total;
  const row: Row = {
    name: t.name,
    condition: loadCondition(),
    load,
    rps: good / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: total - good + r.errors + r.timeouts,
    total,
    cpuPerRequestMs: cpuMs / Math.max(1, total),
  };
  rows.push(row);
  log(
    `${row.condition} ${t.name}: ${row.rps.toFixed(0)} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, ${row.errors} not ok of ${total}, server CPU ${row.cpuPerRequestMs.toFixed(2)} ms/request, load ${load.toFixed(1)}`,
  );
}

/** The ceiling: Fastify alone, in its own process, one route. */
async function startBareFastify(): Promise<{ url: string; child: ChildProcess; pid: number }> {
  const port = await freePort();
  const script = `
    import Fastify from 'fastify';
    const app = Fastify({ logger: false });
    app.get('/', async () => ({ hello: 'world' }));
    await app.listen({ port: ${port}, host: '127.0.0.1' });
    console.log('listening');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`bare Fastify exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}/`, child, pid: child.pid! };
}

const adminUrl = adminDatabaseUrl(log);
const db = await scratchDatabase(adminUrl);
const token = `vecron_bench_${randomBytes(16).toString('hex')}`;
const service = await startService({
  from: 'dist',
  env: { DATABASE_URL: db.url, VECRON_ROLES: 'api', VECRON_BOOTSTRAP_TOKEN: token, VECRON_DATA_DIR: `/tmp/vecron-bench-api-${process.pid}` },
});
const bare = await startBareFastify();
try {
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  // One job through the API (its canonical definition), then the rest copied from it in SQL:
  // 10,000 POSTs would measure job creation, not what is measured here.
  const first = await fetch(`${service.url}/api/v1/jobs`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({
      name: 'job-00000',
      description: 'nightly export 0 of the orders of one shop',
      steps: [{ id: 'fetch', type: 'http', config: { url: 'http://127.0.0.1:9/orders', method: 'GET' } }],
    }),
  });
  if (first.status !== 201) throw new Error(`POST /api/v1/jobs: ${first.status} ${await first.text()}`);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(
      `INSERT INTO jobs (name, description, definition, enabled)
       SELECT n, d, jsonb_set(jsonb_set(j.definition, '{name}', to_jsonb(n)), '{description}', to_jsonb(d)), true
         FROM jobs j, generate_series(1, $1::int) i,
              LATERAL (SELECT 'job-' || lpad(i::text, 5, '0') AS n, 'nightly export ' || i || ' of the orders of one shop' AS d) x
        WHERE j.name = 'job-00000'`,
      [JOBS - 1],
    );
    await c.query('ANALYZE jobs');
  } finally {
    await c.end();
  }
  const list = (await (await fetch(`${service.url}/api/v1/jobs?limit=200`, { headers: auth })).json()) as { items: { id: string }[]; total: number };
  if (list.total !== JOBS) throw new Error(`expected ${JOBS} jobs, the API lists ${list.total}`);
  const jobIds = list.items.map((j) => j.id);
  const trig = await fetch(`${service.url}/api/v1/jobs/${jobIds[0]}/trigger`, { method: 'POST', headers: auth, body: '{}' });
  const { execution_id } = (await trig.json()) as { execution_id: string };
  let n = 0;
  const deepPage = Math.max(1, Math.floor(JOBS / 20 / 2));
  const targets: Target[] = [
    { name: 'bare Fastify `GET /` (the ceiling)', url: bare.url, ok: [200], pid: bare.pid },
    { name: 'GET /api/v1/jobs?limit=20 (page 1, with total)', url: `${service.url}/api/v1/jobs?limit=20`, headers: auth, ok: [200], pid: service.pid },
    {
      name: `GET /api/v1/jobs?limit=20&page=${deepPage} (a deep page)`,
      url: `${service.url}/api/v1/jobs?limit=20&page=${deepPage}`,
      headers: auth,
      ok: [200],
      pid: service.pid,
    },
    {
      name: 'GET /api/v1/jobs?search=export 12 (matches 111 jobs)',
      url: `${service.url}/api/v1/jobs?limit=20&search=export%2012`,
      headers: auth,
      ok: [200],
      pid: service.pid,
    },
    {
      name: 'POST /api/v1/jobs/{id}/trigger (200 jobs in turn)',
      url: service.url,
      method: 'POST',
      headers: auth,
      body: '{}',
      path: () => `/api/v1/jobs/${jobIds[n++ % jobIds.length]}/trigger`,
      ok: [202],
      pid: service.pid,
    },
    { name: 'GET /api/v1/executions/{id}', url: `${service.url}/api/v1/executions/${execution_id}`, headers: auth, ok: [200], pid: service.pid },
  ];
  const all = async () => {
    for (const t of targets) await measure(t);
  };
  await all();
  await underLoad(all);
} finally {
  bare.child.kill('SIGKILL');
  await service.stop();
  await db.drop();
}

const m = machineInfo();
const ceiling = (cond: string) => rows.find((r) => r.condition === cond && r.name.startsWith('bare'))?.rps ?? NaN;
const body = `Command: \`${benchCommand('bench/api.ts')}\` · ${m.date} · ${m.cpu}, ${m.nproc} CPUs, ${m.memoryGiB} GiB, Node ${m.node} (${m.platform})

The service from dist/ (\`vecron start\`, role api, PostgreSQL on the same machine) with ${JOBS.toLocaleString('en')} jobs stored;
autocannon (in the bench process, same cores) at ${CONNECTIONS} connections, ${SECONDS} s per row after a 2 s warm-up;
req/s counts the answers with the expected status only. The bare Fastify row is the ceiling of
Node + Fastify on this machine in the same run; "of ceiling" is the row's req/s over it. "server
CPU": user + system time of the server process per request (PostgreSQL's own time not included),
the figure a busy machine moves least.

| request | condition | req/s | of ceiling | p50 | p99 | server CPU per request | not ok | load avg (1 min) |
|---|---|---:|---:|---:|---:|---:|---:|---:|
${rows
  .map(
    (r) =>
      `| ${r.name} | ${r.condition} | ${r.rps.toFixed(0)} | ${((100 * r.rps) / ceiling(r.condition)).toFixed(0)} % | ${r.p50} ms | ${r.p99} ms | ${r.cpuPerRequestMs.toFixed(2)} ms | ${r.errors} | ${r.load.toFixed(1)} |`,
  )
  .join('\n')}
`;
console.log(body);
if (process.env.BENCH_WRITE_DOCS !== '0') writeSection('## API under load (bench/api.ts)', body);
