// Which tree the CLIs run: the compiled dist/ (scripts/build-dist.mjs, built by `npm install`) when
// it is current, else src/ through tsx (a checkout whose sources changed since the last build).
//
// "Current" is decided without reading any source: dist/.stamp.json holds the number of files under
// src/, their total size and the newest modification time when dist/ was built, and the same three
// are taken again here (one stat per file, about 250 files: a few milliseconds). An edit, a new or a
// deleted file, a `git checkout` (it sets the time of the files it writes) all change one of them;
// a file touched without a change also counts as changed (tsx then runs it: slower, never wrong).
// The build script itself is part of the snapshot, so a changed build rebuilds; so is
// node_modules/.package-lock.json (the packages bundled into dist/vendor/).
//
// VECRON_RUN_FROM=src forces tsx on src/ (the test runner sets it: coverage is of src/),
// VECRON_RUN_FROM=dist forces dist/ even when stale (it must exist); unset or `auto`: as above,
// except that src/ runs while NODE_V8_COVERAGE is set (a coverage run measures src/).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Count, total bytes and newest mtime of src/, the build script and npm's lock of node_modules: what dist/ was built from. */
export function sourceSnapshot(root = ROOT) {
  const snap = { files: 0, bytes: 0, newestMtimeMs: 0 };
  const add = (p) => {
    const s = statSync(p);
    snap.files++;
    snap.bytes += s.size;
    if (s.mtimeMs > snap.newestMtimeMs) snap.newestMtimeMs = s.mtimeMs;
  };
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else add(p);
    }
  };
  walk(join(root, 'src'));
  add(join(root, 'scripts', 'build-dist.mjs'));
  // dist/vendor/ bundles some packages (scripts/build-dist.mjs, VENDORED): a change of node_modules
  // (npm rewrites this file on every install, update or removal) makes dist/ stale too.
  const lock = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(lock)) add(lock);
  return snap;
}

/** Why dist/ cannot be used, or null when it is current. */
export function distProblem(root = ROOT) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, 'dist', '.stamp.json'), 'utf8'));
  } catch {
    return 'not built';
  }
  let now;
  try {
    now = sourceSnapshot(root);
  } catch {
    return null; // no src/ (an install of the compiled files only): dist/ is all there is
  }
  const same = now.files === stamp.files && now.bytes === stamp.bytes && now.newestMtimeMs === stamp.newestMtimeMs;
  return same ? null : 'src/ changed since dist/ was built';
}

/**
 * Loads the CLI `name` (src/cli/<name>.ts or dist/cli/<name>.js). With tsx, registers it with the
 * package's own tsconfig.json (tsx would otherwise read the one in the current directory, whose
 * "paths" could redirect our imports).
 */
export async function runCli(name) {
  const mode = process.env.VECRON_RUN_FROM || 'auto';
  const dist = join(ROOT, 'dist', 'cli', `${name}.js`);
  let useDist = false;
  if (mode === 'dist') {
    if (!existsSync(dist)) throw new Error(`VECRON_RUN_FROM=dist, but ${dist} is missing: run npm run build:dist`);
    useDist = true;
  } else if (mode === 'auto' && process.env.NODE_V8_COVERAGE) {
    // Coverage is being collected (the test runner's full run; its harnesses clear VECRON_*): it is
    // a coverage of src/, which compiled files would not count.
    useDist = false;
  } else if (mode === 'auto') {
    const problem = distProblem();
    useDist = problem === null;
    if (problem && problem !== 'not built') {
      process.stderr.write(`[vecron] ${problem}: running src/ through tsx (npm run build:dist compiles it again)\n`);
    }
  } else if (mode !== 'src') {
    throw new Error(`VECRON_RUN_FROM must be src, dist or auto, got '${mode}'`);
  }
  if (useDist) return import(pathToFileURL(dist).href);
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: join(ROOT, 'tsconfig.json') });
  return import(pathToFileURL(join(ROOT, 'src', 'cli', `${name}.ts`)).href);
}
