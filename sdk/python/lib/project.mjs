// Builds one Python project into one .wasm: links the cached engine (CPython + engine.o) with a
// small generated C file (the entry exports, the host functions the sources name), then
// pre-initialises it: CPython starts and imports the author's modules at build time, over a
// read-only in-memory file system, and the memory it leaves becomes the module's data.
// Same sources, same engine: the same bytes.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ENGINE_DIR, ensureEngine, CFLAGS, LDFLAGS } from './engine.mjs';
import { preinitialize } from './snapshot.mjs';
import { clang, run } from './toolchain.mjs';
import { BuildFs } from './vfs-wasi.mjs';

/** The privileged host functions, in engine.h's order, with what in a source names each one. */
export const HOST_FUNCTIONS = [
  ['http_request', /\bhttp\s*\.\s*(request|get|post)\b/],
  ['db_query', /\bdb\s*\.\s*query\b/],
  ['file_read', /\bfiles\s*\.\s*read\b/],
  ['file_write', /\bfiles\s*\.\s*write\b/],
  ['file_list', /\bfiles\s*\.\s*list\b/],
  ['crypto', /\bcrypto\s*\.\s*(sha256|sha512|hmac_sha256|random_bytes|uuid|call)\b/],
  ['time', /\btime\s*\.\s*(now|format|parse|add)\b/],
];

/** A problem with the project itself (its manifest, its files, its code): a message for the author. */
export class ProjectError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProjectError';
  }
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MODULE_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** Reads vecron.json and the `python` options, with defaults. */
export function readProject(dir) {
  const path = join(dir, 'vecron.json');
  if (!existsSync(path)) throw new ProjectError(`no vecron.json in ${dir} (a Python project's manifest; create one with \`wasm-cli init NAME --lang python\`)`);
  let m;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ProjectError(`vecron.json: ${e.message}`);
  }
  const py = m.python ?? {};
  const entry = m.entry ?? 'process';
  const entries = [entry, ...(py.entries ?? [])];
  for (const e of entries) if (typeof e !== 'string' || !NAME_RE.test(e)) throw new ProjectError(`vecron.json: entry ${JSON.stringify(e)} is not a Python function name`);
  const main = (py.main ?? 'src/main.py').split(sep).join('/').replace(/^\.\//, '');
  if (typeof main !== 'string' || !main.endsWith('.py') || !existsSync(join(dir, main))) throw new ProjectError(`vecron.json: python.main ${JSON.stringify(main)}: no such .py file`);
  const mainModule = main.split('/').pop().slice(0, -3);
  if (!NAME_RE.test(mainModule)) throw new ProjectError(`vecron.json: python.main ${JSON.stringify(main)} is not importable as a module name`);
  const preload = py.preload ?? [];
  if (!Array.isArray(preload) || !preload.every((p) => typeof p === 'string' && MODULE_RE.test(p))) throw new ProjectError('vecron.json: python.preload must be a list of module names');
  const hostFunctions = py.host_functions ?? 'auto';
  const known = HOST_FUNCTIONS.map(([n]) => n);
  if (!['auto', 'all', 'none'].includes(hostFunctions) && !(Array.isArray(hostFunctions) && hostFunctions.every((h) => known.includes(h)))) {
    throw new ProjectError(`vecron.json: python.host_functions must be "auto", "all", "none" or a list of ${known.join(', ')}`);
  }
  const snake = String(m.name ?? 'module').replace(/[^A-Za-z0-9]+/g, '_');
  const output = m.build?.output ?? `build/${snake}.wasm`;
  const preinit = py.preinitialize ?? true;
  if (typeof preinit !== 'boolean') throw new ProjectError('vecron.json: python.preinitialize must be true or false');
  if (!preinit) throw new ProjectError('vecron.json: python.preinitialize = false is not supported (a run would have no file system to start CPython from)');
  const sourceRoot = main.includes('/') ? main.slice(0, main.lastIndexOf('/')) : '.';
  return { dir, name: m.name, entries: [...new Set(entries)], main, mainModule, sourceRoot, preload, hostFunctions, output };
}

/** The .py files under the source root (to find the host functions they name). */
function pythonFiles(root, rel = '') {
  const out = [];
  for (const f of readdirSync(join(root, rel)).sort()) {
    const p = rel ? `${rel}/${f}` : f;
    const st = statSync(join(root, p));
    if (st.isDirectory()) {
      if (f !== '__pycache__' && !f.startsWith('.')) out.push(...pythonFiles(root, p));
    } else if (f.endsWith('.py')) out.push(p);
  }
  return out;
}

/**
 * Builds the project: { output (absolute path), relative, size, sha256, files, entries,
 * hostFunctions, python }. Throws ProjectError or ToolchainError.
 */
export async function buildProject(dir, { log = () => {}, output } = {}) {
  const p = readProject(dir);
  const engine = await ensureEngine({ log });
  const srcRoot = join(dir, p.sourceRoot);
  const files = pythonFiles(srcRoot);
  const all = files.map((f) => readFileSync(join(srcRoot, f), 'utf8')).join('\n');
  const linked = HOST_FUNCTIONS.map(([name, re]) => {
    if (p.hostFunctions === 'all') return true;
    if (p.hostFunctions === 'none') return false;
    if (Array.isArray(p.hostFunctions)) return p.hostFunctions.includes(name);
    return re.test(all);
  });

  const c = ["// Generated by vecron-sdk/build.mjs: the project's entries and host functions. Do not edit.", '#include <stdint.h>', '#include "engine.h"', ''];
  HOST_FUNCTIONS.forEach(([name], i) => {
    if (linked[i]) c.push(`__attribute__((import_module("vecron"), import_name("${name}"))) extern int64_t vecron_import_${name}(const char *req, int32_t len);`);
  });
  c.push(`const vecron_host_function vecron_py_host_functions[VECRON_HOST_FUNCTION_COUNT] = {${HOST_FUNCTIONS.map(([name], i) => (linked[i] ? `vecron_import_${name}` : '0')).join(', ')}};`, '');
  p.entries.forEach((e, i) => {
    c.push(`__attribute__((export_name("${e}"))) int64_t vecron_entry_${i}(int32_t ptr, int32_t len) { return vecron_py_run("${e}", ptr, len); }`);
  });

  const out = resolve(dir, output ?? p.output);
  const work = join(dirname(out), '.python');
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'module.c'), `${c.join('\n')}\n`);
  const tmp = `${out}.tmp-${process.pid}`;
  await run(clang(), [...CFLAGS, `-I${ENGINE_DIR}`, '-c', 'module.c', '-o', 'module.o'], { cwd: work });
  await run(clang(), [join(work, 'module.o'), ...engine.objects, ...LDFLAGS, '-o', tmp], { cwd: work });

  const buildInfo = { main: p.mainModule, main_file: p.main, source_root: p.sourceRoot, entries: p.entries, preload: p.preload };
  const fs = new BuildFs({
    '/usr/local/lib/python3.11': engine.stdlib,
    '/vecron': {
      'vecron.py': readFileSync(join(engine.sdkPython, 'vecron.py')),
      '_vecron_runtime.py': readFileSync(join(engine.sdkPython, '_vecron_runtime.py')),
      '_build.json': JSON.stringify(buildInfo),
    },
    '/app': srcRoot,
  });
  let snap;
  try {
    snap = await preinitialize(readFileSync(tmp), fs);
  } catch (e) {
    throw new ProjectError(`the module failed to load (its top-level code runs when it is built):\n${e.message}`);
  }
  const bytes = Buffer.from(snap.bytes);
  writeFileSync(tmp, bytes);
  renameSync(tmp, out);
  return {
    output: out,
    relative: relative(dir, out),
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    files: files.map((f) => (p.sourceRoot === '.' ? f : `${p.sourceRoot}/${f}`)),
    entries: p.entries,
    hostFunctions: HOST_FUNCTIONS.filter((_, i) => linked[i]).map(([n]) => n),
    python: engine.python,
    memoryPages: snap.pages,
    printed: snap.stdout + snap.stderr,
  };
}
