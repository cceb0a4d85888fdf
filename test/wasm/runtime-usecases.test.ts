import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WasmRuntime, type WasmRunResult } from '../../src/wasm/runtime/index.ts';
import { CUSTOMERS as customers, CUSTOMER_TIERS } from '../fixtures/customer-tiers.ts';

// The use cases of fixtures/wasm/README.md, in every language, through the real runtime.
const root = new URL('../../fixtures/wasm/', import.meta.url);
const fx = (p: string): Uint8Array => new Uint8Array(readFileSync(new URL(p, root)));
const rt = new WasmRuntime({ poolSize: 2 });
after(() => rt.close());

function ok(r: WasmRunResult): unknown {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.output;
}

test('customer-tiers (Rust, form A)', async () => {
  const r = await rt.run({
    bytes: fx('customer-tiers/customer-tiers.wasm'),
    functionName: 'transform_data',
    input: { steps: { fetch_customers: { output: { data: { customers } } } } },
  });
  assert.deepEqual(ok(r), CUSTOMER_TIERS);
  assert.equal(r.logs.length, 1);
  assert.equal(r.logs[0].level, 'info');
  assert.equal(r.logs[0].message, 'classified 4 customers');
  assert.ok(r.fuelConsumed > 0 && r.fuelConsumed < 1_000_000);
  assert.ok(r.memoryPeakBytes >= 65536);

  const missing = await rt.run({ bytes: fx('customer-tiers/customer-tiers.wasm'), functionName: 'transform_data', input: {} });
  assert.deepEqual(ok(missing), { error: 'missing steps.fetch_customers.output.data.customers' });
  assert.equal(missing.logs[0].level, 'error');
});

test('low-stock (AssemblyScript, forms A and B, start function)', async () => {
  const bytes = fx('low-stock/low-stock.wasm');
  const input = (level: number) => ({ steps: { check_inventory: { output: { data: { stock_level: level } } } } });
  const low = { next_step: 'send_low_stock_alert', priority: 'high', message: 'Stock level 42 below threshold 100' };
  const a = await rt.run({ bytes, functionName: 'route_decision', input: input(42) });
  assert.deepEqual(ok(a), low);
  assert.deepEqual(
    a.logs.map((l) => [l.level, l.message]),
    [['info', 'stock_level=42']],
  );
  const b = await rt.run({ bytes, functionName: 'route_decision_cstr', input: input(42) });
  assert.deepEqual(ok(b), low);
  assert.deepEqual(ok(await rt.run({ bytes, functionName: 'route_decision', input: input(150) })), {
    next_step: 'continue_normal_flow',
    priority: 'normal',
  });
  assert.deepEqual(ok(await rt.run({ bytes, functionName: 'route_decision_cstr', input: input(99.5) })), {
    next_step: 'send_low_stock_alert',
    priority: 'high',
    message: 'Stock level 99.5 below threshold 100',
  });
  assert.deepEqual(ok(await rt.run({ bytes, functionName: 'route_decision', input: {} })), {
    error: 'missing steps.check_inventory.output.data.stock_level',
  });
  const info = await rt.prepare(bytes);
  assert.equal(info.hasStart, true);
  assert.deepEqual(
    info.entries.filter((e) => e.name.startsWith('route')).map((e) => [e.name, e.form]),
    [
      ['route_decision', 'A'],
      ['route_decision_cstr', 'B'],
    ],
  );
});

const badOrder = { amount: 0, customer: { email: 'bad-email' }, items: Array.from({ length: 51 }, (_, i) => ({ sku: `s${i}` })) };
const goodOrder = { amount: 10, customer: { email: 'a@b.co' }, items: [{ sku: 'x' }] };
const allErrors = ['Order amount must be positive', 'Invalid customer email', 'Order cannot have more than 50 items'];

test('order-validation (Go, WASI command, form C)', async () => {
  const bytes = fx('order-validation/order-validation.wasm');
  const limits = { fuel: 20_000_000 };
  const bad = await rt.run({
    bytes,
    functionName: '_start',
    input: { steps: { fetch_order: { output: badOrder } } },
    limits,
    env: { JOB_ID: 'j1', EXECUTION_ID: 'e1' },
  });
  assert.deepEqual(ok(bad), { valid: false, errors: allErrors });
  assert.equal(bad.exitCode, 0);
  assert.equal(bad.stderr, 'order invalid\n');
  assert.ok(bad.stdout.endsWith('\n'));
  assert.ok(bad.fuelConsumed > 1_000_000, `fuel ${bad.fuelConsumed}`);
  const good = await rt.run({ bytes, functionName: '_start', input: { steps: { fetch_order: { output: goodOrder } } }, limits });
  assert.deepEqual(ok(good), { valid: true, errors: [] });
  const missing = await rt.run({ bytes, functionName: '_start', input: {}, limits });
  assert.deepEqual(ok(missing), { valid: false, errors: ['Missing steps.fetch_order.output'] });
  // With the default fuel the Go runtime does not even finish starting.
  const starved = await rt.run({ bytes, functionName: '_start', input: {} });
  assert.equal(starved.ok, false);
  if (!starved.ok) assert.equal(starved.error.code, 'fuel_exhausted');
});

test('order-validation-reactor (Go, _initialize + form A)', async () => {
  const bytes = fx('order-validation/order-validation-reactor.wasm');
  const limits = { fuel: 5_000_000 };
  const bad = await rt.run({ bytes, functionName: 'validate_order', input: { steps: { fetch_order: { output: badOrder } } }, limits });
  assert.deepEqual(ok(bad), { valid: false, errors: allErrors });
  assert.ok(bad.initFuelConsumed > 500_000, `init fuel ${bad.initFuelConsumed}`);
  assert.ok(bad.fuelConsumed > 0 && bad.fuelConsumed < 5_000_000);
  const good = await rt.run({ bytes, functionName: 'validate_order', input: { steps: { fetch_order: { output: goodOrder } } }, limits });
  assert.deepEqual(ok(good), { valid: true, errors: [] });
  // Initialisation has its own budget.
  const r = await rt.run({ bytes, functionName: 'validate_order', input: {}, limits: { fuel: 5_000_000, initFuel: 10_000 } });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.error.code, 'fuel_exhausted');
    assert.match(r.error.message, /initialisation/);
  }
});

test('sum-amounts (C, env host functions, get_context / set_context)', async () => {
  const bytes = fx('sum-amounts/sum-amounts.wasm');
  const input = { steps: { fetch_amounts: { output: { amounts: [10, 20.5, -0.5, 1e3, 0.1, 0.2] } }, other: { output: { amounts: [0.1, 0.2] } } } };
  const r = await rt.run({ bytes, functionName: 'sum_amounts', input, context: { source_step: 'fetch_amounts' } });
  assert.deepEqual(ok(r), { total: 1030.3, count: 6 });
  assert.deepEqual(r.contextWrites, { last_total: 1030.3 });
  assert.deepEqual(
    r.logs.map((l) => [l.level, l.message]),
    [['info', 'summed 6 amounts from fetch_amounts']],
  );
  const other = await rt.run({ bytes, functionName: 'sum_amounts', input, context: { source_step: 'other' } });
  assert.deepEqual(ok(other), { total: 0.30000000000000004, count: 2 });
  assert.deepEqual(other.contextWrites, { last_total: 0.30000000000000004 });
  // Without source_step in the context, the default step.
  const def = await rt.run({ bytes, functionName: 'sum_amounts', input: { steps: { fetch_amounts: { output: { amounts: [] } } } }, context: {} });
  assert.deepEqual(ok(def), { total: 0, count: 0 });
  // get_context reads dotted paths of the job context.
  const nested = await rt.run({ bytes, functionName: 'sum_amounts', input, context: { source_step: 'other', steps: { x: 1 } } });
  assert.deepEqual(ok(nested), { total: 0.30000000000000004, count: 2 });
  const missing = await rt.run({ bytes, functionName: 'sum_amounts', input: {}, context: { source_step: 'nope' } });
  assert.deepEqual(ok(missing), { error: 'missing steps.<step>.output.amounts' }); // the fixture's literal message
  assert.equal(missing.logs[0].level, 'error');
});

test('wasi-probe: env, clock, random, no filesystem, exit code', async () => {
  const bytes = fx('wasi-probe/wasi-probe.wasm');
  const r = await rt.run({ bytes, functionName: '_start', input: { exit_code: 0 }, env: { JOB_ID: 'job-1', EXECUTION_ID: 'exec-9' } });
  const out = ok(r) as Record<string, unknown>;
  assert.equal(out.job_id, 'job-1');
  assert.equal(out.execution_id, 'exec-9');
  assert.equal(out.etc_passwd_opened, false);
  assert.equal(out.root_dir_opened, false);
  assert.match(String(out.random_hex), /^[0-9a-f]{32}$/);
  assert.ok(Number(out.realtime_ns) > 1.6e18);
  assert.equal(out.argc, 1);
  assert.equal(r.stderr, 'wasi-probe stderr line\n');
  assert.equal(r.exitCode, 0);
  const failed = await rt.run({ bytes, functionName: '_start', input: { exit_code: 3 } });
  assert.equal(failed.ok, false);
  assert.equal(failed.exitCode, 3);
  if (!failed.ok) {
    assert.equal(failed.error.code, 'trap');
    assert.match(failed.error.message, /exited with code 3/);
    assert.match(failed.error.message, /wasi-probe stderr line/);
  }
});
