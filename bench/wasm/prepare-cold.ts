/**
 * Child process of bench/wasm.ts: times the FIRST preparation of a module in a fresh Node process
 * (cold JIT: the instrumenter's own code and V8's wasm compiler run for the first time), so that
 * the number is what an upload to a freshly started server pays.
 *
 *   node --import tsx bench/wasm/prepare-cold.ts runtime <module.wasm>   first WasmRuntime.prepare()
 *   node --import tsx bench/wasm/prepare-cold.ts parts <module.wasm>     first instrument(), then
 *        WebAssembly.compile of its output, then WebAssembly.compile of the original (reference)
 *
 * Prints one JSON object on stdout: {"prepareMs"} or {"instrumentMs","compileMs","compileOriginalMs"},
 * or {"error"}.
 */
import { readFileSync } from 'node:fs';
import { instrument } from '../../src/wasm/instrument/index.ts';
import { WA } from './wasm-api.ts';

const MEMORY_MAX_PAGES = 1024; // the seed's default memory limit, 64 MiB

const [mode, file] = process.argv.slice(2);
const bytes = new Uint8Array(readFileSync(file));
const out: Record<string, unknown> = {};
try {
  if (mode === 'runtime') {
    const mod = (await import(new URL('../../src/wasm/runtime/index.ts', import.meta.url).href)) as {
      WasmRuntime: new (o: object) => { prepare(b: Uint8Array): Promise<unknown>; close(): Promise<void> };
    };
    const rt = new mod.WasmRuntime({ poolSize: 1, cacheDir: null });
    const t0 = performance.now();
    await rt.prepare(bytes);
    out.prepareMs = performance.now() - t0;
    await Promise.race([rt.close(), new Promise((r) => setTimeout(r, 5000).unref())]);
  } else if (mode === 'parts') {
    let t0 = performance.now();
    const r = instrument(bytes, { memoryMaxPages: MEMORY_MAX_PAGES });
    out.instrumentMs = performance.now() - t0;
    t0 = performance.now();
    await WA.compile(r.bytes);
    out.compileMs = performance.now() - t0;
    t0 = performance.now();
    await WA.compile(bytes);
    out.compileOriginalMs = performance.now() - t0;
  } else {
    throw new Error(`unknown mode '${mode}' (runtime | parts)`);
  }
} catch (err) {
  out.error = String((err as Error)?.message ?? err).split('\n')[0];
}
process.stdout.write(JSON.stringify(out));
process.exit(0);
