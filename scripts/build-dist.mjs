#!/usr/bin/env node
// Compiles src/ into dist/ (plain JavaScript, one .js file per .ts file, same folders), so
// `vecron start` loads no TypeScript compiler at run time (bin/entry.js picks dist/ when it is
// current). Run by `npm install` (prepare), `npm run build:dist`, and `npm start` with --if-stale
// (builds only when bin/entry.js would not use dist/). About a second with esbuild.
//
// Why this shape:
// - dist/ mirrors src/ at the same depth: every path the sources resolve relative to their own file
//   (`new URL('../package.json', import.meta.url)`, '../../../web/dist/', node_modules/.bin, the
//   SQL migrations, the worker entry files) lands on the same file from dist/ as from src/. The
//   files that are not TypeScript (*.sql, *.mjs) are copied beside the compiled ones.
// - Each file is its own entry point with every import left external (no bundle): the module
//   graph, lazy `import()` of step executors and `import.meta.url` stay as they are. Relative
//   imports of `./x.ts` are rewritten to `./x.js` (esbuild's resolver sees them, text is not edited).
// - The packages loaded before /health (VENDORED below) are the exception: bundled into
//   dist/vendor/ and imported from there (issue 19's cold start: ~500 files of node_modules fewer).
// - src/wasm/runtime/worker-boot.mjs registers tsx in each WASM worker thread; its dist/ copy
//   loads the compiled worker.js directly.
// - dist/.stamp.json records what src/ looked like when built (bin/entry.js compares it; see there).
// - dist/pglite-template/ holds a migrated PGlite data directory that a new data directory starts
//   as a copy of (src/db/pglite-template.ts; about 5 s of CPU saved on the first start).
//   --no-template skips it.
// esbuild comes with tsx (a runtime dependency), so this works after `npm install --omit=dev` too;
// its own install script is not needed (the JS API finds the @esbuild/<platform> binary package).
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distProblem, sourceSnapshot } from '../bin/entry.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const srcDir = join(root, 'src');
const distDir = join(root, 'dist');

if (process.argv.includes('--if-stale') && distProblem(root) === null) {
  const { pgliteTemplateDir } = await import(join(distDir, 'db', 'pglite-template.js'));
  if (process.argv.includes('--no-template') || existsSync(join(pgliteTemplateDir(), 'PG_VERSION'))) process.exit(0);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.warn('[vecron] esbuild is not installed: dist/ is not built; vecron runs src/ through tsx.');
  process.exit(0);
}

function listFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/**
 * The packages the service loads before /health, bundled into dist/vendor/ (issue 19's cold
 * start): node_modules as it is means about 500 files resolved, read and compiled one by one (about
 * 260 ms of CPU for these; bundled, about 100 ms). Left out: packages that read files relative to
 * their own folder (PGlite's WASM, swagger-ui's static files), and those loaded only when used.
 */
export const VENDORED = [
  'fastify',
  '@fastify/ajv-compiler',
  '@fastify/multipart',
  '@fastify/swagger',
  'ajv',
  'commander',
  'croner',
  'picomatch',
  'pino',
  'prom-client',
  'undici',
  '@opentelemetry/api',
];
const vendorName = (pkg) => pkg.replace(/^@/, '').replace(/\//g, '+');

/**
 * Leaves every import as an import (no bundling); a relative `.ts` import becomes `.js`, and an
 * import of a VENDORED package one of its file in dist/vendor/ (relative: dist/ mirrors src/).
 */
const keepImports = {
  name: 'vecron-keep-imports',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      const rel = args.path.startsWith('./') || args.path.startsWith('../');
      if (!rel && VENDORED.includes(args.path)) {
        const to = relative(dirname(args.importer), join(srcDir, 'vendor', `${vendorName(args.path)}.js`)).replaceAll('\\', '/');
        return { path: to.startsWith('.') ? to : `./${to}`, external: true };
      }
      return { path: rel ? args.path.replace(/\.ts$/, '.js') : args.path, external: true };
    });
  },
};

const RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await'.split(
    ' ',
  ),
);

/**
 * dist/vendor/: one module per VENDORED package, sharing chunks (splitting), each with the named
 * exports that Node gives an import of the package (read from the package itself), so the app's
 * `import { x } from 'pkg'` is unchanged. CommonJS inside keeps a `require` of its own.
 */
async function buildVendor(outDir) {
  const entriesDir = join(outDir, '.entries');
  mkdirSync(entriesDir, { recursive: true });
  const entryPoints = {};
  for (const pkg of VENDORED) {
    const f = join(entriesDir, `${vendorName(pkg)}.mjs`);
    writeFileSync(f, `import * as ns from '${pkg}';\nexport { ns };\n`);
    entryPoints[`_${vendorName(pkg)}`] = f;
  }
  const r = await esbuild.build({
    entryPoints,
    outdir: outDir,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    nodePaths: [join(root, 'node_modules')],
    absWorkingDir: root,
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __vecronCreateRequire } from 'node:module'; const require = __vecronCreateRequire(import.meta.url);",
    },
  });
  rmSync(entriesDir, { recursive: true, force: true });
  if (r.errors.length) process.exit(1);
  for (const pkg of VENDORED) {
    const real = await import(pkg);
    const names = Object.keys(real).filter((n) => n !== 'default' && n !== '__esModule' && /^[A-Za-z_$][\w$]*$/.test(n) && !RESERVED.has(n));
    const lines = [`// ${pkg}, bundled (scripts/build-dist.mjs, VENDORED).`, `import { ns } from './_${vendorName(pkg)}.js';`];
    if ('default' in real) lines.push('export default ns.default;');
    if (names.length) lines.push(`export const { ${names.join(', ')} } = ns;`);
    writeFileSync(join(outDir, `${vendorName(pkg)}.js`), `${lines.join('\n')}\n`);
  }
}

const started = Date.now();
// The snapshot is taken before compiling: a file edited during the build makes dist/ stale, not current.
const snapshot = sourceSnapshot(root);
// Built beside dist/ and swapped in, so a process starting meanwhile sees the old or the new tree, never half of one.
const tmpDir = join(root, `dist.tmp-${process.pid}`);
rmSync(tmpDir, { recursive: true, force: true });
const files = listFiles(srcDir);
const entryPoints = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
const result = await esbuild.build({
  entryPoints,
  outdir: tmpDir,
  outbase: srcDir,
  bundle: true,
  plugins: [keepImports],
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  tsconfig: join(root, 'tsconfig.json'),
  logLevel: 'warning',
  // A dynamic import of a computed URL (worker.ts's workerFunctionModules) is meant: not a warning.
  logOverride: { 'unsupported-dynamic-import': 'silent' },
});
if (result.errors.length) process.exit(1);
if (existsSync(join(srcDir, 'vendor'))) throw new Error('src/vendor/ would collide with dist/vendor/: update scripts/build-dist.mjs');
await buildVendor(join(tmpDir, 'vendor'));

for (const f of files) {
  if (f.endsWith('.ts')) continue;
  const to = join(tmpDir, relative(srcDir, f));
  mkdirSync(dirname(to), { recursive: true });
  cpSync(f, to);
}
const bootRel = join('wasm', 'runtime', 'worker-boot.mjs');
if (!existsSync(join(tmpDir, bootRel))) throw new Error(`src/${bootRel} is gone: update scripts/build-dist.mjs`);
writeFileSync(
  join(tmpDir, bootRel),
  '// Entry of the runtime\'s worker threads, compiled tree (scripts/build-dist.mjs): no tsx here.\nawait import("./worker.js");\n',
);
writeFileSync(join(tmpDir, '.stamp.json'), `${JSON.stringify({ builtAt: new Date().toISOString(), ...snapshot })}\n`);

// What else lives in dist/ (the single-file wasm-cli of scripts/build-wasm-cli-sea.mjs) is kept.
if (existsSync(distDir)) {
  for (const name of readdirSync(distDir)) if (!existsSync(join(tmpDir, name))) renameSync(join(distDir, name), join(tmpDir, name));
}
const old = join(root, `dist.old-${process.pid}`);
if (existsSync(distDir)) renameSync(distDir, old);
renameSync(tmpDir, distDir);
rmSync(old, { recursive: true, force: true });
console.log(`[vecron] src/ compiled into dist/ (${entryPoints.length} files) in ${((Date.now() - started) / 1000).toFixed(1)} s`);

// The database a new data directory starts from (src/db/pglite-template.ts), made with the
// compiled code; kept across builds while PGlite and the migrations stay the same.
if (!process.argv.includes('--no-template')) {
  const t0 = Date.now();
  try {
    const { pgliteTemplateDir, writePgliteTemplate } = await import(join(distDir, 'db', 'pglite-template.js'));
    const had = existsSync(join(pgliteTemplateDir(), 'PG_VERSION'));
    const file = await writePgliteTemplate();
    if (!had) console.log(`[vecron] ${relative(root, file)} written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    // Only the first start on a new data directory is slower without it: not a reason to fail an install.
    console.warn(`[vecron] the PGlite template for new data directories was not written: ${err?.message ?? err}`);
  }
}
