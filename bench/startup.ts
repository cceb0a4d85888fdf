/**
 * Cold start (issue 19): from `node bin/vecron.js start` to the first 200 of `GET /health`, for the
 * compiled dist/ (what `npm install` builds, scripts/build-dist.mjs) and for src/ through tsx (a
 * checkout whose sources changed since the build), on an existing data directory (embedded
 * PGlite reopened) and on a new one (PGlite created, every migration applied); quiet, then with
 * every core busy (bench/cpu-burner.ts). Rows are interleaved sample by sample so that a change of
 * the machine's load hits every row alike. Each row also gives the CPU time the process had used
 * when /health answered: on a loaded machine the wall time is mostly waiting for a core.
 *
 * Then the idle resident memory, and what takes it, by starting the service with parts left out
 * (each idles `BENCH_STARTUP_IDLE_SECONDS` after /health before RSS is read):
 *   a bare Node process (the floor) · vecron with PostgreSQL and only the api role · with every
 *   role · with the embedded PGlite (the default): the differences are the app's own modules, the
 *   scheduler and worker roles, and PGlite. The WASM worker pool is created on the first WASM
 *   step, so it is not in the idle figure; its cost is measured apart (a process that creates a
 *   WasmRuntime with the default pool of 2 and runs the echo fixture once), and /metrics gives the
 *   V8 heap and external memory of the PGlite-backed process.
 *
 *   node --import tsx bench/startup.ts      (or `npm run bench -- startup`)
 *
 * Environment: BENCH_STARTUP_SAMPLES (5 per row and condition), BENCH_STARTUP_IDLE_SECONDS (5),
 * BENCH_DATABASE_URL or TEST_DATABASE_URL (for the PostgreSQL rows; else scripts/services.sh),
 * BENCH_WRITE_DOCS (1; 0 = do not touch docs/benchmarks.md).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadCondition, underLoad } from './cpu-burner.ts';
import { benchCommand, envInt, machineInfo, writeSection } from './report.ts';
import { adminDatabaseUrl, procRssMb, ROOT, scratchDatabase, startService } from './service-process.ts';
import { fmtMs, summarize } from './stats.ts';
import { distProblem } from '../bin/entry.js';
import { ensureDist } from './dist.ts';

const SAMPLES = envInt('BENCH_STARTUP_SAMPLES', 5);
const IDLE_SECONDS = envInt('BENCH_STARTUP_IDLE_SECONDS', 5, 0);
const log = (s: string) => console.error(`[startup] ${s}`);
const tmp = mkdtempSync(join(tmpdir(), 'vecron-bench-startup-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// dist/ must be current, or the "dist" rows would silently measure tsx.
ensureDist(log);
const checks: number[] = [];
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  distProblem();
  checks.push(performance.now() - t);
}
const checkMs = summarize(checks).p50;

type Tree = 'dist' | 'src';
type Dir = 'existing' | 'new';
interface Row {
  tree: Tree;
  dir: Dir;
  condition: string;
  load: number[];
  wall: number[];
  cpu: number[];
  /** To the first 200 of /ready: every role started. */
  ready: number[];
}
const rows: Row[] = [];
const COMBOS: [Tree, Dir][] = [
  ['dist', 'existing'],
  ['src', 'existing'],
  ['dist', 'new'],
  ['src', 'new'],
];

let dirs = 0;
const newDataDir = () => join(tmp, `data-${++dirs}`);
// The existing data directory: created (and migrated) by a first start that is not counted.
const existingDir = newDataDir();
{
  const s = await startService({ from: 'dist', env: { VECRON_DATA_DIR: existingDir } });
  await s.stop();
}

async function measureRows(): Promise<void> {
  const condition = loadCondition();
  const mine = COMBOS.map(([tree, dir]) => {
    const r: Row = { tree, dir, condition, load: [], wall: [], cpu: [], ready: [] };
    rows.push(r);
    return r;
  });
  for (let i = 0; i < SAMPLES; i++) {
    for (const r of mine) {
      const dataDir = r.dir === 'existing' ? existingDir : newDataDir();
      r.load.push(loadavg()[0]);
      const s = await startService({ from: r.tree, env: { VECRON_DATA_DIR: dataDir } });
      r.wall.push(s.healthMs);
      r.cpu.push(s.cpuMsAtHealth);
      r.ready.push(s.readyMs);
      await s.stop();
      if (r.dir === 'new') rmSync(dataDir, { recursive: true, force: true });
      log(
        `${condition} ${r.tree} ${r.dir} #${i + 1}: /health after ${fmtMs(s.healthMs)} (cpu ${fmtMs(s.cpuMsAtHealth)}), /ready after ${fmtMs(s.readyMs)}, load ${loadavg()[0].toFixed(1)}`,
      );
    }
  }
}

await measureRows();
await underLoad(measureRows);

// ---- idle memory ----------------------------------------------------------------------------
interface MemRow {
  what: string;
  rssMb: number;
  note: string;
}
const mem: MemRow[] = [];
const idle = () => new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));

async function bareNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await idle();
  const rss = procRssMb(child.pid!);
  child.kill('SIGKILL');
  return rss;
}

async function serviceRss(env: Record<string, string>): Promise<{ rss: number; metrics: string }> {
  const s = await startService({ from: 'dist', env });
  try {
    await idle();
    const rss = procRssMb(s.pid);
    const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text());
    return { rss, metrics };
  } finally {
    await s.stop();
  }
}

/** The WASM pool's cost: RSS of a process before and after a WasmRuntime (pool of 2) ran the echo fixture once. */
function wasmPoolRss(): { before: number; after: number } {
  const script = `
    import { readFileSync } from 'node:fs';
    const rss = () => Number(/^VmRSS:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    const { WasmRuntime } = await import('./dist/wasm/runtime/index.js');
    const before = rss();
    const rt = new WasmRuntime({ poolSize: 2 });
    const r = await rt.run({ bytes: readFileSync('fixtures/wasm/echo/echo.wasm'), functionName: 'echo', input: { hello: 'world' } });
    if (!r.ok) throw new Error(JSON.stringify(r));
    await new Promise((res) => setTimeout(res, 1000));
    console.log(JSON.stringify({ before, after: rss() }));
    await rt.close();`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

const metricValue = (text: string, name: string): number => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
  return m ? Number(m[1]) / 2 ** 20 : NaN;
};

const adminUrl = adminDatabaseUrl(log);
const pgDb = await scratchDatabase(adminUrl);
try {
  const bare = await bareNodeRss();
  mem.push({ what: 'bare Node process (`node -e setInterval`)', rssMb: bare, note: 'the floor of any Node service' });
  const apiOnly = await serviceRss({ DATABASE_URL: pgDb.url, VECRON_ROLES: 'api', VECRON_DATA_DIR: newDataDir() });
  mem.push({
    what: 'vecron, PostgreSQL, role api only',
    rssMb: apiOnly.rss,
    note: `the app's modules and the API: +${(apiOnly.rss - bare).toFixed(0)} MB over bare Node`,
  });
  const allPg = await serviceRss({ DATABASE_URL: pgDb.url, VECRON_DATA_DIR: newDataDir() });
  mem.push({ what: 'vecron, PostgreSQL, every role', rssMb: allPg.rss, note: `scheduler + worker roles: +${(allPg.rss - apiOnly.rss).toFixed(0)} MB` });
  const allPglite = await serviceRss({ VECRON_DATA_DIR: existingDir });
  const heap = metricValue(allPglite.metrics, 'vecron_process_nodejs_heap_size_used_bytes');
  const external = metricValue(allPglite.metrics, 'vecron_process_nodejs_external_memory_bytes');
  mem.push({
    what: 'vecron, embedded PGlite (the default), every role',
    rssMb: allPglite.rss,
    note: `PGlite: +${(allPglite.rss - allPg.rss).toFixed(0)} MB; /metrics: V8 heap used ${heap.toFixed(0)} MB, external (PGlite's WASM memory is here) ${external.toFixed(0)} MB`,
  });
  const pool = wasmPoolRss();
  mem.push({
    what: 'WASM worker pool (default 2 threads), once a WASM step ran',
    rssMb: pool.after - pool.before,
    note: 'not in the idle figures above: the pool is created on the first WASM step (measured apart: RSS of a process before and after)',
  });
} finally {
  await pgDb.drop();
}

// ---- report -----------------------------------------------------------------------------------
const m = machineInfo();
const goal = (dir: Dir) => (dir === 'existing' ? 2000 : 5000);
const line = (r: Row) => {
  const w = summarize(r.wall);
  const c = summarize(r.cpu);
  const l = summarize(r.load);
  const rd = summarize(r.ready);
  const met = r.tree === 'dist' ? (w.p50 <= goal(r.dir) ? 'yes' : 'no') : '-';
  return `| ${r.tree === 'dist' ? 'dist/ (compiled)' : 'src/ through tsx'} | ${r.dir} | ${r.condition} | ${w.n} | ${fmtMs(w.p50)} | ${fmtMs(w.min)}-${fmtMs(w.max)} | ${fmtMs(c.p50)} | ${fmtMs(rd.p50)} | ${l.min.toFixed(1)}-${l.max.toFixed(1)} | ${met} |`;
};
const body = `Command: \`${benchCommand('bench/startup.ts')}\` · ${m.date} · ${m.cpu}, ${m.nproc} CPUs, ${m.memoryGiB} GiB, Node ${m.node} (${m.platform})

From spawning \`node bin/vecron.js start\` to the first 200 of \`GET /health\` (polled every 10 ms).
"new": a new data directory (PGlite created, every migration applied); "existing": the same one
reopened. CPU: user + system time of the process (all threads) when /health answered. /ready:
to its first 200, once the worker and scheduler roles have started too (the API listens first, so
/health, liveness, answers before them; load balancers and the cluster tests wait for /ready). Samples
of all rows were taken in turn. Goal (issue 19): dist/ within 2 s on an existing data directory,
5 s on a new one. Deciding whether dist/ is current (bin/entry.js: one stat per source file) took
${fmtMs(checkMs)}.

| tree | data dir | condition | n | /health p50 | min-max | CPU p50 | /ready p50 | load avg (1 min) | goal met |
|---|---|---|---:|---:|---:|---:|---:|---:|---|
${rows.map(line).join('\n')}

Idle resident memory (RSS, ${IDLE_SECONDS} s after /health, dist/, quiet), and what takes it:

| process | RSS | what the difference is |
|---|---:|---|
${mem.map((r) => `| ${r.what} | ${r.rssMb.toFixed(0)} MB | ${r.note} |`).join('\n')}
`;
console.log(body);
if (process.env.BENCH_WRITE_DOCS !== '0') writeSection('## Cold start and idle memory (bench/startup.ts)', body);
