// The C toolchain the Python engine is linked with: clang + wasm-ld + wasi-libc (Debian).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const INSTALL_HINT = 'sudo apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32';

/** A missing tool: the message names it and the command that installs it here. */
export class ToolchainError extends Error {
  constructor(message) {
    super(`${message}\n  install it with: ${INSTALL_HINT}`);
    this.name = 'ToolchainError';
  }
}

export const clang = () => process.env.VECRON_CLANG || 'clang';

/** `clang --version` (part of the engine's cache key), or a ToolchainError. */
export function checkToolchain() {
  let version;
  try {
    version = execFileSync(clang(), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    throw new ToolchainError(`clang was not found (${clang()})`);
  }
  const probe = spawnSyncOk(clang(), ['--target=wasm32-wasi', '-print-file-name=libc.a']);
  if (!probe || !existsSync(probe.trim())) {
    if (!existsSync('/usr/lib/wasm32-wasi/libc.a')) throw new ToolchainError('wasi-libc (libc.a for wasm32-wasi) was not found');
  }
  return version.split('\n')[0].trim();
}

function spawnSyncOk(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

/** Where the interpreter and fetched sources are kept: $VECRON_CACHE_DIR or ~/.cache/vecron. */
export function cacheRoot() {
  if (process.env.VECRON_CACHE_DIR) return process.env.VECRON_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'vecron');
}

/** Runs a command (niced: the machine is shared), rejecting with its stderr on failure. */
export function run(cmd, args, opts = {}) {
  const nice = opts.nice !== false && existsSync('/usr/bin/nice');
  const [c, a] = nice ? ['/usr/bin/nice', ['-n', '10', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => reject(e.code === 'ENOENT' ? new ToolchainError(`${cmd} was not found`) : e));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}):\n${err.trim()}`));
    });
  });
}

/** Runs the tasks at most `jobs` at a time (the machine has 2 cores shared by many builds). */
export async function parallel(tasks, jobs) {
  const queue = [...tasks];
  const workers = Array.from({ length: Math.max(1, Math.min(jobs, queue.length)) }, async () => {
    while (queue.length > 0) await queue.shift()();
  });
  await Promise.all(workers);
}

export const JOBS = Math.max(1, Number(process.env.VECRON_JOBS) || 2);
