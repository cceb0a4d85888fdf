// Runs the engine's compiler (compiler.c, a WASI command built with the engine) under Node's own
// WASI to turn JavaScript into QuickJS bytecode: the bytecode always matches the engine it runs on.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A JavaScript syntax error found at build time (message with file and line). */
export class JsCompileError extends Error {
  constructor(message) {
    super(message);
    this.name = 'JsCompileError';
  }
}

let wasiClass;
async function loadWasi() {
  if (!wasiClass) {
    // Node 20 prints an ExperimentalWarning for node:wasi; the compiler's use of it is an internal
    // detail, not something a module author should see on every build.
    const listeners = process.listeners('warning');
    process.removeAllListeners('warning');
    process.on('warning', (w) => {
      if (w.name !== 'ExperimentalWarning' || !/WASI/.test(w.message)) for (const l of listeners) l(w);
    });
    ({ WASI: wasiClass } = await import('node:wasi'));
  }
  return wasiClass;
}

const modules = new Map();

/** Runs the compiler; returns its stdout, or throws JsCompileError with its stderr. */
async function runCompiler(compilerWasm, args, source, preopens) {
  const WASI = await loadWasi();
  let mod = modules.get(compilerWasm);
  if (!mod) {
    mod = await WebAssembly.compile(readFileSync(compilerWasm));
    modules.set(compilerWasm, mod);
  }
  const dir = mkdtempSync(join(tmpdir(), 'vecron-jsc-'));
  try {
    writeFileSync(join(dir, 'in'), source);
    const fds = [openSync(join(dir, 'in'), 'r'), openSync(join(dir, 'out'), 'w'), openSync(join(dir, 'err'), 'w')];
    let code;
    try {
      const wasi = new WASI({ version: 'preview1', args: ['compiler', ...args], env: {}, preopens, stdin: fds[0], stdout: fds[1], stderr: fds[2], returnOnExit: true });
      const instance = await WebAssembly.instantiate(mod, wasi.getImportObject());
      code = wasi.start(instance);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    if (code !== 0) throw new JsCompileError(readFileSync(join(dir, 'err'), 'utf8').trim() || `the compiler exited with code ${code}`);
    return readFileSync(join(dir, 'out'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compiles a classic script (the prelude) to bytecode. */
export const compileScript = (compilerWasm, name, source) => runCompiler(compilerWasm, ['script', name], source, {});

/**
 * Compiles the project's main module and every module it imports (dependencies first, the main
 * module last): [{ name, bytecode }], names being paths in the project ("src/util.js").
 */
export async function compileModules(compilerWasm, projectDir, main) {
  const out = await runCompiler(compilerWasm, ['module', main], '', { '/project': projectDir });
  const modules = [];
  for (let i = 0; i < out.length; ) {
    const n = out.readUInt32LE(i);
    const name = out.subarray(i + 4, i + 4 + n).toString('utf8');
    const size = out.readUInt32LE(i + 4 + n);
    modules.push({ name, bytecode: out.subarray(i + 8 + n, i + 8 + n + size) });
    i += 8 + n + size;
  }
  return modules;
}
