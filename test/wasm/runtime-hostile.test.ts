import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WasmRuntime, WasmModuleError, type WasmErrorCode, type WasmLimits, type WasmRunResult } from '../../src/wasm/runtime/index.ts';

// Each hostile module ends its run with its own error code, and the pool goes on serving.
const root = new URL('../../fixtures/wasm/', import.meta.url);
const fx = (p: string): Uint8Array => new Uint8Array(readFileSync(new URL(p, root)));
const rt = new WasmRuntime({ poolSize: 2 });
after(() => rt.close());
const echo = fx('echo/echo.wasm');

async function healthy(): Promise<void> {
  const input = { healthy: true, n: [1, 2, 3] };
  const r = await rt.run({ bytes: echo, functionName: 'echo_copy', input });
  assert.ok(r.ok, `echo after a hostile module: ${!r.ok ? `${r.error.code}: ${r.error.message}` : ''}`);
  if (r.ok) assert.deepEqual(r.output, input);
}

function failed(r: WasmRunResult, code: WasmErrorCode, msg?: RegExp): { code: WasmErrorCode; message: string; stack?: string } {
  if (r.ok) assert.fail(`expected ${code}, the run succeeded with ${JSON.stringify(r.output).slice(0, 100)}`);
  assert.equal(r.error.code, code, `expected ${code}, got ${r.error.code}: ${r.error.message}`);
  if (msg) assert.match(r.error.message, msg);
  return r.error;
}

async function expectRun(file: string, functionName: string, code: WasmErrorCode, msg?: RegExp, limits?: WasmLimits) {
  const r = await rt.run({ bytes: fx(file), functionName, input: { x: 1 }, limits });
  const e = failed(r, code, msg);
  await healthy();
  return { r, e };
}

test('endless loop: fuel_exhausted with a small budget', async () => {
  for (const fn of ['run', 'run_busy', 'run_cstr']) {
    const { r } = await expectRun('endless-loop/endless-loop.wasm', fn, 'fuel_exhausted', /fuel/, { fuel: 100_000 });
    assert.equal(r.fuelConsumed, 100_000, `${fn} consumed ${r.fuelConsumed}`);
  }
});

test('endless loop: timeout with a huge budget, the worker survives', async () => {
  const before = rt.stats().respawns;
  for (const fn of ['run', 'run_busy']) {
    const t0 = performance.now();
    const { r } = await expectRun('endless-loop/endless-loop.wasm', fn, 'timeout', /interrupted/, { fuel: 1e15, timeoutMs: 300 });
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `stopped after ${ms} ms`); // 300 ms + one poll interval, with slack for a loaded machine
    assert.ok(r.durationMs >= 290, `duration ${r.durationMs}`);
    assert.ok(r.fuelConsumed > 0);
  }
  // WASI command form too.
  await expectRun('endless-loop/endless-loop.wasm', '_start', 'timeout', undefined, { fuel: 1e15, timeoutMs: 300 });
  assert.equal(rt.stats().respawns, before, 'the interrupt stopped the loops without killing a worker');
});

test('memory bomb: memory_limit', async () => {
  const { r } = await expectRun('memory-bomb/memory-bomb.wasm', 'run', 'memory_limit', /limit/, { memoryMb: 16 });
  assert.ok(r.memoryPeakBytes > 15 * 1024 * 1024 && r.memoryPeakBytes <= 16 * 1024 * 1024, `peak ${r.memoryPeakBytes}`);
  await expectRun('memory-bomb/memory-bomb.wasm', 'run', 'memory_limit', /limit/);
  await expectRun('memory-bomb/memory-bomb.wasm', 'run_max', 'memory_limit', /limit/, { memoryMb: 8 });
  // An initial memory above the limit is refused at prepare.
  await assert.rejects(rt.prepare(fx('memory-bomb/big-initial.wasm')), (e: unknown) => e instanceof WasmModuleError && e.code === 'memory_limit');
  await expectRun('memory-bomb/big-initial.wasm', 'run', 'memory_limit');
  // ... and accepted under a larger one.
  const big = await rt.run({ bytes: fx('memory-bomb/big-initial.wasm'), functionName: 'run', input: {}, limits: { memoryMb: 256 } });
  assert.notEqual(!big.ok && big.error.code, 'memory_limit');
});

test('imported memory: clamped to the limit', async () => {
  const bytes = fx('foreign-import/imported-memory.wasm');
  const info = await rt.prepare(bytes, { memoryMb: 4 });
  assert.deepEqual(info.memory, { min: 1, max: 64, imported: true });
  const r = await rt.run({ bytes, functionName: 'run', input: { a: [1] }, limits: { memoryMb: 4 } });
  assert.ok(r.ok);
  if (r.ok) assert.deepEqual(r.output, { a: [1] });
});

test('deep recursion: stack_overflow', async () => {
  for (const fn of ['run', 'run_fat', 'run_mutual']) {
    await expectRun('deep-recursion/deep-recursion.wasm', fn, 'stack_overflow', /stack/, { fuel: 1e12 });
  }
});

test('trap: trap with the wasm stack', async () => {
  const { e } = await expectRun('trap/trap.wasm', 'run', 'trap', /unreachable/);
  assert.ok(e.stack, 'has a stack');
  const stack = e.stack!;
  for (const name of ['inner', 'middle', 'outer']) assert.match(stack, new RegExp(name), stack);
  assert.ok(stack.indexOf('inner') < stack.indexOf('middle') && stack.indexOf('middle') < stack.indexOf('outer'));
  await expectRun('trap/trap.wasm', 'run_div0', 'trap', /divi/);
  await expectRun('trap/trap.wasm', 'run_oob_load', 'trap', /out of bounds/);
  await expectRun('trap/trap.wasm', 'run_bad_indirect', 'trap');
  await expectRun('trap/trap.wasm', 'run_cstr', 'trap', /unreachable/);
});

test('out-of-bounds pointers: abi_error, never a host crash', async () => {
  const f = 'oob-pointer/oob-pointer.wasm';
  await expectRun(f, 'run', 'abi_error', /outside the memory/);
  await expectRun(f, 'run_len_past_end', 'abi_error', /65500 \+ length 100/);
  await expectRun(f, 'run_wrap', 'abi_error', /outside the memory/);
  await expectRun(f, 'run_huge_len', 'abi_error', /pointer 0 \+ length 4294967295/);
  await expectRun(f, 'run_huge_len', 'abi_error', /outside the memory/, { maxOutputBytes: 0xffffffff });
  await expectRun(f, 'run_negative', 'abi_error', /outside the memory/);
  await expectRun(f, 'run_cstr', 'abi_error', /outside the memory/);
  await expectRun(f, 'run_cstr_unterminated', 'abi_error', /NUL/);
  await expectRun(f, 'run_log_oob', 'abi_error', /log/);
  await expectRun(f, 'run_set_context_oob', 'abi_error', /set_context/);
});

test('invalid UTF-8 or JSON output: invalid_output', async () => {
  const f = 'invalid-utf8/invalid-utf8.wasm';
  for (const fn of ['run', 'run_overlong', 'run_surrogate', 'run_truncated', 'run_cstr']) {
    await expectRun(f, fn, 'invalid_output', /UTF-8/);
  }
  await expectRun(f, 'run_not_json', 'invalid_output', /JSON/);
  const r = await rt.run({ bytes: fx(f), functionName: 'run_log', input: {} });
  assert.ok(r.ok);
  if (r.ok) assert.deepEqual(r.output, {});
  assert.equal(r.logs.length, 1);
  assert.ok(r.logs[0].message.includes('\uFFFD'), 'the log line is sanitized');
});

test('oversize output: output_too_large', async () => {
  const f = 'oversize-output/oversize-output.wasm';
  await expectRun(f, 'run', 'output_too_large', /cap/, { fuel: 1e9 });
  await expectRun(f, 'run_64m', 'memory_limit', undefined, { fuel: 1e9 });
  await expectRun(f, 'run_16m_cstr', 'output_too_large', /cap/, { fuel: 1e9, maxOutputBytes: 16 * 1024 * 1024 - 1 });
  // Exactly at the cap is allowed.
  const atCap = await rt.run({ bytes: fx(f), functionName: 'run_16m_cstr', input: {}, limits: { fuel: 1e9 } });
  assert.ok(atCap.ok, !atCap.ok ? atCap.error.message : '');
  if (atCap.ok) assert.equal((atCap.output as string).length, 16 * 1024 * 1024 - 2);
  await expectRun(f, 'run', 'output_too_large', /1000/, { fuel: 1e9, maxOutputBytes: 1000 });
});

test('missing exports and wrong signatures: abi_error naming them', async () => {
  await expectRun('missing-exports/missing-exports.wasm', 'run', 'abi_error', /'alloc'/);
  await expectRun('missing-exports/no-memory.wasm', 'run', 'abi_error', /'memory'/);
  await expectRun('echo/echo.wasm', 'nope', 'abi_error', /'nope'.*echo/);
  const f = 'wrong-signature/wrong-signature.wasm';
  await expectRun(f, 'run', 'abi_error', /'run' has signature \(f32\)->\(f32\); expected \(i32,i32\)->\(i64\)/);
  await expectRun(f, 'run_void', 'abi_error', /'run_void' has signature \(i32,i32\)->\(\)/);
  await expectRun(f, 'run_multi', 'abi_error', /'run_multi' has signature \(i32,i32\)->\(i32,i32\)/);
  await expectRun(f, 'run_i64_params', 'abi_error', /'run_i64_params' has signature \(i64,i64\)->\(i64\)/);
  await expectRun(f, 'run_three', 'abi_error', /'run_three' has signature \(i32,i32,i32\)->\(i64\)/);
  await expectRun(f, 'not_a_function', 'abi_error', /'not_a_function' is a global/);
  await expectRun('wrong-signature/bad-alloc.wasm', 'run', 'abi_error', /'alloc' has signature \(i64\)->\(i64\); expected \(i32\)->\(i32\)/);
});

test('foreign imports: import_not_allowed at prepare, naming them', async () => {
  await assert.rejects(rt.prepare(fx('foreign-import/foreign-import.wasm')), (e: unknown) => {
    assert.ok(e instanceof WasmModuleError);
    assert.equal(e.code, 'import_not_allowed');
    assert.match(e.message, /evil\.system/);
    return true;
  });
  await assert.rejects(rt.prepare(fx('foreign-import/unknown-vecron.wasm')), (e: unknown) => {
    assert.ok(e instanceof WasmModuleError);
    assert.equal(e.code, 'import_not_allowed');
    assert.match(e.message, /vecron\.exec/);
    assert.match(e.message, /vecron\.log \(wrong signature: expected \(i32,i32,i32\)->\(\), found \(i64\)->\(\)\)/);
    return true;
  });
  await expectRun('foreign-import/foreign-import.wasm', 'run', 'import_not_allowed', /evil\.system/);
});

test('invalid modules: invalid_module', async () => {
  await assert.rejects(rt.prepare(new Uint8Array([0, 1, 2, 3])), (e: unknown) => e instanceof WasmModuleError && e.code === 'invalid_module');
  const r = await rt.run({ bytes: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 99]), functionName: 'run', input: {} });
  failed(r, 'invalid_module');
  await healthy();
});
