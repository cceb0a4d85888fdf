import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, openSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { WASI } from 'node:wasi';
import { parseModule, WasmFormatError } from '../../src/wasm/binary/index.ts';
import { instrument, setFuel, fuelLeft } from '../../src/wasm/instrument/index.ts';

// Real compiler output (the project's fixtures, and the PGlite binaries from node_modules) when
// present: parse, instrument, validate; and one WASI command run before and after the rewrite.
const WebAssembly: any = (globalThis as any).WebAssembly;
const root = new URL('../../', import.meta.url).pathname;

function wasmFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...wasmFiles(p));
    else if (name.endsWith('.wasm')) out.push(p);
  }
  return out;
}

test('real modules parse, instrument and validate', (t) => {
  const files = [...wasmFiles(join(root, 'fixtures/wasm')), join(root, 'node_modules/@electric-sql/pglite/dist/initdb.wasm')].filter((f) => existsSync(f));
  if (files.length === 0) return t.skip('no real modules here');
  for (const f of files) {
    const bytes = new Uint8Array(readFileSync(f));
    if (!WebAssembly.validate(bytes)) continue; // a deliberately broken fixture
    const info = parseModule(bytes);
    assert.ok(info.functionCount >= 0);
    try {
      const out = instrument(bytes, { memoryMaxPages: 1024 });
      let err = '';
      try {
        new WebAssembly.Module(out.bytes);
      } catch (e) {
        err = String(e);
      }
      assert.equal(err, '', `${f}: instrumented module must validate`);
    } catch (e) {
      // only the memory and table limits may refuse a valid module here, and the engine's limits
      // for the fixture made to be at them
      const atEngineLimit = f.endsWith('engine-limits/locals-50000.wasm') && e instanceof WasmFormatError && e.code === 'unsupported_feature';
      assert.ok((e instanceof WasmFormatError && e.code === 'memory_limit') || atEngineLimit, `${f}: ${e}`);
    }
  }
});

test('a Go WASI command prints the same output before and after the rewrite', (t) => {
  const f = join(root, 'fixtures/wasm/order-validation/order-validation.wasm');
  if (!existsSync(f)) return t.skip('fixture not built');
  const bytes = new Uint8Array(readFileSync(f));
  const dir = mkdtempSync(join(tmpdir(), 'vecron-wasm-'));
  try {
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ steps: { fetch_order: { output: { amount: 10, customer: { email: 'a@b.co' }, items: [1] } } } }));
    const run = (mod: Uint8Array, metered: boolean) => {
      const stdin = openSync(join(dir, 'in.json'), 'r');
      const stdout = openSync(join(dir, 'out.txt'), 'w');
      let polls = 0;
      try {
        const wasi = new WASI({ version: 'preview1', stdin, stdout, stderr: stdout, returnOnExit: true } as never);
        const inst = new WebAssembly.Instance(new WebAssembly.Module(mod), {
          ...wasi.getImportObject(),
          vecron_rt: {
            out_of_fuel() {
              throw new Error('fuel');
            },
            poll() {
              polls++;
            },
          },
        });
        if (metered) setFuel(inst.exports, 1_000_000_000n);
        const code = wasi.start(inst);
        return { code, out: readFileSync(join(dir, 'out.txt'), 'utf8'), fuel: metered ? 1_000_000_000n - fuelLeft(inst.exports) : 0n, polls };
      } finally {
        closeSync(stdin);
        closeSync(stdout);
      }
    };
    const a = run(bytes, false);
    const b = run(instrument(bytes, { memoryMaxPages: 1024 }).bytes, true);
    assert.equal(b.code, a.code);
    assert.equal(b.out, a.out);
    assert.match(a.out, /"valid"/);
    assert.ok(b.fuel > 100_000n, `fuel ${b.fuel}`);
    assert.ok(b.polls > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mutated real modules: only WasmFormatError, never a crash; a valid input always gives a valid output', (t) => {
  const files = ['compute-kernel/compute-kernel.wasm', 'low-stock/low-stock.wasm', 'customer-tiers/customer-tiers.wasm', 'trap/trap.wasm']
    .map((f) => join(root, 'fixtures/wasm', f))
    .filter((f) => existsSync(f));
  if (files.length === 0) return t.skip('fixtures not built');
  const srcs = files.map((f) => new Uint8Array(readFileSync(f)));
  let s = 12345;
  const rnd = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  let accepted = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Uint8Array.from(srcs[i % srcs.length]);
    const n = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < n; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    const v8 = WebAssembly.validate(b);
    let ok = true;
    try {
      parseModule(b);
    } catch (e) {
      assert.ok(e instanceof WasmFormatError, `mutation ${i}: ${e}`);
      ok = false;
    }
    if (v8) assert.ok(ok, `mutation ${i}: V8 accepts what parseModule refuses`);
    if (!ok) continue;
    accepted++;
    try {
      const out = instrument(b, { memoryMaxPages: 65536 }).bytes;
      assert.equal(WebAssembly.validate(out), v8, `mutation ${i}: validity changed by the rewrite`);
    } catch (e) {
      assert.ok(e instanceof WasmFormatError, `mutation ${i}: ${e}`);
    }
  }
  assert.ok(accepted > 100);
});
