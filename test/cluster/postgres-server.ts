/**
 * A PostgreSQL server of the cluster suite's own (initdb into a temp dir, a free loopback port):
 * the suite restarts it in the middle of load, which it must not do to the shared test server.
 * When run as root, the server runs as the `postgres` user (PostgreSQL refuses to run as root),
 * as scripts/services.sh does.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The newest /usr/lib/postgresql/<v>/bin with initdb, pg_ctl and postgres; null when none. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(bin, b)))) return bin;
  }
  return null;
}

const isRoot = process.getuid?.() === 0;

export class PostgresServer {
  readonly dir: string;
  readonly data: string;
  readonly url: string;
  private readonly bin: string;

  constructor(readonly port: number) {
    const bin = postgresBinDir();
    if (!bin) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql/<version>/bin (install postgresql)');
    this.bin = bin;
    this.dir = mkdtempSync(join(tmpdir(), 'vecron-cluster-pg-'));
    this.data = join(this.dir, 'data');
    this.url = `postgres://vecron@127.0.0.1:${port}/postgres`;
  }

  private command(cmd: string, args: string[]): string[] {
    return isRoot ? ['runuser', '-u', 'postgres', '--', join(this.bin, cmd), ...args] : [join(this.bin, cmd), ...args];
  }

  private run(cmd: string, args: string[]): void {
    const full = this.command(cmd, args);
    const r = spawnSync(full[0], full.slice(1), { encoding: 'utf8', cwd: this.dir });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  }

  /** Without blocking the event loop (the suite's SSE client and probes go on meanwhile). */
  private runAsync(cmd: string, args: string[]): Promise<void> {
    const full = this.command(cmd, args);
    return new Promise((resolve, reject) =>
      execFile(full[0], full.slice(1), { cwd: this.dir }, (err, stdout, stderr) =>
        err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr}${stdout}`)) : resolve(),
      ),
    );
  }

  init(): void {
    if (isRoot) {
      spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'postgres']);
      execFileSync('chown', ['postgres:', this.dir]);
    }
    chmodSync(this.dir, 0o755);
    this.run('initdb', ['-D', this.data, '-U', 'vecron', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    appendFileSync(
      join(this.data, 'postgresql.conf'),
      [
        '# --- vecron cluster suite ---',
        "listen_addresses = '127.0.0.1'",
        `port = ${this.port}`,
        `unix_socket_directories = '${this.dir}'`,
        'max_connections = 200',
        // Durable enough for a test that never loses power; restarts are what is tested.
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        "log_min_messages = 'warning'",
        '',
      ].join('\n'),
    );
  }

  start(): Promise<void> {
    return this.runAsync('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'postgres.log'), '-w', '-t', '60', '-s', 'start']);
  }

  /** Fast shutdown: open connections are terminated (57P01), as an operator's restart does. */
  stop(): Promise<void> {
    return this.runAsync('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', '-t', '60', '-s', 'stop']);
  }

  destroy(): void {
    try {
      this.run('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', '-t', '60', '-s', 'stop']);
    } catch {
      /* not running */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
