/**
 * How large and how fast the Python template is (sdk/python: CPython 3.11 on WASI, pre-initialised)
 * against the same module in C, on the real runtime:
 *
 *   node --import tsx scripts/bench-python.ts [runs]
 *
 * Per module: build time (the engine cache warm), bytes, the first prepare (validate, instrument,
 * compile), then `runs` runs of test-input.json (a fresh instance each), wall clock p50 and p90 and
 * the fuel of the call and of initialisation. Prints a Markdown table (docs/sdk/python.md).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmRuntime } from '../src/wasm/runtime/index.ts';

const root = new URL('..', import.meta.url).pathname;
const runs = Number(process.argv[2] ?? 30);
const work = mkdtempSync(join(tmpdir(), 'bench-python-'));

/** templates/<lang> as `wasm-cli init` writes it, built with the manifest's command. */
function build(lang: string): { bytes: Uint8Array; seconds: number; input: unknown } {
  const dir = join(work, lang);
  const copy = (from: string, to: string) => {
    cpSync(from, to, { recursive: true });
    for (const f of readdirSync(to, { recursive: true }) as string[]) {
      const p = join(to, f);
      if (statSync(p).isFile() && /\.(py|c|json|md)$/.test(p)) {
        writeFileSync(p, readFileSync(p, 'utf8').replaceAll('{{name_snake}}', 'bench').replaceAll('{{name}}', 'bench').replaceAll('{{version}}', '0.1.0'));
      }
    }
  };
  copy(join(root, 'templates', lang), dir);
  cpSync(join(root, 'sdk', lang), join(dir, 'vecron-sdk'), { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'vecron.json'), 'utf8'));
  const commands: string[] = Array.isArray(m.build.command) ? m.build.command : [m.build.command];
  const t0 = Date.now();
  for (const c of commands) {
    const r = spawnSync('sh', ['-c', c], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${lang}: ${c} failed: ${r.stderr}`);
  }
  const seconds = (Date.now() - t0) / 1000;
  return { bytes: new Uint8Array(readFileSync(join(dir, m.build.output))), seconds, input: JSON.parse(readFileSync(join(dir, 'test-input.json'), 'utf8')) };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
const rows: string[] = [
  '| module | build | size | first prepare | run p50 | run p90 | fuel (call) | fuel (init) | memory peak |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];
try {
  for (const lang of ['c', 'python']) {
    const b = build(lang);
    const t0 = performance.now();
    await rt.prepare(b.bytes);
    const prepare = performance.now() - t0;
    const times: number[] = [];
    let last: Awaited<ReturnType<typeof rt.run>> | undefined;
    for (let i = 0; i < runs + 3; i++) {
      const t = performance.now();
      last = await rt.run({
        bytes: b.bytes,
        functionName: 'process',
        input: b.input,
        context: b.input as Record<string, unknown>,
        limits: { fuel: 20_000_000 },
      });
      if (!last.ok) throw new Error(`${lang}: ${last.error.code}: ${last.error.message}`);
      if (i >= 3) times.push(performance.now() - t);
    }
    rows.push(
      `| order check, ${lang} | ${b.seconds.toFixed(1)} s | ${b.bytes.length.toLocaleString('en')} B | ${prepare.toFixed(0)} ms | ${pct(times, 50).toFixed(1)} ms | ${pct(times, 90).toFixed(1)} ms | ${last!.fuelConsumed.toLocaleString('en')} | ${last!.initFuelConsumed.toLocaleString('en')} | ${(last!.memoryPeakBytes / 2 ** 20).toFixed(1)} MiB |`,
    );
  }
} finally {
  await rt.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(rows.join('\n'));
console.log(
  `\n${runs} runs each after 3 warm-up runs; load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
