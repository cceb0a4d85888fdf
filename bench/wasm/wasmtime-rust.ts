/**
 * The native Wasmtime reference of bench/wasm.ts (issue 19): builds the Rust harness in
 * bench/wasmtime/ (wasmtime from crates.io, pinned in its Cargo.lock) once, caches the binary, runs
 * it and turns its output into rows.
 *
 *   const h = await buildWasmtimeHarness(log);       // { binary } or { unavailable: reason }
 *   const out = await runWasmtimeHarness(h.binary, request);
 *
 * The build: `cargo build --release --locked`, cargo's own progress on stderr, into
 * ~/.cache/vecron/wasmtime-bench/<first 16 hex of sha256(Cargo.lock)> (VECRON_WASMTIME_BENCH_CACHE
 * overrides the parent directory), so a new lock file builds afresh and an unchanged one costs
 * cargo's up-to-date check only. Without cargo, or when the build fails, the rows are skipped
 * with the reason; nothing here runs in CI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
export const HARNESS_DIR = join(root, 'bench/wasmtime');
const BIN_NAME = 'vecron-wasmtime-bench';
/** A first build compiles Wasmtime and Cranelift: minutes on a busy 2-core machine. */
const BUILD_TIMEOUT_MS = (Number(process.env.BENCH_WASMTIME_BUILD_TIMEOUT_SECONDS) || 1800) * 1000;

export type Harness = { binary: string; cacheDir: string } | { unavailable: string };

export interface HarnessKernel {
  name: string;
  fn: string;
  args: number[];
  checksumBytes?: number;
}

export interface HarnessRequest {
  echo: string;
  kernel: string | null;
  /** The input value's JSON text: the harness serializes its parsed value back to these bytes. */
  input: string;
  iterations: number;
  warmup: number;
  fuel: number;
  memoryMaxBytes: number;
  rounds: number;
  kernels: HarnessKernel[];
}

/** Microseconds; p50/p99 computed in Rust as bench/stats.ts does (linear interpolation). */
export interface HarnessSummary {
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
  samples: number[];
}

export interface HarnessOut {
  version: string;
  config: Record<string, unknown>;
  echo: { fresh: HarnessSummary; reused: HarnessSummary; fresh_nofuel: HarnessSummary; fuelConsumed: number };
  /** Per kernel: milliseconds per call with no metering, epoch interruption only, fuel + epoch. */
  kernels: Record<string, { plain: number[]; epoch: number[]; fuel: number[]; fuelConsumed: number | null; result: string }>;
}

/** wasmtime 48 (the newest for this toolchain) declares rust-version 1.95. */
const MIN_RUST_MINOR = 95;

/**
 * A cargo new enough for the pinned wasmtime: $CARGO, `cargo` on PATH, else rustup's default
 * location (a non-login shell may not have it on PATH); a distribution's old cargo is passed over.
 */
function findCargo(): { cargo: string } | { unavailable: string } {
  const candidates = [process.env.CARGO, 'cargo', join(homedir(), '.cargo/bin/cargo')].filter(Boolean) as string[];
  const tooOld: string[] = [];
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) continue;
    const m = /cargo 1\.(\d+)/.exec(r.stdout ?? '');
    if (m && Number(m[1]) >= MIN_RUST_MINOR) return { cargo: c };
    tooOld.push(`${c}: ${(r.stdout ?? '').trim()}`);
  }
  const install = 'install Rust with rustup, https://rustup.rs';
  if (tooOld.length) {
    return { unavailable: `cargo 1.${MIN_RUST_MINOR} or newer needed for wasmtime 48 (found ${tooOld.join('; ')}; ${install}): no Wasmtime-Rust rows` };
  }
  return { unavailable: `cargo not found (${install}): no Wasmtime-Rust rows` };
}

export function harnessCacheDir(): string {
  const lock = readFileSync(join(HARNESS_DIR, 'Cargo.lock'));
  const key = createHash('sha256').update(lock).digest('hex').slice(0, 16);
  const parent = process.env.VECRON_WASMTIME_BENCH_CACHE || join(homedir(), '.cache/vecron/wasmtime-bench');
  return join(parent, key);
}

/** Builds (or finds up to date) the harness; never throws: a reason instead of a binary. */
export async function buildWasmtimeHarness(log: (msg: string) => void): Promise<Harness> {
  const found = findCargo();
  if ('unavailable' in found) return found;
  const { cargo } = found;
  let cacheDir: string;
  try {
    cacheDir = harnessCacheDir();
    mkdirSync(cacheDir, { recursive: true });
  } catch (err) {
    return { unavailable: `harness cache: ${(err as Error).message}` };
  }
  const binary = join(cacheDir, 'release', BIN_NAME);
  log(`Wasmtime-Rust harness: cargo build --release --locked (target ${cacheDir}${existsSync(binary) ? ', cached' : ', first build: minutes'})`);
  const t0 = performance.now();
  const code = await new Promise<number | string>((resolve) => {
    // cargo writes its progress to stderr; its stdout goes there too so ours stays the report.
    const child = spawn(cargo, ['build', '--release', '--locked', '--manifest-path', join(HARNESS_DIR, 'Cargo.toml')], {
      cwd: HARNESS_DIR,
      stdio: ['ignore', 2, 2],
      env: { ...process.env, CARGO_TARGET_DIR: cacheDir },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve(err.message);
    });
    child.on('close', (c, sig) => {
      clearTimeout(timer);
      resolve(c ?? `killed by ${sig}${sig === 'SIGKILL' ? ` after ${BUILD_TIMEOUT_MS / 1000} s` : ''}`);
    });
  });
  if (code !== 0 || !existsSync(binary)) {
    return { unavailable: `cargo build of bench/wasmtime failed (${typeof code === 'number' ? `exit ${code}` : code}): see cargo's output above` };
  }
  log(`Wasmtime-Rust harness ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { binary, cacheDir };
}

/** Runs the harness once (one condition: the caller wraps it in underLoad for the loaded rows). */
export function runWasmtimeHarness(binary: string, req: HarnessRequest, timeoutMs = 180_000): Promise<HarnessOut> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code !== 0) {
        const why = stderr.trim().split('\n').slice(-3).join(' / ') || (sig ? `killed by ${sig}` : 'no output');
        return reject(new Error(`Wasmtime-Rust harness failed (exit ${code}): ${why}`));
      }
      try {
        resolve(JSON.parse(stdout) as HarnessOut);
      } catch {
        reject(new Error(`Wasmtime-Rust harness printed no JSON: ${stdout.slice(0, 200)}`));
      }
    });
    child.stdin.end(JSON.stringify(req));
  });
}

export interface HarnessRow {
  /** The row's tag in the overhead table: (e), (e'), (e''). */
  tag: string;
  label: string;
  samples: number[];
  note: string;
}

/** The overhead rows of one harness run, labelled with the condition they ran under. */
export function wasmtimeEchoRows(out: HarnessOut, condition: string): HarnessRow[] {
  const v = out.version;
  const fuel = `${out.echo.fuelConsumed} fuel`;
  return [
    {
      tag: '(e)',
      label: `(e) Wasmtime ${v} (Rust), fresh Store + Instance per run (InstancePre, pooling), fuel + epoch on, ${condition}`,
      samples: out.echo.fresh.samples,
      note: `timed inside Rust; serde_json both ways; ${fuel}`,
    },
    {
      tag: "(e')",
      label: `(e') Wasmtime ${v} (Rust), one instance reused, fuel + epoch on, ${condition}`,
      samples: out.echo.reused.samples,
      note: 'fuel and deadline set before each run',
    },
    {
      tag: "(e'')",
      label: `(e'') Wasmtime ${v} (Rust), fresh Store + Instance per run (pooling), no fuel, no epoch, ${condition}`,
      samples: out.echo.fresh_nofuel.samples,
      note: 'what the metering costs Wasmtime',
    },
  ];
}
