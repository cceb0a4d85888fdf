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

// The Go SDK (sdk/go, package vecron) and the Go template: a wasip1 reactor with //go:wasmexport,
// built with Go >= 1.24 (/usr/local/go/bin), run on the real runtime.
const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
after(() => rt.close());
const GO = (tags: string) =>
  `GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off go build ${tags} -buildmode=c-shared -trimpath -ldflags='-s -w -buildid=' -o "$OUT" .`;
const probeBuild = (tags: string) => {
  const out = join(mkdtempSync(join(tmpdir(), 'vecron-sdk-go-probe-')), 'out.wasm');
  return compile(join(ROOT, 'fixtures/sdk-probes/go'), `OUT=${out} && ${GO(tags)}`, out);
};

test('go template: reproducible build, its cases pass (verdict, route, log, set_context)', async (t) => {
  const b = buildTwiceSame('go', t);
  if (!b) return;
  assert.equal(await runProjectCases(rt, b.dir, b.manifest, b.bytes), 6);
  assert.deepEqual(hostImports(b.bytes), ['get_context', 'log', 'set_context'], 'a module imports only the host functions it calls');
});

test('go SDK: JSON in and out, verdict, route, log, context', async (t) => {
  const { manifest, dir } = initProject('go');
  if (!haveTools(t, manifest, dir)) return;
  await assertProbe(rt, probeBuild(''), 20_000_000);
});

test('go SDK: the host-function wrappers import the issue-15 functions with the ABI signature (run in host-functions.test.ts)', async (t) => {
  const { manifest, dir } = initProject('go');
  if (!haveTools(t, manifest, dir)) return;
  const bytes = probeBuild('-tags probe_hosts');
  assert.deepEqual(hostImports(bytes), ALL_HOST_IMPORTS);
  assertHostSignatures(bytes);
});
