/**
 * The tools a build runs: the manifest's `build.requires` checks, the environment the build
 * commands get, and wasm-opt (Debian's binaryen on PATH first, it is native and fast; else the npm
 * `binaryen` package's, a JS/wasm build, found in the package's node_modules).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Requirement } from './project.ts';

/** Folders added to PATH for builds: Go's official tarball installs there. */
const EXTRA_PATH = ['/usr/local/go/bin'];

/** The package's own node_modules/.bin (asc, wasm-opt from npm), when wasm-cli runs from a checkout or an npm install. */
function packageBin(): string[] {
  try {
    const bin = fileURLToPath(new URL('../../../node_modules/.bin', import.meta.url));
    return existsSync(bin) ? [bin] : [];
  } catch {
    return []; // the single-file executable has no package folder
  }
}

/**
 * The environment of the build commands and checks: the user's PATH first, then Go's folder and the
 * package's node_modules/.bin (so an AssemblyScript project finds the asc that came with wasm-cli
 * when it has none of its own).
 */
export function buildEnv(projectRoot: string): NodeJS.ProcessEnv {
  const path = [...(process.env.PATH ?? '').split(delimiter), ...EXTRA_PATH, ...packageBin()].filter(Boolean).join(delimiter);
  // SOURCE_DATE_EPOCH: the toolchains that stamp a time take this one, so two builds agree.
  return { ...process.env, PATH: path, VECRON_SDK: join(projectRoot, 'vecron-sdk'), SOURCE_DATE_EPOCH: process.env.SOURCE_DATE_EPOCH ?? '0' };
}

/** The requirements whose check fails (exit code not 0) in the project folder. */
export function missingTools(requires: readonly Requirement[], cwd: string, env: NodeJS.ProcessEnv): Requirement[] {
  return requires.filter((r) => spawnSync('sh', ['-c', r.check], { cwd, env, stdio: 'ignore', timeout: 60_000 }).status !== 0);
}

export interface CommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs one build command with `sh -c`, its stdout and stderr kept together (shown on failure or with --verbose). */
export function runShell(command: string, cwd: string, env: NodeJS.ProcessEnv, echo: boolean): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (d: Buffer) => {
      output += d.toString('utf8');
      if (output.length > 1_000_000) output = output.slice(-500_000);
      if (echo) process.stderr.write(d);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err) => resolve({ code: 127, signal: null, output: output + String(err) }));
    child.on('close', (code, signal) => resolve({ code, signal, output }));
  });
}

/** wasm-opt to use, or null: WASM_OPT, then PATH, then the npm package's. */
export function findWasmOpt(env: NodeJS.ProcessEnv): string | null {
  if (env.WASM_OPT) return existsSync(env.WASM_OPT) ? env.WASM_OPT : null;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'wasm-opt'))) return join(dir, 'wasm-opt');
  }
  try {
    const npm = fileURLToPath(new URL('../../../node_modules/.bin/wasm-opt', import.meta.url));
    if (existsSync(npm)) return npm;
  } catch {
    /* no file URL in the single-file executable */
  }
  return null;
}

/**
 * The features the optimiser may keep or use: the ones the sandbox's instrumenter accepts
 * (src/wasm/binary/opcodes.ts), so an optimised module is never refused for a feature.
 */
export const WASM_OPT_FEATURES = [
  '--enable-sign-ext',
  '--enable-mutable-globals',
  '--enable-nontrapping-float-to-int',
  '--enable-bulk-memory',
  '--enable-reference-types',
  '--enable-simd',
  '--enable-multivalue',
  '--enable-tail-call',
];
