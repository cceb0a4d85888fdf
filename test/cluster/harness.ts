/**
 * A vecron cluster as an operator runs it: separate `bin/vecron.js start --roles ...` processes
 * (api, schedulers, workers) on one PostgreSQL of its own, jobs whose steps call a loopback HTTP
 * server that counts every step run (by execution and step), and an SSE client on the api.
 * Used by the cluster suite (cluster.test.ts) and the longer chaos run (chaos.ts, by hand).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresServer } from './postgres-server.ts';
import { freePort } from '../helpers/ports.ts';
export { freePort };

const ROOT = new URL('../../', import.meta.url).pathname;
export const TOKEN = 'cluster-suite-bootstrap-token-0123456789';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

export type Role = 'api' | 'scheduler' | 'worker';

export interface VecronProcess {
  name: string;
  role: Role;
  child: ChildProcess;
  logFile: string;
  /** Set when the test killed it on purpose. */
  killed: boolean;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  port?: number;
}

/** Counts step runs: every step of the suite's jobs POSTs here with its execution id and step id. */
export class StepCounter {
  readonly runs = new Map<string, number>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const key = `${u.searchParams.get('e')}:${u.searchParams.get('s')}`;
      this.runs.set(key, (this.runs.get(key) ?? 0) + 1);
      const delay = Number(u.searchParams.get('delay') ?? 0);
      req.resume();
      req.on('end', () => {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"ok":true}');
        }, delay);
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  count(executionId: string, stepId: string): number {
    return this.runs.get(`${executionId}:${stepId}`) ?? 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** Reads /api/v1/events and keeps the arrival time of every event. */
export class SseClient {
  readonly arrivals: number[] = [];
  private ac = new AbortController();
  private done: Promise<void> | null = null;
  connected = false;

  constructor(private readonly url: string) {}

  start(): void {
    this.done = (async () => {
      const res = await fetch(`${this.url}/api/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: this.ac.signal });
      if (res.status !== 200 || !res.body) throw new Error(`SSE answered ${res.status}`);
      this.connected = true;
      let buf = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (/^data: /m.test(frame)) this.arrivals.push(Date.now());
        }
      }
    })().catch(() => {
      this.connected = false;
    });
  }

  /** Arrival time of the first event at or after `t`, or null. */
  firstAfter(t: number): number | null {
    return this.arrivals.find((a) => a >= t) ?? null;
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.done;
  }
}

export interface ClusterOptions {
  leaseSeconds: number;
  pollIntervalMs: number;
  /** Extra environment for every process. */
  env?: Record<string, string>;
}

export class Cluster {
  pg!: PostgresServer;
  readonly procs: VecronProcess[] = [];
  readonly counter = new StepCounter();
  readonly dataDir = mkdtempSync(join(tmpdir(), 'vecron-cluster-'));
  private db!: pg.Pool;
  private n = 0;
  apiUrl = '';

  constructor(readonly opts: ClusterOptions) {}

  async start(): Promise<void> {
    this.pg = new PostgresServer(await freePort());
    this.pg.init();
    await this.pg.start();
    this.db = new pg.Pool({ connectionString: this.pg.url, max: 2 });
    this.db.on('error', () => {}); // the suite restarts the server under it
    await this.counter.start();
    // Migrate once, so that the processes do not all wait on the migration lock at the same moment.
    const m = this.spawnCommand(['migrate']);
    const code = await new Promise<number | null>((r) => m.on('exit', r));
    if (code !== 0) throw new Error(`vecron migrate exited ${code}`);
  }

  private env(role: string, port?: number): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VECRON_') && k !== 'DATABASE_URL' && k !== 'PORT') env[k] = v;
    return {
      ...env,
      NODE_ENV: 'production',
      DATABASE_URL: this.pg.url,
      VECRON_ROLES: role,
      VECRON_DATA_DIR: this.dataDir,
      VECRON_LOG_LEVEL: 'info',
      VECRON_LEASE_SECONDS: String(this.opts.leaseSeconds),
      VECRON_POLL_INTERVAL_MS: String(this.opts.pollIntervalMs),
      // Every fire time runs however long the database was away (the suite checks there are no gaps).
      VECRON_MISFIRE_THRESHOLD_SECONDS: '120',
      VECRON_BOOTSTRAP_TOKEN: TOKEN,
      VECRON_DB_POOL_SIZE: '5',
      HOST: '127.0.0.1',
      PORT: String(port ?? 0),
      ...this.opts.env,
    };
  }

  private spawnCommand(args: string[], env = this.env('worker')): ChildProcess {
    return spawn(process.execPath, ['bin/vecron.js', ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'ignore'] });
  }

  /** Starts one process with `role`; the api waits until /ready answers 200. */
  async spawn(role: Role): Promise<VecronProcess> {
    const name = `${role}-${++this.n}`;
    const port = role === 'api' ? await freePort() : undefined;
    const logFile = join(this.dataDir, `${name}.log`);
    const log: WriteStream = createWriteStream(logFile);
    const child = spawn(process.execPath, ['bin/vecron.js', 'start'], { cwd: ROOT, env: this.env(role, port), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const p: VecronProcess = { name, role, child, logFile, killed: false, exit: null, port };
    child.on('exit', (code, signal) => {
      p.exit = { code, signal };
      log.end();
    });
    this.procs.push(p);
    if (role === 'api') {
      this.apiUrl = `http://127.0.0.1:${port}`;
      await waitFor(`${name} to be ready`, async () => (await fetch(`${this.apiUrl}/ready`)).status === 200, 90_000, 250);
    }
    return p;
  }

  /** Waits until the process has logged `pattern` (e.g. that its worker started). */
  async logged(p: VecronProcess, pattern: RegExp, timeoutMs = 90_000): Promise<void> {
    await waitFor(`${p.name} to log ${pattern}`, async () => pattern.test(readFileSync(p.logFile, 'utf8')), timeoutMs, 200);
  }

  /** A live worker process that runs an execution right now (waits for one). */
  async busyWorker(): Promise<VecronProcess> {
    return waitFor(
      'a worker running an execution',
      async () => {
        const pids = await this.lockHolders();
        return this.procs.find((p) => p.role === 'worker' && !p.killed && this.alive(p) && pids.has(p.child.pid!)) ?? null;
      },
      30_000,
      50,
    );
  }

  /** The pids of the workers that hold a running execution right now. */
  async lockHolders(): Promise<Set<number>> {
    const rows = await this.query<{ locked_by: string }>(`SELECT locked_by FROM executions WHERE status = 'running' AND locked_by IS NOT NULL`);
    return new Set(rows.map((r) => Number(r.locked_by.split(':')[1])));
  }

  async holdsExecution(p: VecronProcess): Promise<boolean> {
    return (await this.lockHolders()).has(p.child.pid!);
  }

  kill(p: VecronProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
    if (signal === 'SIGKILL' || signal === 'SIGTERM') p.killed = true;
    p.child.kill(signal);
  }

  alive(p: VecronProcess): boolean {
    return p.exit === null && p.child.exitCode === null && p.child.signalCode === null;
  }

  log(p: VecronProcess): string {
    return readFileSync(p.logFile, 'utf8');
  }

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(this.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** A job firing every `everySeconds` s whose `steps` steps each call the counter (the second one answered after `slowMs`). */
  async createJob(name: string, everySeconds: number, steps = 3, slowMs = 0): Promise<string> {
    const r = await this.api('POST', '/api/v1/jobs', {
      name,
      schedule: { type: 'cron', expression: `*/${everySeconds} * * * * *` },
      timeout_seconds: 60,
      steps: Array.from({ length: steps }, (_, i) => ({
        id: `s${i + 1}`,
        type: 'http',
        config: { url: `${this.counter.url}/hit?e={{execution.id}}&s=s${i + 1}${i === 1 && slowMs ? `&delay=${slowMs}` : ''}`, method: 'POST', body: { n: i } },
      })),
    });
    if (r.status !== 201) throw new Error(`create job ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id;
  }

  async query<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.db.query(sql, params)).rows as T[];
  }

  /** Restarts PostgreSQL as an operator would: fast stop, `downMs` down, start. Returns when it is back. */
  async restartDatabase(downMs: number, whileDown?: () => Promise<void>): Promise<{ stoppedAt: number; backAt: number }> {
    await this.pg.stop();
    const stoppedAt = Date.now();
    await Promise.all([sleep(downMs), whileDown?.()]);
    await this.pg.start();
    return { stoppedAt, backAt: Date.now() };
  }

  async close(): Promise<void> {
    for (const p of this.procs) if (this.alive(p)) p.child.kill('SIGKILL');
    await Promise.all(this.procs.map((p) => (p.exit ? null : new Promise((r) => p.child.once('exit', r)))));
    await this.db?.end().catch(() => {});
    await this.counter.stop().catch(() => {});
    this.pg?.destroy();
    if (!process.env.VECRON_CLUSTER_KEEP) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Median of a list of numbers (null when empty). */
export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export interface Verdict {
  executions: number;
  duplicates: number;
  gaps: number;
  unfinished: number;
  notSucceeded: number;
  /** Steps run more than once where no worker died or froze (lease taken over). */
  rerunsWithoutTakeover: { execution: string; step: string; runs: number }[];
  /** Extra step runs beyond one per lease takeover of the execution. */
  rerunsBeyondTakeovers: { execution: string; extra: number; takeovers: number }[];
  /** Step runs the engine recorded as succeeded but the counter never saw (lost). */
  neverRun: number;
  takeovers: number;
  allowedReruns: number;
}

/**
 * What the database and the counter say after the load: one execution per fire time, no gaps
 * between a job's first and last fire time, everything finished and succeeded, and no step run
 * more than once unless its execution was taken over from a worker that died or froze (one
 * re-run per takeover: the step that was running).
 */
export async function verdict(c: Cluster, jobIds: string[], everySeconds: number | Map<string, number>, steps = 3): Promise<Verdict> {
  const execs = await c.query<{ id: string; job_id: string; fire_time: Date; status: string; attempts: any[] }>(
    `SELECT id, job_id, fire_time, status, attempts FROM executions WHERE job_id = ANY($1::uuid[]) ORDER BY job_id, fire_time`,
    [jobIds],
  );
  const dup = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT job_id, fire_time FROM executions WHERE job_id = ANY($1::uuid[]) GROUP BY 1, 2 HAVING count(*) > 1) d`,
    [jobIds],
  );
  let gaps = 0;
  const byJob = new Map<string, number[]>();
  for (const e of execs) (byJob.get(e.job_id) ?? byJob.set(e.job_id, []).get(e.job_id)!).push(e.fire_time.getTime());
  for (const [job, times] of byJob) {
    const every = typeof everySeconds === 'number' ? everySeconds : everySeconds.get(job)!;
    for (let i = 1; i < times.length; i++) gaps += Math.max(0, Math.round((times[i] - times[i - 1]) / (every * 1000)) - 1);
  }
  const v: Verdict = {
    executions: execs.length,
    duplicates: dup[0].n,
    gaps,
    unfinished: execs.filter((e) => e.status === 'queued' || e.status === 'running').length,
    notSucceeded: execs.filter((e) => e.status !== 'succeeded' && e.status !== 'queued' && e.status !== 'running').length,
    rerunsWithoutTakeover: [],
    rerunsBeyondTakeovers: [],
    neverRun: 0,
    takeovers: 0,
    allowedReruns: 0,
  };
  for (const e of execs) {
    const takeovers = (e.attempts ?? []).filter((a: any) => a?.error?.code === 'lease_expired').length;
    v.takeovers += takeovers;
    let extra = 0;
    for (let s = 1; s <= steps; s++) {
      const runs = c.counter.count(e.id, `s${s}`);
      if (e.status === 'succeeded' && runs === 0) v.neverRun++;
      if (runs > 1) {
        extra += runs - 1;
        if (takeovers === 0) v.rerunsWithoutTakeover.push({ execution: e.id, step: `s${s}`, runs });
      }
    }
    if (takeovers > 0) v.allowedReruns += extra;
    if (takeovers > 0 && extra > takeovers) v.rerunsBeyondTakeovers.push({ execution: e.id, extra, takeovers });
  }
  return v;
}

/** Lag (ms) from fire time to the first step's start, by fire time, for first attempts. */
export async function lags(c: Cluster, jobIds: string[]): Promise<{ fire: number; lag: number }[]> {
  const rows = await c.query<{ fire: Date; started: Date }>(
    `SELECT e.fire_time AS fire, r.started_at AS started FROM executions e JOIN step_runs r ON r.execution_id = e.id AND r.position = 0
     WHERE e.job_id = ANY($1::uuid[]) AND e.attempt = 1 AND r.started_at IS NOT NULL`,
    [jobIds],
  );
  return rows.map((r) => ({ fire: r.fire.getTime(), lag: r.started.getTime() - r.fire.getTime() }));
}
