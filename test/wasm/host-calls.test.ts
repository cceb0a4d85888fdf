import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WasmRuntime, HOST_FUNCTIONS, type WasmRunRequest, type WasmRunResult } from '../../src/wasm/runtime/index.ts';
import { HostCallError, PRIVILEGED_HOST_FUNCTIONS, type HostAnswer, type HostDispatch } from '../../src/wasm/host/types.ts';
import { HOST_BOUNDS, HOST_COSTS } from '../../src/wasm/instrument/costs.ts';

// The calling convention of the privileged host functions (issue 15, docs/abi.md): real workers,
// guests in WAT (fixtures/wasm/host-abi/), dispatches that answer, fail, throw or never answer.
const root = new URL('../../fixtures/wasm/', import.meta.url);
const fx = (p: string): Uint8Array => new Uint8Array(readFileSync(new URL(p, root)));
const abi = fx('host-abi/host-abi.wasm');
const abiEnv = fx('host-abi/host-abi-env.wasm');
const noAlloc = fx('host-abi/host-abi-noalloc.wasm');
const echo = fx('echo/echo.wasm');

const rt = new WasmRuntime({ poolSize: 2, workerFunctionModules: [new URL('./support/worker-functions.ts', import.meta.url).href] });
after(() => rt.close());

/** A dispatch that records its calls and answers `answer(fn, request)`. */
function dispatch(
  answer: (fn: string, req: any, signal: AbortSignal) => Promise<HostAnswer> | HostAnswer = (fn, req) => ({
    response: { fn, req },
    target: `t:${fn}`,
    outcome: 'ok',
  }),
): HostDispatch & { calls: { fn: string; req: any; signal: AbortSignal }[] } {
  const calls: { fn: string; req: any; signal: AbortSignal }[] = [];
  const d = (async (fn: string, req: unknown, signal: AbortSignal) => {
    calls.push({ fn, req, signal });
    return answer(fn, req, signal);
  }) as HostDispatch & { calls: typeof calls };
  d.calls = calls;
  return d;
}

const run = (functionName: string, input: unknown, more: Partial<WasmRunRequest> = {}): Promise<WasmRunResult> =>
  rt.run({ bytes: abi, functionName, input, ...more });

function output(r: WasmRunResult): any {
  if (!r.ok) assert.fail(`the run failed: ${r.error.code}: ${r.error.message}`);
  return r.output;
}
function failed(r: WasmRunResult, code: string, msg?: RegExp): void {
  if (r.ok) assert.fail(`expected ${code}, the run succeeded with ${JSON.stringify(r.output).slice(0, 200)}`);
  assert.equal(r.error.code, code, r.error.message);
  if (msg) assert.match(r.error.message, msg);
}
async function healthy(): Promise<void> {
  const r = await rt.run({ bytes: echo, functionName: 'echo_copy', input: { still: 'fine' } });
  assert.deepEqual(output(r), { still: 'fine' });
}

test('the seven functions are importable from vecron and env as (i32,i32)->(i64)', async () => {
  for (const fn of PRIVILEGED_HOST_FUNCTIONS) assert.deepEqual(HOST_FUNCTIONS[fn], { params: ['i32', 'i32'], results: ['i64'] });
  for (const bytes of [abi, abiEnv]) {
    const info = await rt.prepare(bytes);
    assert.deepEqual(
      info.imports
        .map((i) => i.name)
        .filter((n) => n !== 'log')
        .sort(),
      [...PRIVILEGED_HOST_FUNCTIONS].sort(),
    );
    const d = dispatch();
    for (const fn of PRIVILEGED_HOST_FUNCTIONS) {
      const r = await rt.run({ bytes, functionName: fn, input: { n: fn.length }, host: d });
      assert.deepEqual(output(r), { fn, req: { n: fn.length } }, `${fn} answers through alloc`);
    }
    assert.deepEqual(
      d.calls.map((c) => c.fn),
      [...PRIVILEGED_HOST_FUNCTIONS],
    );
  }
});

test('the answer is written through alloc and the call recorded', async () => {
  const d = dispatch(() => ({ response: { epoch_ms: 1, iso: 'x' }, target: 'now UTC', outcome: 'ok' }));
  const input = { op: 'now', tz: 'UTC' };
  const r = await run('time', input, { host: d });
  assert.deepEqual(output(r), { epoch_ms: 1, iso: 'x' });
  assert.equal(r.hostCalls.length, 1);
  const c = r.hostCalls[0];
  assert.equal(c.seq, 0);
  assert.equal(c.function, 'time');
  assert.equal(c.target, 'now UTC');
  assert.equal(c.outcome, 'ok');
  assert.equal(c.served, 'host');
  assert.equal(c.bytes_in, Buffer.byteLength(JSON.stringify(input)));
  assert.equal(c.bytes_out, Buffer.byteLength(JSON.stringify({ epoch_ms: 1, iso: 'x' })));
  assert.deepEqual(c.request, input);
  assert.deepEqual(c.response, { epoch_ms: 1, iso: 'x' });
  assert.ok(c.duration_us >= 0 && c.duration_us < 30e6);
  assert.ok(Math.abs(Date.parse(c.at) - Date.now()) < 60_000);
  assert.equal(r.hostCallsDropped, 0);
  // A run without host calls has an empty record.
  const plain = await rt.run({ bytes: echo, functionName: 'echo', input: 1 });
  assert.deepEqual(plain.hostCalls, []);
});

test('a run without a dispatch gets unavailable answers', async () => {
  const r = await run('http_request', { method: 'GET', url: 'http://127.0.0.1/' });
  const out = output(r);
  assert.equal(out.error.code, 'unavailable');
  assert.equal(r.hostCalls[0].outcome, 'unavailable');
});

test('a request above the size cap is a too_large answer, not read and not dispatched', async () => {
  const d = dispatch();
  const input = { pad: 'x'.repeat(200) };
  const r = await run('http_request', input, { host: d, hostLimits: { maxRequestBytes: 64 } });
  const out = output(r);
  assert.equal(out.error.code, 'too_large');
  assert.match(out.error.message, /above the limit of 64 bytes/);
  assert.equal(d.calls.length, 0);
  assert.equal(r.hostCalls[0].outcome, 'too_large');
  assert.equal(r.hostCalls[0].request, null, 'the request was never decoded');
  // An answer above the cap: too_large instead of the answer.
  const big = dispatch(() => ({ response: { body: 'y'.repeat(1000) }, target: null, outcome: 'ok' }));
  const r2 = await run('http_request', {}, { host: big, hostLimits: { maxResponseBytes: 100 } });
  assert.equal(output(r2).error.code, 'too_large');
  assert.equal(big.calls.length, 1);
  assert.equal(r2.hostCalls[0].outcome, 'too_large');
});

test('bad JSON, bad UTF-8 and a non-object are bad_request answers', async () => {
  const d = dispatch();
  for (const [fn, re] of [
    ['bad_json', /not valid JSON/],
    ['bad_utf8', /not valid UTF-8/],
    ['not_object', /must be a JSON object, not an array/],
  ] as const) {
    const r = await run(fn, {}, { host: d });
    const out = output(r);
    assert.equal(out.error.code, 'bad_request', fn);
    assert.match(out.error.message, re);
    assert.equal(r.hostCalls[0].outcome, 'bad_request');
  }
  assert.equal(d.calls.length, 0);
  const r = await run('time', 'a string', { host: d });
  assert.match(output(r).error.message, /not string/);
});

test('error answers: HostCallError, a throwing dispatch, garbage; none takes the host down', async () => {
  const denied = dispatch(() => {
    throw new HostCallError('egress_denied', 'metadata address refused', 'network:external');
  });
  const r = await run('http_request', { url: 'http://169.254.169.254/' }, { host: denied });
  assert.deepEqual(output(r), { error: { code: 'egress_denied', message: 'metadata address refused' } });
  assert.equal(r.hostCalls[0].outcome, 'egress_denied');
  assert.equal(r.hostCalls[0].permission, 'network:external');
  assert.ok(r.logs.some((l) => l.level === 'warn' && /http_request.*refused: egress_denied, missing network:external/.test(l.message)));

  const answered = dispatch(() => ({
    response: errorResponseOf('permission_denied'),
    target: 'db/t',
    outcome: 'permission_denied',
    permission: 'database:read',
  }));
  const r1 = await run('db_query', {}, { host: answered });
  assert.equal(output(r1).error.code, 'permission_denied');
  assert.equal(r1.hostCalls[0].target, 'db/t');
  assert.equal(r1.hostCalls[0].permission, 'database:read');

  const garbage: [string, HostDispatch][] = [
    [
      'throws',
      (async () => {
        throw new Error('boom');
      }) as HostDispatch,
    ],
    [
      'throws synchronously',
      (() => {
        throw new TypeError('sync boom');
      }) as unknown as HostDispatch,
    ],
    ['null', (async () => null) as unknown as HostDispatch],
    ['a number', (async () => 5) as unknown as HostDispatch],
    ['no response', (async () => ({ target: 'x', outcome: 'ok' })) as unknown as HostDispatch],
    ['an unknown outcome', (async () => ({ response: {}, target: null, outcome: 'great' })) as unknown as HostDispatch],
    ['not JSON', (async () => ({ response: { n: 1n }, target: null, outcome: 'ok' })) as unknown as HostDispatch],
  ];
  for (const [what, host] of garbage) {
    const g = await run('db_query', {}, { host });
    const out = output(g);
    assert.equal(out.error.code, 'unavailable', what);
    assert.equal(g.hostCalls[0].outcome, 'unavailable', what);
  }
  await healthy();
});

function errorResponseOf(code: string) {
  return { error: { code, message: `refused: ${code}` } };
}

test('a broken ABI ends the run with abi_error: no alloc, a request out of bounds, alloc out of bounds', async () => {
  const d = dispatch();
  const r1 = await rt.run({ bytes: noAlloc, functionName: '_start', input: {}, host: d });
  failed(r1, 'abi_error', /alloc/);
  const r2 = await run('oob_request', {}, { host: d });
  failed(r2, 'abi_error', /time request: pointer 4294967040 \+ length 512/);
  assert.equal(d.calls.length, 1, 'the out-of-bounds request was never dispatched (the command without alloc was)');
  const r3 = await run('bad_alloc', {}, { host: d });
  failed(r3, 'abi_error', /time answer: alloc\(\d+\) returned/);
  await healthy();
});

test('fuel is charged by the bytes in before the call and by the bytes out before the write', async () => {
  const d = dispatch();
  // A large request with little fuel: fuel_exhausted before the dispatch is called.
  const big = { pad: 'x'.repeat(200_000) };
  const r = await run('http_request', big, { host: d, limits: { fuel: 100_000 } });
  failed(r, 'fuel_exhausted');
  assert.equal(d.calls.length, 0);
  // The same call with fuel: the difference in fuel between two sizes is the difference in bytes.
  const small = await run('http_request', { pad: '' }, { host: d, limits: { fuel: 10_000_000 } });
  const large = await run('http_request', big, { host: d, limits: { fuel: 10_000_000 } });
  output(small);
  output(large);
  // The answer echoes the request: charged once in and once out.
  const diff = large.fuelConsumed - small.fuelConsumed;
  const bytes = 2 * 200_000;
  assert.ok(diff >= bytes / HOST_COSTS.jsonBytesPerUnit && diff < bytes * 1.01 + 1000, `fuel difference ${diff} for ${bytes} bytes`);
  assert.ok(small.fuelConsumed >= HOST_COSTS.call + HOST_COSTS.privilegedCall + HOST_COSTS.bridgedCall);
  // A large answer with little fuel: the dispatch ran, the answer is never written.
  const answerBig = dispatch(() => ({ response: { body: 'z'.repeat(300_000) }, target: null, outcome: 'ok' }));
  const r2 = await run('http_request', {}, { host: answerBig, limits: { fuel: 100_000 } });
  failed(r2, 'fuel_exhausted');
  assert.equal(answerBig.calls.length, 1);
});

test('a call that outlives the timeout ends the run within timeout + 1 s and its signal is aborted', async () => {
  const d = dispatch(() => new Promise<never>(() => {}));
  const t0 = performance.now();
  const r = await run('http_request', { url: 'http://127.0.0.1:9/' }, { host: d, limits: { timeoutMs: 300 } });
  const ms = performance.now() - t0;
  failed(r, 'timeout');
  assert.ok(ms < 1300, `ended after ${ms} ms`);
  assert.equal(d.calls.length, 1);
  assert.equal(d.calls[0].signal.aborted, true, 'the I/O of the call was aborted');
  assert.equal(r.hostCalls.length, 1);
  assert.equal(r.hostCalls[0].outcome, 'timeout');
  assert.equal(rt.stats().retiring, 0);
  await healthy();
});

test('a dispatch that honours its signal: aborted at the timeout, the run ends with timeout', async () => {
  const d = dispatch(
    (_fn, _req, signal) => new Promise<HostAnswer>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })),
  );
  const r = await run('db_query', {}, { host: d, limits: { timeoutMs: 200 } });
  failed(r, 'timeout');
  assert.equal(d.calls[0].signal.aborted, true);
  await healthy();
});

test('a cancel during a call ends the run with cancelled and aborts the call', async () => {
  const ac = new AbortController();
  const d = dispatch(() => {
    setTimeout(() => ac.abort(), 50);
    return new Promise<never>(() => {});
  });
  const t0 = performance.now();
  const r = await run('file_read', { path: 'a' }, { host: d, signal: ac.signal, limits: { timeoutMs: 20_000 } });
  failed(r, 'cancelled');
  assert.ok(performance.now() - t0 < 5000);
  assert.equal(d.calls[0].signal.aborted, true);
  assert.equal(r.hostCalls[0].outcome, 'cancelled');
  await healthy();
});

test('the record: one entry per call, in order, with the fields', async () => {
  const d = dispatch((fn, req) => ({ response: { fn, n: req.n }, target: `${fn}:${req.n}`, outcome: fn === 'file_read' ? 'not_found' : 'ok' }));
  const r = await run('sequence', { n: 7 }, { host: d });
  assert.deepEqual(output(r), { fn: 'crypto', n: 7 });
  assert.deepEqual(
    r.hostCalls.map((c) => [c.seq, c.function, c.target, c.outcome, c.served]),
    [
      [0, 'http_request', 'http_request:7', 'ok', 'host'],
      [1, 'db_query', 'db_query:7', 'ok', 'host'],
      [2, 'file_read', 'file_read:7', 'not_found', 'host'],
      [3, 'time', 'time:7', 'ok', 'host'],
      [4, 'crypto', 'crypto:7', 'ok', 'host'],
    ],
  );
  for (let i = 1; i < r.hostCalls.length; i++) assert.ok(r.hostCalls[i].at >= r.hostCalls[i - 1].at);
  for (const c of r.hostCalls) {
    assert.deepEqual(c.request, { n: 7 });
    assert.equal(c.bytes_out, Buffer.byteLength(JSON.stringify({ fn: c.function, n: 7 })));
  }
});

test('the record is bounded: long strings cut and marked, calls past the cap counted', async () => {
  const long = 'y'.repeat(10_000);
  const d = dispatch(() => ({ response: { body: long }, target: null, outcome: 'ok' }));
  const r = await run('http_request', { body: long }, { host: d });
  assert.equal(output(r).body, long, 'the guest gets the whole answer');
  const c = r.hostCalls[0];
  assert.deepEqual(c.request, { body: { $cut: 'string', length: 10_000, head: long.slice(0, HOST_BOUNDS.maxRecordStringChars) } });
  assert.deepEqual(c.response, { body: { $cut: 'string', length: 10_000, head: long.slice(0, HOST_BOUNDS.maxRecordStringChars) } });
  assert.equal(c.bytes_out, 10_000 + 11);

  const rows = Array.from({ length: 20_000 }, (_, i) => [i, 'row']);
  const many = dispatch(() => ({ response: { rows }, target: null, outcome: 'ok' }));
  const r2 = await run('db_query', {}, { host: many });
  const kept = (r2.hostCalls[0].response as { rows: unknown[] }).rows;
  assert.ok(kept.length > 100 && kept.length < 20_000);
  assert.deepEqual(kept.at(-1), { $cut: 'items', dropped: 20_000 - (kept.length - 1) });

  const timeFn = dispatch(() => ({ response: { epoch_ms: 1 }, target: 'now', outcome: 'ok' }));
  const r3 = await run('many', { op: 'now' }, { host: timeFn, limits: { fuel: 1e9 } });
  output(r3);
  assert.equal(timeFn.calls.length, 1005);
  assert.equal(r3.hostCalls.length, HOST_BOUNDS.maxHostCallRecords);
  assert.equal(r3.hostCallsDropped, 5);
  assert.equal(r3.hostCalls.at(-1)!.seq, HOST_BOUNDS.maxHostCallRecords - 1);
});

test('a function served in the worker answers without the dispatch; FORWARD bridges it', async () => {
  const d = dispatch();
  const r = await run('crypto', { op: 'echo', data: 'abc' }, { host: d });
  assert.deepEqual(output(r), { echoed: { op: 'echo', data: 'abc' }, thread: 'worker' });
  assert.equal(r.hostCalls[0].served, 'worker');
  assert.equal(r.hostCalls[0].target, 'test echo');
  assert.equal(d.calls.length, 0);
  const denied = await run('crypto', { op: 'fail' }, { host: d });
  assert.equal(output(denied).error.code, 'permission_denied');
  assert.equal(denied.hostCalls[0].permission, 'file:read');
  assert.equal(denied.hostCalls[0].served, 'worker');
  const fwd = await run('crypto', { op: 'sha256', key_secret: 'K' }, { host: d });
  assert.deepEqual(output(fwd), { fn: 'crypto', req: { op: 'sha256', key_secret: 'K' } });
  assert.equal(fwd.hostCalls[0].served, 'host');
  assert.equal(d.calls.length, 1);
  // Charged less than a bridged call.
  assert.ok(r.fuelConsumed < fwd.fuelConsumed - HOST_COSTS.bridgedCall / 2);
});

test('a run that loses its worker during a call aborts the call', async () => {
  const own = new WasmRuntime({ poolSize: 1 });
  let called!: () => void;
  const inCall = new Promise<void>((resolve) => (called = resolve));
  const d = dispatch(() => {
    called();
    return new Promise<never>(() => {});
  });
  const pending = own.run({ bytes: abi, functionName: 'db_query', input: {}, host: d, limits: { timeoutMs: 20_000 } });
  await inCall;
  await own.close(); // the worker is terminated under the run
  failed(await pending, 'worker_crashed');
  assert.equal(d.calls[0].signal.aborted, true);
});
