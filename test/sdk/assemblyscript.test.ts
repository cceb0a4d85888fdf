import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmRuntime } from '../../src/wasm/runtime/index.ts';
import { PRIVILEGED_HOST_FUNCTIONS } from '../../src/wasm/host/types.ts';
import { assertHostSignatures, assertProbe, buildTwiceSame, compile, haveTools, hostImports, initProject, ROOT, runProjectCases } from './support.ts';

// The AssemblyScript SDK (sdk/assemblyscript/vecron.ts) and template, built with asc (npm), run on
// the real runtime.
const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
after(() => rt.close());
const ASC = (src: string) => `asc ${ROOT}fixtures/sdk-probes/${src} -O3 --runtime stub --use abort= --noAssert -o out.wasm`;

test('assemblyscript template: reproducible build, its cases pass (verdict, route, log, set_context)', async (t) => {
  const b = buildTwiceSame('assemblyscript', t);
  if (!b) return;
  assert.equal(await runProjectCases(rt, b.dir, b.manifest, b.bytes), 6);
  assert.deepEqual(hostImports(b.bytes), ['get_context', 'log', 'set_context'], 'a module imports only the host functions it calls');
});

test('assemblyscript SDK: JSON in and out, verdict, route, log, context', async (t) => {
  const { manifest, dir } = initProject('assemblyscript');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-as-probe-'));
  await assertProbe(rt, compile(cwd, ASC('probe-as.ts')));
});

test('assemblyscript SDK: the host-function wrappers import the issue-15 functions with the ABI signature (run in host-functions.test.ts)', async (t) => {
  const { manifest, dir } = initProject('assemblyscript');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-as-hosts-'));
  const bytes = compile(cwd, ASC('probe-as-hosts.ts'));
  assert.deepEqual(hostImports(bytes), [...PRIVILEGED_HOST_FUNCTIONS].sort());
  assertHostSignatures(bytes);
});
