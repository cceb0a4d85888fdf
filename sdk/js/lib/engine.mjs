// Builds the JS engine once per set of inputs and keeps it in the cache, in two levels:
// - ~/.cache/vecron/js-engine/quickjs-<key>/: QuickJS's objects (a minute or two of clang), keyed by
//   the crate's SHA-256, the flags and the clang version;
// - ~/.cache/vecron/js-engine/<key>/: engine.o, prelude.o and compiler.wasm, keyed by that and our
//   C and JS sources (seconds to rebuild).
// A build only happens when one of its inputs changes.
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
// --stack-first: a shadow-stack overflow runs below address 0 and traps, never into the data.
// Links run without -O: clang would otherwise run wasm-opt when binaryen is on PATH, so the bytes
// would depend on what else is installed (wasm-cli build runs wasm-opt itself, when asked).
export const LDFLAGS = ['--target=wasm32-wasi', '-lwasi-emulated-process-clocks', '-lwasi-emulated-signal', '-Wl,-z,stack-size=1048576', '-Wl,--stack-first', '-Wl,--strip-all'];

const BUILD_FORMAT = 1;

function quickjsKey(clangVersion) {
  const h = createHash('sha256');
  h.update(`format ${BUILD_FORMAT}\n${QUICKJS.sha256}\n${clangVersion}\n${CFLAGS.join(' ')}\n`);
  return `quickjs-${h.digest('hex').slice(0, 20)}`;
}

function engineKey(qjsKey) {
  const h = createHash('sha256');
  h.update(`format ${BUILD_FORMAT}\n${qjsKey}\n${LDFLAGS.join(' ')}\n`);
  for (const f of ENGINE_SOURCES) h.update(`${f}\n`).update(readFileSync(join(ENGINE_DIR, f)));
  return h.digest('hex').slice(0, 20);
}

/** Runs `make(tmpDir)` unless `dir/done` exists, under a lock; the result appears atomically. */
async function cached(dir, done, make) {
  if (existsSync(join(dir, done))) return;
  mkdirSync(dirname(dir), { recursive: true });
  const unlock = await lock(`${dir}.lock`);
  try {
    if (existsSync(join(dir, done))) return;
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    await make(tmp);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    unlock();
  }
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
 * Builds what the cache has not got for these inputs.
 */
export async function ensureEngine({ log = () => {} } = {}) {
  const clangVersion = checkToolchain();
  const cache = cacheRoot();
  const qjsKey = quickjsKey(clangVersion);
  const qjsDir = join(cache, 'js-engine', qjsKey);
  const key = engineKey(qjsKey);
  const dir = join(cache, 'js-engine', key);
  await cached(qjsDir, 'quickjs.json', (tmp) => buildQuickjs(tmp, qjsDir, cache, log));
  await cached(dir, 'engine.json', (tmp) => buildEngine(tmp, dir, key, qjsDir, clangVersion, log));
  const manifest = JSON.parse(readFileSync(join(dir, 'engine.json'), 'utf8'));
  const objects = [...QUICKJS.files.map((f) => join(qjsDir, f.replace(/\.c$/, '.o'))), ...manifest.objects.map((o) => join(dir, o))];
  return { ...manifest, dir, objects, compiler: join(dir, 'compiler.wasm') };
}

async function buildQuickjs(tmp, finalDir, cache, log) {
  const src = await quickjsSources(cache, log);
  const t0 = Date.now();
  log(`building QuickJS (${QUICKJS.engine}, clang -O2, ${JOBS} jobs; once, then cached in ${finalDir})`);
  await parallel(
    QUICKJS.files.map((f) => () => run(clang(), [...CFLAGS, `-I${src}`, '-c', join(src, f), '-o', join(tmp, f.replace(/\.c$/, '.o'))])),
    JOBS,
  );
  // The headers engine.c and compiler.c include, kept with the objects they match.
  for (const h of ['quickjs.h']) writeFileSync(join(tmp, h), readFileSync(join(src, h)));
  writeFileSync(join(tmp, 'quickjs.json'), `${JSON.stringify({ quickjs: QUICKJS, cflags: CFLAGS }, null, 2)}\n`);
  log(`built QuickJS in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function buildEngine(tmp, finalDir, key, qjsDir, clangVersion, log) {
  const cc = (file, out) => run(clang(), [...CFLAGS, `-I${qjsDir}`, `-I${ENGINE_DIR}`, '-c', file, '-o', join(tmp, out)]);
  await parallel([() => cc(join(ENGINE_DIR, 'engine.c'), 'engine.o'), () => cc(join(ENGINE_DIR, 'compiler.c'), 'compiler.o')], JOBS);
  const quickjsObjects = QUICKJS.files.map((f) => join(qjsDir, f.replace(/\.c$/, '.o')));
  await run(clang(), [...quickjsObjects, join(tmp, 'compiler.o'), ...LDFLAGS, '-o', join(tmp, 'compiler.wasm')]);
  rmSync(join(tmp, 'compiler.o'));

  const prelude = await compileScript(join(tmp, 'compiler.wasm'), 'vecron:prelude', readFileSync(join(ENGINE_DIR, 'prelude.js')));
  writeFileSync(join(tmp, 'prelude.c'), `#include <stdint.h>\n${cArray('vecron_js_prelude', prelude)}`);
  await run(clang(), [...CFLAGS, '-c', join(tmp, 'prelude.c'), '-o', join(tmp, 'prelude.o')]);

  const manifest = { key, quickjs: `${QUICKJS.engine} (${QUICKJS.crate} ${QUICKJS.version})`, clang: clangVersion, cflags: CFLAGS, ldflags: LDFLAGS, objects: ['engine.o', 'prelude.o'] };
  writeFileSync(join(tmp, 'engine.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`built the JS engine's runtime in ${finalDir}`);
}
