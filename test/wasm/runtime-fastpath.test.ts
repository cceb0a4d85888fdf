import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { WasmRuntime, type WasmRuntimeOptions } from '../../src/wasm/runtime/index.ts';

// The run hot path: the shared-buffer result channel (and its postMessage fallbacks), the spin and
// poll options, and the caller-provided module hash.
const root = new URL('../../fixtures/wasm/', import.meta.url);
const fx = (p: string): Uint8Array => new Uint8Array(readFileSync(new URL(p, root)));
const echo = fx('echo/echo.wasm');
const echoHash = createHash('sha256').update(echo).digest('hex');

const runtimes: WasmRuntime[] = [];
const make = (o: WasmRuntimeOptions): WasmRuntime => {
  const rt = new WasmRuntime({ poolSize: 1, ...o });
  runtimes.push(rt);
  return rt;
};
after(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
});

const variants: [string, WasmRuntimeOptions][] = [
  ['shared results (default)', {}],
  ['postMessage results', { sharedResults: false }],
  ['no worker spin', { workerSpinUs: 0 }],
  ['main-thread spin', { resultSpinUs: 30 }],
  ['main-thread poll', { resultPollUs: 300, workerSpinUs: 500 }],
];

for (const [name, opts] of variants) {
  test(`${name}: results, large outputs, errors, logs and timeouts come back intact`, async () => {
    const rt = make(opts);
    // Small outputs (the shared buffer), many in a row and concurrently.
    for (let i = 0; i < 50; i++) {
      const input = { i, s: 'é€😀'.repeat(i), n: null, a: [1.5, -2, true] };
      const r = await rt.run({ bytes: echo, functionName: i % 2 ? 'echo' : 'echo_cstr', input });
      assert.ok(r.ok, JSON.stringify(r));
      if (r.ok) assert.deepEqual(r.output, input);
      assert.equal(r.fuelConsumed > 0, true);
      assert.deepEqual(r.logs, []);
      assert.equal(r.stdout, '');
      assert.equal(r.exitCode, null);
    }
    const inputs = Array.from({ length: 20 }, (_, i) => ({ i }));
    const rs = await Promise.all(inputs.map((input) => rt.run({ bytes: echo, functionName: 'echo', input })));
    rs.forEach((r, i) => assert.deepEqual(r.ok && r.output, inputs[i]));
    // An output larger than the shared result buffer goes through the port.
    const big = { s: 'x'.repeat(300_000), u: '€'.repeat(30_000) };
    const rb = await rt.run({ bytes: echo, functionName: 'echo', input: big });
    assert.ok(rb.ok);
    if (rb.ok) assert.deepEqual(rb.output, big);
    // Large and small outputs in turns, one at a time and concurrently: each run's result channel
    // is settled before the next run starts.
    for (let i = 0; i < 10; i++) {
      const input = i % 2 ? { i, s: 'y'.repeat(100_000) } : { i };
      const r = await rt.run({ bytes: echo, functionName: 'echo', input });
      assert.deepEqual(r.ok && r.output, input);
    }
    const mixed = Array.from({ length: 12 }, (_, i) => (i % 3 ? { i } : { i, s: 'z'.repeat(80_000) }));
    const rm = await Promise.all(mixed.map((input) => rt.run({ bytes: echo, functionName: 'echo_cstr', input })));
    rm.forEach((r, i) => assert.deepEqual(r.ok && r.output, mixed[i]));
    // Errors.
    const notJson = await rt.run({ bytes: fx('invalid-utf8/invalid-utf8.wasm'), functionName: 'run_not_json', input: {} });
    assert.equal(notJson.ok, false);
    if (!notJson.ok) {
      assert.equal(notJson.error.code, 'invalid_output');
      assert.match(notJson.error.message, /not valid JSON/);
    }
    assert.ok(notJson.fuelConsumed > 0);
    const logged = await rt.run({ bytes: fx('invalid-utf8/invalid-utf8.wasm'), functionName: 'run_log', input: {} });
    assert.deepEqual(logged.ok && logged.output, {});
    const missing = await rt.run({ bytes: echo, functionName: 'nope', input: 1 });
    assert.equal(missing.ok, false);
    if (!missing.ok) assert.equal(missing.error.code, 'abi_error');
    const fuel = await rt.run({ bytes: fx('endless-loop/endless-loop.wasm'), functionName: 'run', input: {}, limits: { fuel: 100_000 } });
    assert.equal(fuel.ok, false);
    if (!fuel.ok) assert.equal(fuel.error.code, 'fuel_exhausted');
    const t0 = performance.now();
    const slow = await rt.run({ bytes: fx('endless-loop/endless-loop.wasm'), functionName: 'run', input: {}, limits: { fuel: 1e15, timeoutMs: 200 } });
    assert.equal(slow.ok, false);
    if (!slow.ok) assert.equal(slow.error.code, 'timeout');
    assert.ok(performance.now() - t0 < 1200);
    const again = await rt.run({ bytes: echo, functionName: 'echo', input: 'after' });
    assert.deepEqual(again.ok && again.output, 'after');
  });
}

test('a worker killed while the main thread awaits its result: worker_crashed, then the pool goes on', async () => {
  for (const opts of [{}, { resultPollUs: 300 }] as WasmRuntimeOptions[]) {
    const rt = make(opts);
    await rt.warmup();
    const p = rt.run({ bytes: fx('endless-loop/endless-loop.wasm'), functionName: 'run', input: {}, limits: { fuel: 1e15, timeoutMs: 10_000 } });
    await new Promise((r) => setTimeout(r, 100));
    const workers = (rt as unknown as { workers: { job: unknown; w: { terminate(): Promise<number> } }[] }).workers;
    const busy = workers.find((w) => w.job !== null);
    assert.ok(busy);
    await busy.w.terminate();
    const r = await p;
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, 'worker_crashed');
    const ok = await rt.run({ bytes: echo, functionName: 'echo', input: { ok: 1 } });
    assert.deepEqual(ok.ok && ok.output, { ok: 1 });
  }
});

test('a caller-provided hash: used on a cache hit, checked on a miss', async () => {
  const rt = make({});
  // A miss with the right hash: prepared and run.
  const s0 = rt.stats();
  const a = await rt.run({ bytes: echo, hash: echoHash, functionName: 'echo', input: { a: 1 } });
  assert.deepEqual(a.ok && a.output, { a: 1 });
  assert.equal(rt.stats().cacheMisses - s0.cacheMisses, 1);
  // A hit.
  const b = await rt.run({ bytes: echo, hash: echoHash, functionName: 'echo', input: { b: 2 } });
  assert.deepEqual(b.ok && b.output, { b: 2 });
  assert.equal(rt.stats().cacheHits - s0.cacheHits, 1);
  assert.equal(rt.stats().compiles - s0.compiles, 1);
  // A wrong hash on a miss is refused.
  const wrong = await rt.run({ bytes: echo, hash: 'ab'.repeat(32), functionName: 'echo', input: 1 });
  assert.equal(wrong.ok, false);
  if (!wrong.ok) {
    assert.equal(wrong.error.code, 'invalid_module');
    assert.match(wrong.error.message, /not the SHA-256/);
  }
  // A malformed hash is refused.
  for (const hash of ['xyz', echoHash.toUpperCase(), 42 as unknown as string]) {
    const bad = await rt.run({ bytes: echo, hash, functionName: 'echo', input: 1 });
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.error.code, 'invalid_module');
  }
  // Another memory limit is another cache entry, still checked.
  const c = await rt.run({ bytes: echo, hash: echoHash, functionName: 'echo', input: 3, limits: { memoryMb: 8 } });
  assert.deepEqual(c.ok && c.output, 3);
});

test('entry resolution is cached per module but still reports ABI errors every time', async () => {
  const rt = make({});
  for (let i = 0; i < 3; i++) {
    const r = await rt.run({ bytes: echo, functionName: 'memory', input: 1 });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.code, 'abi_error');
      assert.match(r.error.message, /is a memory, not a function/);
    }
  }
  const ok = await rt.run({ bytes: echo, functionName: 'echo_cstr', input: [1] });
  assert.deepEqual(ok.ok && ok.output, [1]);
});

test('the same byte array changed in place between runs is hashed (and prepared) again', async () => {
  const rt = make({});
  const bytes = echo.slice();
  for (let i = 0; i < 3; i++) {
    const r = await rt.run({ bytes, functionName: 'echo', input: i });
    assert.deepEqual(r.ok && r.output, i);
  }
  bytes[1] = 0; // no longer a module (bad magic): must not be answered from the cache
  const bad = await rt.run({ bytes, functionName: 'echo', input: 1 });
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.equal(bad.error.code, 'invalid_module');
  bytes[1] = echo[1];
  const again = await rt.run({ bytes, functionName: 'echo', input: 2 });
  assert.deepEqual(again.ok && again.output, 2);
});
