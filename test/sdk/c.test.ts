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

// The C SDK (sdk/c/vecron.h) and the C template, built with clang and run on the real runtime.
const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
after(() => rt.close());
const CC = `clang --target=wasm32-wasi -O2 -Wall -Wextra -Werror -mexec-model=reactor -I ${ROOT}sdk/c -Wl,--strip-all`;

test('c template: reproducible build, its cases pass (verdict, route, log, set_context)', async (t) => {
  const b = buildTwiceSame('c', t);
  if (!b) return;
  assert.equal(await runProjectCases(rt, b.dir, b.manifest, b.bytes), 6);
  assert.deepEqual(hostImports(b.bytes), ['get_context', 'log', 'set_context'], 'a module imports only the host functions it calls');
});

test('c SDK: JSON in and out, verdict, route, log, context', async (t) => {
  const { manifest, dir } = initProject('c');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-c-probe-'));
  const bytes = compile(cwd, `${CC} -o out.wasm ${ROOT}fixtures/sdk-probes/probe.c`);
  await assertProbe(rt, bytes);
});

test('c SDK: the host-function wrappers import the issue-15 functions with the ABI signature (run in host-functions.test.ts)', async (t) => {
  const { manifest, dir } = initProject('c');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-c-hosts-'));
  const bytes = compile(cwd, `${CC} -DPROBE_HOSTS -o out.wasm ${ROOT}fixtures/sdk-probes/probe.c`);
  assert.deepEqual(hostImports(bytes), ALL_HOST_IMPORTS);
  assertHostSignatures(bytes);
});
