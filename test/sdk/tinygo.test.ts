import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { WasmRuntime } from '../../src/wasm/runtime/index.ts';
import { buildProject, buildTwiceSame, hostImports, initProject, missingTools, PATH_ENV, runProjectCases, type Manifest } from './support.ts';

// The TinyGo template (templates/tinygo, on the Go SDK). TinyGo cannot be installed on this machine
// (docs/sdk/tinygo.md says why), so VECRON_REQUIRE_TOOLCHAINS does not make its absence a failure;
// VECRON_REQUIRE_TINYGO=1 does. Without TinyGo the template's source is still held to its cases,
// compiled by Go's own compiler (the same SDK, the same code).
const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
after(() => rt.close());
const haveTinygo = spawnSync('sh', ['-c', 'tinygo version'], { env: { ...process.env, PATH: PATH_ENV }, stdio: 'ignore' }).status === 0;

test('tinygo template: built by TinyGo, reproducible, its cases pass', async (t) => {
  if (!haveTinygo) {
    if (process.env.VECRON_REQUIRE_TINYGO === '1') assert.fail('tinygo is not installed');
    const { manifest, dir } = initProject('tinygo');
    assert.deepEqual(missingTools(manifest, dir).length, 1, 'the manifest names the missing tool with its install hint');
    t.diagnostic('tinygo missing: not in Debian bookworm, not on npm, no download here (docs/sdk/tinygo.md)');
    return;
  }
  const b = buildTwiceSame('tinygo', t);
  if (!b) return;
  assert.equal(await runProjectCases(rt, b.dir, b.manifest, b.bytes), 6);
  assert.deepEqual(hostImports(b.bytes), ['get_context', 'log', 'set_context']);
});

test('tinygo template: the same source, compiled by Go, passes its cases', async () => {
  const { dir, manifest } = initProject('tinygo');
  const goManifest: Manifest = {
    ...manifest,
    limits: { ...manifest.limits, fuel: 20_000_000 },
    build: {
      ...manifest.build,
      command: [
        'mkdir -p build',
        "GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off go build -buildmode=c-shared -trimpath -ldflags='-s -w -buildid=' -o build/go.wasm .",
      ],
      output: 'build/go.wasm',
    },
  };
  const bytes = buildProject(dir, goManifest);
  assert.equal(await runProjectCases(rt, dir, goManifest, bytes), 6);
});
