#!/usr/bin/env node
// Builds `wasm-cli` as one executable file with Node's single executable applications (SEA), for
// authors without the repository (docs/cli.md "Installing"):
//   1. esbuild bundles src/cli/wasm-cli.ts and its imports into one CommonJS file (SEA runs CJS);
//   2. templates/ and sdk/ go into one SEA asset, resources.json (src/cli/wasm/resources.ts reads it);
//   3. node --experimental-sea-config writes the blob; postject injects it into a copy of this node.
// Usage: node scripts/build-wasm-cli-sea.mjs [--out dist/wasm-cli] [--cache DIR] [--resources DIR]
// --resources: the folder whose templates/ and sdk/ are embedded (default: the repository).
// With --cache, a build whose inputs (bundle, resources, node binary) hash the same is copied from
// DIR instead of injected again (injection rewrites a ~100 MB binary).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const out = resolve(arg('--out', join(root, 'dist/wasm-cli')));
const cacheDir = arg('--cache', null);
const resourceRoot = resolve(arg('--resources', root));
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const work = mkdtempSync(join(tmpdir(), 'wasm-cli-sea-'));
const t0 = Date.now();

// 1. The bundles. The runtime's worker (src/wasm/runtime/worker.ts) must be a file: it goes in as
// an asset, and the executable writes it once to ~/.cache/vecron/wasm-cli-<hash>/worker-boot.mjs
// (per user, named by its hash). import.meta.url has no meaning in CommonJS: in the executable it
// is a URL in that folder, so the runtime's `new URL('./worker-boot.mjs', import.meta.url)` finds
// the worker; the package-folder lookups that also use it are not taken in the executable.
const worker = join(work, 'worker-boot.mjs');
await build({
  entryPoints: [join(root, 'src/wasm/runtime/worker.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: worker,
  logLevel: 'warning',
});
const workerKey = createHash('sha256').update(readFileSync(worker)).digest('hex').slice(0, 16);
const bundle = join(work, 'wasm-cli.cjs');
await build({
  entryPoints: [join(root, 'src/cli/wasm-cli.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: bundle,
  logLevel: 'warning',
  define: { 'import.meta.url': '__vecronImportMetaUrl' },
  banner: {
    js: [
      'globalThis.__vecronSea = (() => { try { const sea = require("node:sea"); return sea.isSea() ? sea : null; } catch { return null; } })();',
      // Optional dependencies probed with require() at load (mysql2's cardinal): in the executable
      // they are absent, as their callers expect (MODULE_NOT_FOUND), without SEA's warning.
      'var require = ((real) => !globalThis.__vecronSea ? real : (id) => { if (real("node:module").isBuiltin(id)) return real(id); const e = new Error("Cannot find module \'" + id + "\' (not in the single executable)"); e.code = "MODULE_NOT_FOUND"; throw e; })(require);',
      'var __vecronImportMetaUrl = (() => {',
      '  const url = require("node:url"), fs = require("node:fs"), path = require("node:path"), os = require("node:os");',
      '  if (!globalThis.__vecronSea) return url.pathToFileURL(__filename).href;',
      `  const dir = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "vecron", "wasm-cli-${workerKey}");`,
      '  const file = path.join(dir, "worker-boot.mjs");',
      '  if (!fs.existsSync(file)) {',
      '    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });',
      '    const tmp = file + "." + process.pid;',
      '    fs.writeFileSync(tmp, globalThis.__vecronSea.getAsset("worker-boot.mjs", "utf8"));',
      '    fs.renameSync(tmp, file);',
      '  }',
      '  return url.pathToFileURL(path.join(dir, "wasm-cli.cjs")).href;',
      '})();',
    ].join('\n'),
  },
  plugins: [
    {
      // pg's optional native binding: absent, as pg expects it may be (MODULE_NOT_FOUND), without a
      // require() from disk (SEA's require loads only built-in modules, and warns on any other).
      name: 'no-pg-native',
      setup(b) {
        b.onResolve({ filter: /^pg-native$/ }, () => ({ path: 'pg-native', namespace: 'stub' }));
        b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
          contents: 'const e = new Error("pg-native is not in the single executable"); e.code = "MODULE_NOT_FOUND"; throw e;',
          loader: 'js',
        }));
      },
    },
    {
      // src/version.ts reads package.json beside the sources; the executable has the number built in.
      name: 'version',
      setup(b) {
        b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(version)};`, loader: 'ts' }));
      },
    },
  ],
});

// 2. The resources: every file under templates/ and sdk/, with its mode.
const files = {};
const walk = (dir) => {
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) walk(p);
    else files[relative(resourceRoot, p).split(sep).join('/')] = [statSync(p).mode & 0o777, readFileSync(p).toString('base64')];
  }
};
for (const d of ['templates', 'sdk']) if (existsSync(join(resourceRoot, d))) walk(join(resourceRoot, d));
const resources = join(work, 'resources.json');
writeFileSync(resources, JSON.stringify({ files }));

const key = createHash('sha256')
  .update(readFileSync(bundle))
  .update(readFileSync(resources))
  .update(readFileSync(worker))
  .update(process.version)
  .update(String(statSync(process.execPath).size))
  .digest('hex')
  .slice(0, 16);
const cached = cacheDir ? join(cacheDir, key, 'wasm-cli') : null;
mkdirSync(dirname(out), { recursive: true });
if (cached && existsSync(cached)) {
  copyFileSync(cached, out);
  chmodSync(out, 0o755);
  console.log(`${out}: from the cache (${key})`);
} else {
  // 3. The blob, and a copy of node with it injected.
  const config = join(work, 'sea-config.json');
  const blob = join(work, 'sea-prep.blob');
  writeFileSync(
    config,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: false,
      assets: { 'resources.json': resources, 'worker-boot.mjs': worker },
    }),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' });
  rmSync(out, { force: true });
  copyFileSync(process.execPath, out);
  chmodSync(out, 0o755);
  const postject = join(root, 'node_modules/postject/dist/cli.js');
  execFileSync(process.execPath, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], {
    stdio: 'ignore',
  });
  if (cached) {
    mkdirSync(dirname(cached), { recursive: true });
    copyFileSync(out, cached);
  }
  console.log(`${out}: built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
console.log(
  `bundle ${mib(statSync(bundle).size)}, resources ${Object.keys(files).length} files (${mib(statSync(resources).size)}), executable ${mib(statSync(out).size)}`,
);
rmSync(work, { recursive: true, force: true });
