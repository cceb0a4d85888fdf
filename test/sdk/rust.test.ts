import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmRuntime } from '../../src/wasm/runtime/index.ts';
import {
  ALL_HOST_IMPORTS,
  assertHostSignatures,
  assertProbe,
  buildTwiceSame,
  compile,
  haveTools,
  hostImports,
  initProject,
  ROOT,
  runProjectCases,
} from './support.ts';

// The Rust SDK (sdk/rust/vecron.rs, one file, no crates) and the Rust template, built with a rustc
// that has the wasm32-wasi standard library (Debian's), run on the real runtime.
const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
after(() => rt.close());
const RUSTC = `sh ${ROOT}sdk/rust/rustc-wasm.sh -D warnings`;

test('rust template: reproducible build, its cases pass (verdict, route, log, set_context)', async (t) => {
  const b = buildTwiceSame('rust', t);
  if (!b) return;
  assert.equal(await runProjectCases(rt, b.dir, b.manifest, b.bytes), 6);
  assert.deepEqual(hostImports(b.bytes), ['get_context', 'log', 'set_context'], 'a module imports only the host functions it calls');
});

test('rust SDK: JSON in and out, verdict, route, log, context', async (t) => {
  const { manifest, dir } = initProject('rust');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-rust-probe-'));
  await assertProbe(rt, compile(cwd, `${RUSTC} -o out.wasm ${ROOT}fixtures/sdk-probes/probe.rs`));
});

test('rust SDK: the host-function wrappers import the issue-15 functions with the ABI signature (run in host-functions.test.ts)', async (t) => {
  const { manifest, dir } = initProject('rust');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-rust-hosts-'));
  const bytes = compile(cwd, `${RUSTC} --cfg probe_hosts -o out.wasm ${ROOT}fixtures/sdk-probes/probe.rs`);
  assert.deepEqual(hostImports(bytes), ALL_HOST_IMPORTS);
  assertHostSignatures(bytes);
});
