/**
 * How large and how fast a JavaScript module is (sdk/js, QuickJS on WASI) against the same
 * transform compiled from Rust and AssemblyScript (fixtures/wasm), on the real runtime:
 *
 *   node --import tsx scripts/bench-js-engine.ts [runs]
 *
 * Per module: bytes; the first prepare (validate, instrument, compile); then `runs` runs of the
 * prepared module (a fresh instance each: instantiate + _initialize + the call), wall clock p50 and
 * p90, with the fuel of the call and of initialisation. Prints a Markdown table (docs/sdk/js.md).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { WasmRuntime } from '../src/wasm/runtime/index.ts';
import { CUSTOMERS } from '../test/fixtures/customer-tiers.ts';

const root = new URL('..', import.meta.url).pathname;
const runs = Number(process.argv[2] ?? 30);

function buildJs(example: string): Uint8Array {
  const dir = join(root, 'sdk/js/examples', example);
  const r = spawnSync(process.execPath, [join(root, 'sdk/js/build.mjs'), '--project', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build of ${example} failed: ${r.stderr}`);
  const m = /^built (\S+):/m.exec(r.stdout);
  return new Uint8Array(readFileSync(join(dir, m![1])));
}
const fixture = (p: string) => new Uint8Array(readFileSync(join(root, 'fixtures/wasm', p)));

const customersInput = { steps: { fetch_customers: { output: { data: { customers: CUSTOMERS } } } } };
const stockInput = { steps: { check_inventory: { output: { data: { stock_level: 42 } } } } };
const cases = [
  { name: 'customer-tiers, Rust', bytes: fixture('customer-tiers/customer-tiers.wasm'), fn: 'transform_data', input: customersInput },
  { name: 'customer-tiers, JS', bytes: buildJs('customer-tiers'), fn: 'transform_data', input: customersInput },
  { name: 'low-stock, AssemblyScript', bytes: fixture('low-stock/low-stock.wasm'), fn: 'route_decision', input: stockInput },
  { name: 'low-stock, JS', bytes: buildJs('low-stock'), fn: 'route_decision', input: stockInput },
];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const rt = new WasmRuntime({ poolSize: 1 });
const rows: string[] = [];
const outputs = new Map<string, string>();
for (const c of cases) {
  const t0 = performance.now();
  await rt.prepare(c.bytes);
  const prepareMs = performance.now() - t0;
  const times: number[] = [];
  let fuel = 0;
  let initFuel = 0;
  let memory = 0;
  for (let i = 0; i < runs + 3; i++) {
    const s = performance.now();
    const r = await rt.run({ bytes: c.bytes, functionName: c.fn, input: c.input, limits: { fuel: 50_000_000 } });
    const ms = performance.now() - s;
    if (!r.ok) throw new Error(`${c.name}: ${r.error.code}: ${r.error.message}`);
    if (i >= 3) times.push(ms); // the first runs warm the worker and V8's tiers up
    fuel = r.fuelConsumed;
    initFuel = r.initFuelConsumed;
    memory = r.memoryPeakBytes;
    outputs.set(c.name, JSON.stringify(r.output));
  }
  rows.push(
    `| ${c.name} | ${(c.bytes.length / 1024).toFixed(0)} KiB | ${prepareMs.toFixed(0)} ms | ${pct(times, 50).toFixed(2)} ms | ${pct(times, 90).toFixed(2)} ms | ` +
      `${fuel.toLocaleString('en-US')} | ${initFuel.toLocaleString('en-US')} | ${(memory / 1048576).toFixed(2)} MiB |`,
  );
}
await rt.close();

console.log(`runs: ${runs} per module after 3 warm-up runs; load average ${loadavg()[0].toFixed(1)} on ${process.env.HOSTNAME ?? 'this machine'}\n`);
console.log('| module | size | first prepare | run p50 | run p90 | fuel (call) | fuel (init) | memory |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
// The twins must agree, or the comparison means nothing.
for (const [a, b] of [
  ['customer-tiers, Rust', 'customer-tiers, JS'],
  ['low-stock, AssemblyScript', 'low-stock, JS'],
]) {
  const x = JSON.parse(outputs.get(a)!);
  const y = JSON.parse(outputs.get(b)!);
  const same = JSON.stringify(x, Object.keys(x).sort()) === JSON.stringify(y, Object.keys(x).sort());
  if (!same) console.log(`\nwarning: ${a} and ${b} answer differently:\n  ${outputs.get(a)}\n  ${outputs.get(b)}`);
}
