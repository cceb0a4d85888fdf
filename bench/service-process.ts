/**
 * The service as an operator runs it, for the benchmarks that measure it from outside
 * (bench/startup.ts, bench/api.ts): `node bin/vecron.js start` in a child process, from dist/ or
 * from src/ through tsx (VECRON_RUN_FROM), timed until `GET /health` answers 200, with its CPU time
 * and resident memory read from /proc. Also a scratch PostgreSQL database per run.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

export const ROOT = new URL('..', import.meta.url).pathname;

/** A free TCP port on 127.0.0.1 (the OS picks it; nothing else binds it between here and the child). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** User + system CPU time of a process and all its threads, in ms (0 where /proc is unavailable). */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime in clock ticks of 10 ms
  } catch {
    return 0;
  }
}

/** Resident memory of a process in MB (VmRSS), NaN where /proc is unavailable. */
export function procRssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface ServiceOptions {
  from: 'dist' | 'src';
  env: Record<string, string>;
  /** Node options before the script, e.g. ['--cpu-prof'] to see where a figure goes. */
  nodeArgs?: string[];
  /** Give up after this long without a 200 from /health (default 120 s: a loaded machine is slow). */
  timeoutMs?: number;
}

export interface RunningService {
  pid: number;
  url: string;
  /** From spawn to the first 200 of GET /health. */
  healthMs: number;
  /** CPU time the process had used at that moment (all threads). */
  cpuMsAtHealth: number;
  /** From spawn to the first 200 of GET /ready (every role started: the API listens first). */
  readyMs: number;
  stop(): Promise<void>;
}

/** Starts `bin/vecron.js start` and resolves once /health answers 200 (polled every 10 ms). */
export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? []), 'bin/vecron.js', 'start'], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      VECRON_LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      ...opts.env,
      PORT: String(port),
      VECRON_RUN_FROM: opts.from,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    if (stderr.length < 20_000) stderr += String(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = t0 + (opts.timeoutMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`vecron start (${opts.from}) exited (${child.exitCode ?? child.signalCode}) before /health answered: ${stderr.trim()}`);
    }
    const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) {
      const healthMs = performance.now() - t0;
      const cpuMsAtHealth = procCpuMs(child.pid!);
      // Then readiness: the worker and scheduler roles start once the API listens (src/app.ts).
      let readyMs = Number.NaN;
      while (performance.now() < deadline && child.exitCode === null) {
        const ready = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ready) {
          readyMs = performance.now() - t0;
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return { pid: child.pid!, url, healthMs, cpuMsAtHealth, readyMs, stop };
    }
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`vecron start (${opts.from}): no 200 from /health within ${opts.timeoutMs ?? 120_000} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Superuser URL of the benchmark PostgreSQL (BENCH_DATABASE_URL, TEST_DATABASE_URL, else scripts/services.sh). */
export function adminDatabaseUrl(log: (s: string) => void): string {
  const url = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL;
  if (url) return url;
  log('neither BENCH_DATABASE_URL nor TEST_DATABASE_URL is set: starting the local servers (bash scripts/services.sh start)');
  const out = execFileSync('bash', ['scripts/services.sh', 'start'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 15 * 60_000,
  });
  const m = /^export TEST_DATABASE_URL='([^']*)'$/m.exec(out);
  if (!m) throw new Error(`scripts/services.sh start printed no TEST_DATABASE_URL; its output was:\n${out}`);
  process.env.TEST_DATABASE_URL = m[1];
  return m[1];
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A new empty database on that server, and how to drop it. */
export async function scratchDatabase(adminUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `vecron_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  let dropped = false;
  return {
    url: u.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
