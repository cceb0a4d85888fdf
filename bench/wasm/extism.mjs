/**
 * The Extism JS SDK side of bench/wasm.ts, run as a plain `node` child process (no tsx): the SDK's
 * `runInWorker` starts its worker from a data: URL, which tsx's loader (inherited by workers
 * through execArgv) fails to load. Both modes run here so that they share the same process setup.
 *
 *   node bench/wasm/extism.mjs < request.json
 *   request: {"wasm": path, "input": json string, "iterations": n, "warmup": n, "modes": ["same-thread", "worker"]}
 *   prints:  {"version": str, "results": {"same-thread": {"samples": [us...]} | {"error": str}, ...}}
 *
 * One run = plugin.call('echo', JSON.stringify(value)) then output.json(): the SDK copies the input
 * into a kernel block, the plugin copies it to an output block through the kernel imports, and the
 * SDK hands the block back. One plugin (one instance) serves all calls, as the SDK is meant to be used.
 */
import { readFileSync } from 'node:fs';

const { default: createPlugin } = await import('@extism/extism');
const version = JSON.parse(readFileSync(new URL('../../node_modules/@extism/extism/package.json', import.meta.url), 'utf8')).version;

const req = JSON.parse(readFileSync(0, 'utf8'));
const data = readFileSync(req.wasm);
const value = JSON.parse(req.input);
const expected = JSON.stringify(value);
const results = {};

async function measure(runInWorker) {
  const plugin = await createPlugin({ wasm: [{ data }] }, { useWasi: false, runInWorker });
  try {
    const first = await plugin.call('echo', JSON.stringify(value));
    if (JSON.stringify(first?.json()) !== expected) throw new Error('the echo plugin returned something else');
    for (let i = 0; i < req.warmup; i++) (await plugin.call('echo', JSON.stringify(value)))?.json();
    const samples = new Array(req.iterations);
    for (let i = 0; i < req.iterations; i++) {
      const t0 = process.hrtime.bigint();
      (await plugin.call('echo', JSON.stringify(value)))?.json();
      samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    return { samples };
  } finally {
    await plugin.close();
  }
}

for (const mode of req.modes ?? ['same-thread', 'worker']) {
  try {
    results[mode] = await Promise.race([
      measure(mode === 'worker'),
      new Promise((_, rej) => setTimeout(() => rej(new Error('timed out after 60 s')), 60_000).unref()),
    ]);
  } catch (err) {
    results[mode] = { error: String(err?.message ?? err).split('\n')[0] };
  }
}
process.stdout.write(JSON.stringify({ version, results }));
process.exit(0);
