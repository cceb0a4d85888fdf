/**
 * A real OpenSSH server (Debian's openssh-server) for the sftp step's tests, started by the test on a
 * free loopback port with a throwaway host key, a throwaway user key and a throwaway user (created
 * with useradd, password set with chpasswd, removed on stop): SFTP only (internal-sftp), no chroot,
 * the user's home in a temporary directory.
 *
 * Needs root (sshd's privilege separation and the user). `sshdSkipReason()` says why it cannot run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from './ports.ts';

export const SSHD = '/usr/sbin/sshd';

export interface SshServer {
  host: string;
  port: number;
  user: string;
  password: string;
  /** OpenSSH private key (ed25519) whose public half is authorized. */
  privateKey: string;
  /** A key that is not authorized. */
  otherKey: string;
  /** `SHA256:…` of the host key, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** The user's home directory (absolute; remote paths are the same paths). */
  home: string;
  /** Kills the server's session processes (SIGKILL), cutting every open connection; the server keeps listening. */
  cutConnections(): void;
  stop(): Promise<void>;
}

export function sshdSkipReason(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (apt-get install openssh-server)`;
  if (process.getuid?.() !== 0) return 'the sftp tests start sshd with a throwaway user, which needs root';
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'ssh-keygen is not installed (apt-get install openssh-client)';
  }
  return null;
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vecron-test', '-f', file], { stdio: 'ignore' });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('data', () => (c.destroy(), resolve(true))); // the SSH banner
      c.once('error', () => resolve(false));
      c.setTimeout(1000, () => (c.destroy(), resolve(false)));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not answer on port ${port}: ${log()}`);
}

export async function startSshServer(): Promise<SshServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vecron-sshd-'));
  chmodSync(dir, 0o755);
  const user = `vsftp${process.pid}`.slice(0, 30);
  const password = randomBytes(12).toString('base64url');
  const home = join(dir, 'home');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'user_key'));
  keygen(join(dir, 'other_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'user_key.pub')));
  chmodSync(join(dir, 'authorized_keys'), 0o644);
  const fingerprint = execFileSync('ssh-keygen', ['-lf', join(dir, 'host_key.pub')], { encoding: 'utf8' }).split(' ')[1];

  try {
    execFileSync('userdel', [user], { stdio: 'ignore' });
  } catch {
    /* not there */
  }
  execFileSync('useradd', ['--no-create-home', '--home-dir', home, '--shell', '/bin/sh', user], { stdio: 'ignore' });
  execFileSync('chpasswd', { input: `${user}:${password}\n`, stdio: ['pipe', 'ignore', 'ignore'] });
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  mkdirSync(home);
  chownSync(home, uid, gid);

  const port = await freePort();
  const conf = join(dir, 'sshd_config');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'UsePAM no',
      'PermitRootLogin no',
      'StrictModes no',
      `AllowUsers ${user}`,
      'Subsystem sftp internal-sftp',
      'ForceCommand internal-sftp',
      'MaxStartups 50',
      'MaxAuthTries 10',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const child = spawn(SSHD, ['-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const cleanup = () => {
    try {
      execFileSync('userdel', [user], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, child, () => log);
  } catch (err) {
    child.kill('SIGKILL');
    cleanup();
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    privateKey: readFileSync(join(dir, 'user_key'), 'utf8'),
    otherKey: readFileSync(join(dir, 'other_key'), 'utf8'),
    fingerprint,
    home,
    cutConnections() {
      // The listener forks a privileged monitor per connection, which forks the user's session.
      const children = (pid: number): number[] => {
        try {
          return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
            .split('\n')
            .filter((l) => l.trim())
            .map(Number);
        } catch {
          return []; // ps exits 1 when there is none
        }
      };
      const all: number[] = [];
      const walk = (pid: number) => children(pid).forEach((c) => (all.push(c), walk(c)));
      walk(child.pid!);
      for (const pid of all) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      cleanup();
    },
  };
}

/** Makes `path` (under the server's home) owned by its user, so uploads can write there. */
export function giveToUser(server: SshServer, path: string): void {
  execFileSync('chown', ['-R', `${server.user}:`, path]);
}

/** Registers `fn`'s tests, or one skipped test with the reason when sshd cannot run here. */
export function withSshd(name: string, fn: () => void): void {
  const skip = sshdSkipReason();
  if (skip) {
    test(`${name}: skipped, ${skip}`, { skip }, () => {});
    return;
  }
  fn();
}
