/**
 * The "loaded" condition of every benchmark (issue 19): one child process per CPU, at normal
 * priority, each spinning on arithmetic, so every core is busy while the rows are measured.
 * A production worker is rarely idle; figures measured only on a quiet machine flatter whatever
 * depends on a free core (thread wake-ups, spinning).
 *
 *   const burner = await startCpuBurner();   // all cores busy from here
 *   ... measure the loaded rows ...
 *   await burner.stop();                      // and the report says what load it measured
 *
 * `loadCondition()` tells a row's label: `quiet` or `loaded (N burners)`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** The child's program: spin until killed; check the parent every ~100 ms so it never outlives it. */
const BURN = `
const parent = process.ppid;
let x = 0;
for (;;) {
  const until = Date.now() + 100;
  while (Date.now() < until) x = (x * 1103515245 + 12345) % 2147483648;
  try { process.kill(parent, 0); } catch { process.exit(0); }
}`;

export interface CpuBurner {
  /** Number of burning child processes. */
  readonly count: number;
  /** The 1-minute load average when the burners had run for their warm-up. */
  readonly loadAtStart: number;
  /** CPU time (user + system, ms) the burners used so far, from /proc (0 where unavailable). */
  cpuMs(): number;
  stop(): Promise<void>;
}

let active: CpuBurner | undefined;

/** `quiet`, or `loaded (N burners)` while a burner runs in this process. */
export function loadCondition(): string {
  return active ? `loaded (${active.count} burners)` : 'quiet';
}

export function nprocs(): number {
  return Math.max(1, cpus().length);
}

/**
 * Starts `count` burners (default: one per CPU) and waits `warmupMs` so the scheduler has spread
 * them before the first measured row.
 */
export async function startCpuBurner(count = nprocs(), warmupMs = 1000): Promise<CpuBurner> {
  if (active) throw new Error('a CPU burner already runs in this process');
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    children.push(spawn(process.execPath, ['-e', BURN], { stdio: 'ignore' }));
  }
  const onExit = () => {
    for (const c of children) c.kill('SIGKILL');
  };
  process.once('exit', onExit);
  await new Promise((r) => setTimeout(r, warmupMs));
  const burner: CpuBurner = {
    count,
    loadAtStart: loadavg()[0],
    cpuMs: () => children.reduce((sum, c) => sum + procCpuMs(c.pid), 0),
    async stop() {
      process.off('exit', onExit);
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGKILL');
            }),
        ),
      );
      if (active === burner) active = undefined;
    },
  };
  active = burner;
  return burner;
}

/** Runs `fn` with every core busy, and stops the burners whatever happens. */
export async function underLoad<T>(fn: () => Promise<T>, count = nprocs()): Promise<T> {
  const burner = await startCpuBurner(count);
  try {
    return await fn();
  } finally {
    await burner.stop();
  }
}

function procCpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    // /proc/<pid>/stat fields 14 and 15: utime and stime in clock ticks (100 per second on Linux).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}
