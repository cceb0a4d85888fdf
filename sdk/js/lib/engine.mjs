// Builds the JS engine once per set of inputs and keeps it in the cache
// (~/.cache/vecron/js-engine/<key>/): QuickJS + engine.c + the prelude as wasm32-wasi objects, and
// compiler.wasm. The key hashes everything the objects depend on (QuickJS's crate, our C and JS
// sources, the flags, the clang version), so a build only happens when one of them changes.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cArray } from './c-array.mjs';
import { compileScript } from './compiler.mjs';
import { QUICKJS, quickjsSources } from './quickjs-source.mjs';
import { JOBS, cacheRoot, checkToolchain, clang, parallel, run } from './toolchain.mjs';

const ENGINE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'engine');
const ENGINE_SOURCES = ['engine.c', 'engine.h', 'prelude.js', 'compiler.c'];

/** Flags of every object (changing them changes the cache key). */
export const CFLAGS = [
  '--target=wasm32-wasi',
  '-O2',
  '-DNDEBUG',
  '-D_GNU_SOURCE',
  '-D_WASI_EMULATED_PROCESS_CLOCKS',
  '-D_WASI_EMULATED_SIGNAL',
  '-Wno-everything',
];
/** Libraries and flags of every link (the engine's module and compiler.wasm). */
export const LDFLAGS = ['-lwasi-emulated-process-clocks', '-lwasi-emulated-signal', '-Wl,-z,stack-size=1048576', '-Wl,--strip-all'];

const BUILD_FORMAT = 1;

function engineKey(clangVersion) {
  const h = createHash('sha256');
  h.update(`format ${BUILD_FORMAT}\n${QUICKJS.sha256}\n${clangVersion}\n${CFLAGS.join(' ')}\n${LDFLAGS.join(' ')}\n`);
  for (const f of ENGINE_SOURCES) h.update(`${f}\n`).update(readFileSync(join(ENGINE_DIR, f)));
  return h.digest('hex').slice(0, 20);
}

/** Waits for another process building the same engine (a lock file), then takes the lock. */
async function lock(path) {
  const started = Date.now();
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      // A lock older than 20 minutes belongs to a build that died.
      const age = Date.now() - statSync(path, { throwIfNoEntry: false })?.mtimeMs;
      if (age > 20 * 60_000) rmSync(path, { force: true });
      if (Date.now() - started > 25 * 60_000) throw new Error(`the engine build lock ${path} is still held`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * The built engine: { dir, key, objects (the .o files every JS module links), compiler, clang }.
 * Builds it when the cache has none for these inputs.
 */
export async function ensureEngine({ log = () => {} } = {}) {
  const clangVersion = checkToolchain();
  const cache = cacheRoot();
  const key = engineKey(clangVersion);
  const dir = join(cache, 'js-engine', key);
  const manifestPath = join(dir, 'engine.json');
  if (!existsSync(manifestPath)) {
    mkdirSync(join(cache, 'js-engine'), { recursive: true });
    const unlock = await lock(`${dir}.lock`);
    try {
      if (!existsSync(manifestPath)) await build(dir, key, clangVersion, cache, log);
    } finally {
      unlock();
    }
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  return { ...manifest, dir, objects: manifest.objects.map((o) => join(dir, o)), compiler: join(dir, 'compiler.wasm') };
}

async function build(dir, key, clangVersion, cache, log) {
  const src = await quickjsSources(cache, log);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const t0 = Date.now();
  log(`building the JS engine (${QUICKJS.engine}, clang -O2, ${JOBS} jobs; once, then cached in ${dir})`);
  const cc = (file, out) => run(clang(), [...CFLAGS, `-I${src}`, `-I${ENGINE_DIR}`, '-c', file, '-o', join(tmp, out)]);
  // quickjs.c is most of the work: start it first.
  await parallel(
    [
      ...QUICKJS.files.map((f) => () => cc(join(src, f), f.replace(/\.c$/, '.o'))),
      () => cc(join(ENGINE_DIR, 'engine.c'), 'engine.o'),
      () => cc(join(ENGINE_DIR, 'compiler.c'), 'compiler.o'),
    ],
    JOBS,
  );
  const quickjsObjects = QUICKJS.files.map((f) => join(tmp, f.replace(/\.c$/, '.o')));
  await run(clang(), [...CFLAGS, ...quickjsObjects, join(tmp, 'compiler.o'), ...LDFLAGS, '-o', join(tmp, 'compiler.wasm')]);
  rmSync(join(tmp, 'compiler.o'));

  const prelude = await compileScript(join(tmp, 'compiler.wasm'), 'vecron:prelude', readFileSync(join(ENGINE_DIR, 'prelude.js')));
  writeFileSync(join(tmp, 'prelude.c'), `#include <stdint.h>\n${cArray('vecron_js_prelude', prelude)}`);
  await run(clang(), [...CFLAGS, '-c', join(tmp, 'prelude.c'), '-o', join(tmp, 'prelude.o')]);

  const objects = [...QUICKJS.files.map((f) => f.replace(/\.c$/, '.o')), 'engine.o', 'prelude.o'];
  const manifest = { key, quickjs: `${QUICKJS.engine} (${QUICKJS.crate} ${QUICKJS.version})`, clang: clangVersion, cflags: CFLAGS, ldflags: LDFLAGS, objects };
  writeFileSync(join(tmp, 'engine.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  log(`built the JS engine in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
