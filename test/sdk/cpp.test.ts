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

// The C++ SDK (sdk/c/vecron.hpp over vecron.h) and the C++ template, built with clang++ and the
// WASI libc++ (libc++-dev-wasm32), run on the real runtime.
const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
after(() => rt.close());
const CXX = `clang++ --target=wasm32-wasi -std=c++17 -O2 -fno-exceptions -Wall -Wextra -Werror -mexec-model=reactor -I ${ROOT}sdk/c -Wl,--strip-all`;

test('cpp template: reproducible build, its cases pass (verdict, route, log, set_context)', async (t) => {
  const b = buildTwiceSame('cpp', t);
  if (!b) return;
  assert.equal(await runProjectCases(rt, b.dir, b.manifest, b.bytes), 6);
  assert.deepEqual(hostImports(b.bytes), ['get_context', 'log', 'set_context'], 'a module imports only the host functions it calls');
});

test('cpp SDK: JSON in and out, verdict, route, log, context', async (t) => {
  const { manifest, dir } = initProject('cpp');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-cpp-probe-'));
  await assertProbe(rt, compile(cwd, `${CXX} -o out.wasm ${ROOT}fixtures/sdk-probes/probe.cpp`));
});

test('cpp SDK: the host-function wrappers import the issue-15 functions with the ABI signature (run in host-functions.test.ts)', async (t) => {
  const { manifest, dir } = initProject('cpp');
  if (!haveTools(t, manifest, dir)) return;
  const cwd = mkdtempSync(join(tmpdir(), 'vecron-sdk-cpp-hosts-'));
  const bytes = compile(cwd, `${CXX} -DPROBE_HOSTS -o out.wasm ${ROOT}fixtures/sdk-probes/probe.cpp`);
  assert.deepEqual(hostImports(bytes), ALL_HOST_IMPORTS);
  assertHostSignatures(bytes);
});
