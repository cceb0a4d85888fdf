import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WasmRuntime, type WasmErrorCode, type WasmLimits, type WasmRunResult } from '../../src/wasm/runtime/index.ts';

// Issue 11: each hostile fixture (fixtures/wasm/sandbox-holes, engine-limits; built by
// scripts/build-wasm-fixtures.sh) ends with its own code within its timeout + 1 s; after each, an
// ordinary module runs correctly in the same process, the process RSS comes back to within 20 % of
// its level before, and no thread keeps burning CPU (the process's CPU time, all threads, stops
// growing within 1 s).
const root = new URL('../../fixtures/wasm/', import.meta.url);
const fx = (p: string): Uint8Array => new Uint8Array(readFileSync(new URL(p, root)));
const POOL = 2;
const rt = new WasmRuntime({ poolSize: POOL });
// The RSS baselines below include the pool's threads (short runs go inline and start no worker).
before(() => rt.warmup());
after(() => rt.close());
const echo = fx('echo/echo.wasm');
const tables = fx('sandbox-holes/tables.wasm');
const hostCalls = fx('sandbox-holes/host-calls.wasm');

async function healthy(): Promise<void> {
  const input = { healthy: true, n: [1, 2, 3] };
  const r = await rt.run({ bytes: echo, functionName: 'echo_copy', input });
  assert.ok(r.ok, `echo after a hostile module: ${!r.ok ? `${r.error.code}: ${r.error.message}` : ''}`);
  if (r.ok) assert.deepEqual(r.output, input);
}

/** CPU time (ms, all threads of the process) used over `ms` of wall time while this thread sleeps. */
async function cpuOver(ms: number): Promise<number> {
  const c0 = process.cpuUsage();
  await sleep(ms);
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1000;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** RSS once what is garbage has been collected (this thread's; the workers collect after big runs). */
async function rssSettled(): Promise<number> {
  for (let i = 0; i < 3; i++) await healthy();
  await sleep(200);
  gc();
  return process.memoryUsage.rss();
}

async function hostile(
  file: Uint8Array,
  functionName: string,
  code: WasmErrorCode,
  opts: { limits?: WasmLimits; context?: Record<string, unknown>; msg?: RegExp } = {},
): Promise<WasmRunResult> {
  // The level before: with the same context already passed to an ordinary module on every worker
  // (a large context costs each heap that holds it room of its own, whatever the guest does).
  if (opts.context) await Promise.all(Array.from({ length: POOL }, () => rt.run({ bytes: echo, functionName: 'echo', input: {}, context: opts.context })));
  const before = await rssSettled();
  const timeoutMs = opts.limits?.timeoutMs ?? 5000;
  const t0 = performance.now();
  const r = await rt.run({ bytes: file, functionName, input: { x: 1 }, context: opts.context, limits: { timeoutMs, ...opts.limits } });
  const took = performance.now() - t0;
  if (r.ok) assert.fail(`${functionName}: expected ${code}, the run succeeded with ${JSON.stringify(r.output).slice(0, 100)}`);
  assert.equal(r.error.code, code, `${functionName}: expected ${code}, got ${r.error.code}: ${r.error.message}`);
  if (opts.msg) assert.match(r.error.message, opts.msg);
  assert.ok(took < timeoutMs + 1000, `${functionName} ended after ${took.toFixed(0)} ms (timeout ${timeoutMs} ms)`);
  const s = rt.stats();
  assert.ok(s.workers + s.retiring <= POOL, `pool: ${s.workers} workers + ${s.retiring} retiring > ${POOL}`);
  await healthy();
  // No thread keeps running guest code: within 1 s of the result, the CPU time stops growing.
  await sleep(1000);
  const cpu = await cpuOver(1000);
  assert.ok(cpu < 500, `${functionName}: the process used ${cpu.toFixed(0)} ms of CPU in the second after it stopped`);
  const rss = await rssSettled();
  assert.ok(rss <= before * 1.2, `${functionName}: RSS ${(rss / 2 ** 20).toFixed(0)} MiB, before ${(before / 2 ** 20).toFixed(0)} MiB`);
  return r;
}

test('class 1: tables are clamped and counted; table.grow past the limit is memory_limit', async () => {
  // 64 declared tables of 5,000,000 entries, no code: refused before anything is allocated.
  await hostile(fx('sandbox-holes/big-tables.wasm'), 'run', 'memory_limit', { msg: /320000000 initial entries.*table limit of 100000 entries.*byte offset/ });
  // one 9M-entry table.grow under a 16 MB limit
  const r = await hostile(tables, 'grow', 'memory_limit', { limits: { memoryMb: 16 }, msg: /table\.grow failed.*limit 100000 entries/ });
  assert.equal(r.memoryPeakBytes, 65536 + 100_000 * 8, 'memory_used_bytes counts the tables (8 bytes an entry)');
  await hostile(tables, 'grow_loop', 'memory_limit', { limits: { tableLimit: 150_000 }, msg: /limit 150000 entries/ });
  // a smaller step limit than the declared minimum
  await hostile(tables, 'ok', 'memory_limit', { limits: { tableLimit: 1000 }, msg: /100000 initial entries/ });
  const ok = await rt.run({ bytes: tables, functionName: 'ok', input: {} });
  assert.ok(ok.ok);
});

test('class 1 and 3: WASI iovec counts and sizes are bounded before anything is read', async () => {
  // 5,000,000 iovecs: EINVAL (the guest traps on it), never a gathered array of millions
  await hostile(hostCalls, 'iovecs', 'trap', { limits: { fuel: 1e9 } });
  // 1024 iovecs of 58 MB each: charged before the shim runs
  await hostile(hostCalls, 'iovecs_big', 'fuel_exhausted');
});

test('class 2: table bulk operations pay by size; with a huge budget the timeout stops them', async () => {
  for (const fn of ['fill_loop', 'copy_loop']) {
    const r = await hostile(tables, fn, 'fuel_exhausted');
    assert.equal(r.fuelConsumed, 1_000_000);
  }
  const before = rt.stats().respawns;
  const r = await hostile(tables, 'fill_loop', 'timeout', { limits: { fuel: 1e15, timeoutMs: 500 }, msg: /interrupted/ });
  assert.ok(r.fuelConsumed > 1_000_000, 'the fills were charged');
  assert.equal(rt.stats().respawns, before, 'the interrupt stopped the loop: no worker was terminated');
});

test('class 3: host calls pay by bytes and end with fuel_exhausted in milliseconds', async () => {
  const cases: [string, Record<string, unknown> | undefined][] = [
    ['set_context_big', undefined],
    ['set_context_loop', undefined],
    ['random_big', undefined],
    ['get_context_loop', { variables: {}, big: 'x'.repeat(8_000_000) }],
    ['log_loop', undefined],
  ];
  for (const [fn, context] of cases) {
    const r = await hostile(hostCalls, fn, 'fuel_exhausted', { context });
    assert.equal(r.fuelConsumed, 1_000_000, `${fn}: the log says what was used`);
    assert.ok(r.durationMs < 3000, `${fn} took ${r.durationMs.toFixed(0)} ms`);
  }
  // the logs a run keeps are bounded in bytes, not only in lines
  const r = await rt.run({ bytes: hostCalls, functionName: 'log_loop', input: {}, limits: { fuel: 1e9, timeoutMs: 5000 } });
  assert.ok(!r.ok);
  const kept = r.logs.reduce((n, l) => n + l.message.length, 0);
  assert.ok(kept <= 1024 * 1024 + 200 * r.logs.length, `kept ${kept} bytes of logs`);
  await healthy();
});

test('class 4: modules at the engine limits run, or are refused in terms of the uploaded module', async () => {
  for (const f of ['params-1000', 'results-1000', 'locals-49999']) {
    const r = await rt.run({ bytes: fx(`engine-limits/${f}.wasm`), functionName: 'run', input: {} });
    assert.ok(r.ok, `${f}: ${!r.ok ? `${r.error.code}: ${r.error.message}` : ''}`);
    assert.deepEqual(r.output, { ok: true });
  }
  const r = await hostile(fx('engine-limits/locals-50000.wasm'), 'run', 'unsupported_feature', {
    msg: /function #1 \('run'\) has 50000 locals \(2 parameters \+ 49998 declared, at byte offset \d+\).*limit is 50000/,
  });
  assert.doesNotMatch(r.ok ? '' : r.error.message, /exceeds internal limit|@\+/);
});

test('class 2: a worker terminated in an operation V8 cannot interrupt keeps its place until its thread exits', async () => {
  // Every run through the worker: the next run must wait for the terminated thread's place.
  const small = new WasmRuntime({ poolSize: 1, killGraceMs: 1, inline: false });
  try {
    const respawns = small.stats().respawns;
    const r = await small.run({
      bytes: fx('sandbox-holes/long-fill.wasm'),
      functionName: 'run',
      input: {},
      limits: { fuel: 1e15, timeoutMs: 50, memoryMb: 256 },
    });
    assert.ok(!r.ok && r.error.code === 'timeout', JSON.stringify(!r.ok && r.error));
    assert.equal(small.stats().respawns, respawns + 1, 'the worker was terminated in the middle of a 256 MiB fill');
    // at no point more threads than the pool size
    let s = small.stats();
    assert.ok(s.workers + s.retiring <= 1, JSON.stringify(s));
    const next = await small.run({ bytes: echo, functionName: 'echo_copy', input: { after: 'terminate' } });
    assert.ok(next.ok);
    assert.deepEqual(next.output, { after: 'terminate' });
    s = small.stats();
    assert.equal(s.retiring, 0);
    assert.ok(s.workers <= 1);
  } finally {
    await small.close();
  }
  await sleep(1000);
  const cpu = await cpuOver(1000);
  assert.ok(cpu < 500, `the process used ${cpu.toFixed(0)} ms of CPU in the second after`);
});

test('class 1: an output just under the 16 MiB cap that parses into millions of values does not reach the worker heap', async () => {
  const r = await rt.run({ bytes: hostCalls, functionName: 'huge_output', input: {}, limits: { timeoutMs: 20_000 } });
  assert.ok(r.ok, !r.ok ? `${r.error.code}: ${r.error.message}` : '');
  assert.equal((r.output as number[]).length, 8_388_607);
  await healthy();
});

test('class 2: a terminated worker never holds the process: it exits as soon as its work is done', async () => {
  // A child process: a run terminated in the middle of a long fill, then the script just ends
  // (no close()): the process must exit on its own, at once.
  const script = `
    import { readFileSync } from 'node:fs';
    import { WasmRuntime } from ${JSON.stringify(new URL('../../src/wasm/runtime/index.ts', import.meta.url).href)};
    const rt = new WasmRuntime({ poolSize: 1, killGraceMs: 1 });
    const bytes = new Uint8Array(readFileSync(${JSON.stringify(new URL('sandbox-holes/long-fill.wasm', root).pathname)}));
    const r = await rt.run({ bytes, functionName: 'run', input: {}, limits: { fuel: 1e15, timeoutMs: 50, memoryMb: 256 } });
    console.log(JSON.stringify({ code: r.ok ? 'ok' : r.error.code, respawns: rt.stats().respawns }));
  `;
  const t0 = performance.now();
  const out = await new Promise<{ code: number | null; stdout: string; ms: number }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, ms: performance.now() - t0 });
    });
  });
  assert.equal(out.code, 0, `the child did not exit on its own: ${out.stdout}`);
  assert.deepEqual(JSON.parse(out.stdout), { code: 'timeout', respawns: 1 });
  assert.ok(out.ms < 20_000, `the child took ${out.ms.toFixed(0)} ms`);
});

test('class 1: element segments are bounded on their counts, before the host keeps anything per entry', async () => {
  const { assemble, uleb, I, T } = await import('../../src/wasm/binary/index.ts');
  const n = 9_000_000;
  const seg = new Array<number>(n + 8);
  seg.length = 0;
  seg.push(0x01, 0x00, ...uleb(n));
  for (let i = 0; i < n; i++) seg.push(0);
  const bytes = assemble({
    types: [
      { params: [T.i32, T.i32], results: [T.i64] },
      { params: [T.i32], results: [T.i32] },
    ],
    funcs: [
      { type: 1, body: [...I.i32(1024)] },
      { type: 0, body: [...I.i64(0)] },
    ],
    memories: [{ min: 1 }],
    exports: [
      { name: 'memory', kind: 2, index: 0 },
      { name: 'alloc', kind: 0, index: 0 },
      { name: 'run', kind: 0, index: 1 },
    ],
    elements: [seg],
  });
  const heap0 = process.memoryUsage().heapUsed;
  await hostile(bytes, 'run', 'unsupported_feature', { msg: /9000000 entries or more in all, above the sandbox's limit of 1000000 \(at byte offset/ });
  assert.ok(process.memoryUsage().heapUsed < heap0 + 64 * 2 ** 20, 'no per-entry state was built');
});
