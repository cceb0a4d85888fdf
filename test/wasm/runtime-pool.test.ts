import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { WasmRuntime } from '../../src/wasm/runtime/index.ts';
import { assemble, I, sleb, T } from '../../src/wasm/binary/index.ts';

// The pool, the cache and the async bridge.
const root = new URL('../../fixtures/wasm/', import.meta.url);
const fx = (p: string): Uint8Array => new Uint8Array(readFileSync(new URL(p, root)));
const echo = fx('echo/echo.wasm');
const cacheDir = mkdtempSync(join(tmpdir(), 'vecron-wasm-cache-'));
const calls: unknown[] = [];
// This file tests the worker pool: every run goes to a worker (inline runs: runtime-inline.test.ts).
const rt = new WasmRuntime({
  poolSize: 2,
  inline: false,
  cacheDir,
  hostOps: {
    echo_async: (payload) => new Promise((resolve) => setTimeout(() => resolve({ echoed: payload }), 20)),
    fail_async: async () => {
      throw new Error('nope');
    },
    record: async (payload) => {
      calls.push(payload);
      return calls.length;
    },
  },
});
after(async () => {
  await rt.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

test('the same module prepared twice compiles once', async () => {
  const s0 = rt.stats();
  const a = await rt.prepare(echo);
  const b = await rt.prepare(echo);
  const s1 = rt.stats();
  assert.equal(s1.cacheMisses - s0.cacheMisses, 1);
  assert.equal(s1.cacheHits - s0.cacheHits, 1);
  assert.equal(s1.compiles - s0.compiles, 1);
  assert.equal(a.source, 'fresh');
  assert.equal(b.source, 'memory');
  assert.equal(a.hash, b.hash);
  assert.match(a.hash, /^[0-9a-f]{64}$/);
  assert.deepEqual(
    a.entries.map((e) => [e.name, e.form]),
    [
      ['echo', 'A'],
      ['echo_copy', 'A'],
      ['echo_cstr', 'B'],
    ],
  );
  assert.deepEqual(a.imports, []);
  assert.equal(a.memoryMaxPages, 64 * 16);
  // Runs of a prepared module hit the cache too.
  const r = await rt.run({ bytes: echo, functionName: 'echo', input: [1] });
  assert.ok(r.ok);
  assert.equal(rt.stats().compiles - s0.compiles, 1);
  // Another memory limit is another variant.
  const c = await rt.prepare(echo, { memoryMb: 8 });
  assert.equal(c.source, 'fresh');
  assert.equal(c.memoryMaxPages, 128);
  assert.notEqual(c.key, a.key);
  // Concurrent prepares of a new module share one build.
  const s2 = rt.stats();
  const many = await Promise.all(Array.from({ length: 5 }, () => rt.prepare(fx('trap/trap.wasm'))));
  assert.equal(new Set(many.map((m) => m.key)).size, 1);
  assert.equal(rt.stats().compiles - s2.compiles, 1);
});

test('the disk cache serves a new runtime without instrumenting again', async () => {
  const bytes = fx('low-stock/low-stock.wasm');
  await rt.prepare(bytes);
  assert.ok(readdirSync(cacheDir).some((f) => f.endsWith('.wasm')));
  const rt2 = new WasmRuntime({ poolSize: 1, cacheDir });
  try {
    const p = await rt2.prepare(bytes);
    assert.equal(p.source, 'disk');
    assert.equal(rt2.stats().diskHits, 1);
    const r = await rt2.run({ bytes, functionName: 'route_decision', input: { steps: { check_inventory: { output: { data: { stock_level: 500 } } } } } });
    assert.ok(r.ok);
    if (r.ok) assert.deepEqual(r.output, { next_step: 'continue_normal_flow', priority: 'normal' });
  } finally {
    await rt2.close();
  }
});

test('fresh instance per run: no state shared between runs', async () => {
  // echo's bump allocator starts at 1024 in every instance: the input lands at the same place.
  const ptrs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await rt.run({ bytes: echo, functionName: 'echo', input: { i } });
    assert.ok(r.ok);
    if (r.ok) assert.deepEqual(r.output, { i });
    ptrs.push(r.memoryPeakBytes);
  }
  assert.equal(new Set(ptrs).size, 1);
});

test('concurrent runs use the whole pool', async () => {
  const inputs = Array.from({ length: 40 }, (_, i) => ({ i, s: 'x'.repeat(i * 10) }));
  const rs = await Promise.all(inputs.map((input) => rt.run({ bytes: echo, functionName: 'echo_cstr', input })));
  rs.forEach((r, i) => {
    assert.ok(r.ok);
    if (r.ok) assert.deepEqual(r.output, inputs[i]);
  });
  assert.equal(rt.stats().workers, 2);
  assert.equal(rt.stats().busy, 0);
});

test('the async bridge: round trips, large results, errors', async () => {
  const small = await rt.debugHostCall('echo_async', { hello: 'world', n: 1 });
  assert.deepEqual(small, { ok: true, value: { echoed: { hello: 'world', n: 1 } }, error: undefined });
  // Larger than the shared buffer (64 KiB): through the port.
  const bigPayload = { s: 'é'.repeat(200_000) };
  const big = await rt.debugHostCall('echo_async', bigPayload);
  assert.equal(big.ok, true);
  assert.deepEqual(big.value, { echoed: bigPayload });
  const failed = await rt.debugHostCall('fail_async', {});
  assert.equal(failed.ok, false);
  assert.match(String(failed.error), /nope/);
  const unknown = await rt.debugHostCall('not_an_op', {});
  assert.equal(unknown.ok, false);
  assert.match(String(unknown.error), /no host operation 'not_an_op'/);
  // Many in a row, in order.
  calls.length = 0;
  for (let i = 0; i < 20; i++) {
    const r = await rt.debugHostCall('record', i);
    assert.deepEqual(r.value, i + 1);
  }
  assert.deepEqual(
    calls,
    Array.from({ length: 20 }, (_, i) => i),
  );
  const r = await rt.run({ bytes: echo, functionName: 'echo', input: 'still fine' });
  assert.ok(r.ok);
});

/** A WASI guest that sleeps 10 s in poll_oneoff. */
function sleeper(): Uint8Array {
  return assemble({
    types: [
      { params: [T.i32, T.i32, T.i32, T.i32], results: [T.i32] },
      { params: [T.i32], results: [T.i32] },
      { params: [T.i32, T.i32], results: [T.i64] },
    ],
    imports: [{ module: 'wasi_snapshot_preview1', name: 'poll_oneoff', func: 0 }],
    funcs: [
      { type: 1, body: [...I.i32(1024)] },
      {
        type: 2,
        body: [
          ...I.i32(24),
          ...I.i64(10_000_000_000n),
          0x37,
          0x03,
          0x00, // timeout 10 s
          ...I.i32(16),
          ...I.i32(1),
          0x36,
          0x02,
          0x00, // monotonic clock
          ...I.i32(0),
          ...I.i32(100),
          ...I.i32(1),
          ...I.i32(200),
          ...I.call(0),
          0x1a,
          ...I.i64((300n << 32n) | 2n),
        ],
      },
    ],
    memories: [{ min: 1 }],
    exports: [
      { name: 'memory', kind: 2, index: 0 },
      { name: 'alloc', kind: 0, index: 1 },
      { name: 'run', kind: 0, index: 2 },
    ],
    data: [[0x00, 0x41, ...sleb(300), 0x0b, 2, 0x7b, 0x7d]],
  });
}

test('a sleeping WASI guest is interrupted at its timeout', async () => {
  const before = rt.stats().respawns;
  const t0 = performance.now();
  const r = await rt.run({ bytes: sleeper(), functionName: 'run', input: {}, limits: { timeoutMs: 200 } });
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.code, 'timeout');
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(rt.stats().respawns, before);
  const ok = await rt.run({ bytes: echo, functionName: 'echo', input: 1 });
  assert.ok(ok.ok);
});

test('a worker that dies mid-run: worker_crashed, and the pool respawns', async () => {
  const p = rt.run({ bytes: fx('endless-loop/endless-loop.wasm'), functionName: 'run', input: {}, limits: { fuel: 1e15, timeoutMs: 10_000 } });
  const workers = () => (rt as unknown as { workers: { job: unknown; w: { terminate(): Promise<number> } }[] }).workers;
  // Until a worker has the run (a loaded machine may take a while to start or free one).
  let busy = workers().find((w) => w.job !== null);
  for (let i = 0; i < 400 && !busy; i++) {
    await new Promise((r) => setTimeout(r, 25));
    busy = workers().find((w) => w.job !== null);
  }
  assert.ok(busy);
  await busy.w.terminate();
  const r = await p;
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.code, 'worker_crashed');
  for (let i = 0; i < 4; i++) {
    const ok = await rt.run({ bytes: echo, functionName: 'echo', input: { i } });
    assert.ok(ok.ok);
  }
});

test('a different stack size gets its own worker', async () => {
  const r = await rt.run({ bytes: fx('deep-recursion/deep-recursion.wasm'), functionName: 'run', input: {}, limits: { fuel: 1e12, stackKb: 512 } });
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.code, 'stack_overflow');
  const ok = await rt.run({ bytes: echo, functionName: 'echo', input: 2 });
  assert.ok(ok.ok);
});

test('the import policy applies to disk-cache hits too', async () => {
  const bytes = fx('sum-amounts/sum-amounts.wasm');
  await rt.prepare(bytes); // written to the disk cache
  const strict = new WasmRuntime({ poolSize: 1, cacheDir, allowedImports: { wasi: false, hostModules: ['vecron'] } });
  try {
    await assert.rejects(strict.prepare(bytes), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal((e as { code?: string }).code, 'import_not_allowed');
      assert.match(e.message, /env\.log/);
      assert.match(e.message, /wasi_snapshot_preview1\.fd_write \(WASI is not allowed\)/);
      return true;
    });
    const r = await strict.run({ bytes, functionName: 'sum_amounts', input: {} });
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, 'import_not_allowed');
  } finally {
    await strict.close();
  }
});

test('an aborted signal stops a running guest with cancelled, drops a waiting one, and the pool goes on', async () => {
  const loop = fx('endless-loop/endless-loop.wasm');
  const limits = { fuel: 1e15, timeoutMs: 20_000 };
  const ac = new AbortController();
  // Both workers busy with endless loops, a third run waits in the queue.
  const running = [
    rt.run({ bytes: loop, functionName: 'run', input: {}, limits, signal: ac.signal }),
    rt.run({ bytes: loop, functionName: 'run', input: {}, limits, signal: ac.signal }),
  ];
  const waiting = rt.run({ bytes: loop, functionName: 'run', input: {}, limits, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 150));
  const t0 = Date.now();
  ac.abort();
  const results = await Promise.all([...running, waiting]);
  const tookMs = Date.now() - t0;
  for (const r of results) {
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'cancelled', JSON.stringify(!r.ok && r.error));
  }
  assert.ok(tookMs < limits.timeoutMs / 2, `stopped by the abort, not the timeout (${tookMs} ms)`);
  const pre = await rt.run({ bytes: loop, functionName: 'run', input: {}, limits, signal: AbortSignal.abort() });
  assert.equal(!pre.ok && pre.error.code, 'cancelled');
  const after = await rt.run({ bytes: echo, functionName: 'echo', input: { still: 'serving' } });
  assert.deepEqual(after.ok && after.output, { still: 'serving' });
});
