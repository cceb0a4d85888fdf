/**
 * The real `vecron` CLI, run as a child process on an embedded (PGlite) data directory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settings } from '../../src/config/index.ts';
import { freePort } from '../helpers/ports.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = ['--import', 'tsx', 'src/cli/vecron.ts'];
const BOOTSTRAP = 'readme-bootstrap-token-0123456789';

/** The environment without any vecron setting of the caller, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const ours = new Set(Object.values(settings).map((s) => s.env));
  for (const [k, v] of Object.entries(process.env)) if (!ours.has(k) && !k.startsWith('VECRON_')) env[k] = v;
  return { ...env, VECRON_LOG_LEVEL: 'warn', ...extra };
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `vecron args...` to completion (bounded: killed after 60 s). */
function vecron(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Resolves with the exit of `child`, or null if it has not exited within `ms`. */
function exitOf(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

describe('vecron CLI', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'vecron-cli-'));
  const env = { VECRON_DATA_DIR: dataDir };
  let ciToken = '';
  let server: ChildProcess | null = null;
  let serverOutput = '';

  after(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await exitOf(server, 10_000);
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('token create --role operator --name ci prints a vcr_ token and exits 0', async () => {
    const r = await vecron(['token', 'create', '--role', 'operator', '--name', 'ci'], env);
    assert.equal(r.code, 0, r.stderr);
    ciToken = r.stdout.trim();
    assert.match(ciToken, /^vcr_[A-Za-z0-9_-]{43}$/, `stdout is the bare token: ${JSON.stringify(r.stdout)}`);
    assert.equal(r.stdout, `${ciToken}\n`, 'nothing else on stdout, so it can be captured');
    assert.match(r.stderr, /operator token 'ci'/);
    assert.ok(existsSync(join(dataDir, 'pglite')), 'the embedded database lives in VECRON_DATA_DIR');
  });

  it('token create --role bogus exits non-zero naming the allowed roles', async () => {
    const r = await vecron(['token', 'create', '--role', 'bogus', '--name', 'nope'], env);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /bogus/);
    for (const role of ['viewer', 'operator', 'admin']) assert.ok(r.stderr.includes(role), `names ${role}: ${r.stderr}`);
  });

  it('token list shows the name and role, never the value', async () => {
    const r = await vecron(['token', 'list'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, `only the ci token (the bogus one was not created): ${r.stdout}`);
    assert.match(lines[0], /^[0-9a-f-]{36}\s+operator\s+ci$/); // no part of the token value
    assert.ok(!r.stdout.includes(ciToken), 'the token value is not printed');
  });

  it('config prints the settings table', async () => {
    const r = await vecron(['config'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith('| Variable | Default | Meaning |\n| --- | --- | --- |\n'));
    for (const s of Object.values(settings)) assert.ok(r.stdout.includes(`| \`${s.env}\` |`), `lists ${s.env}`);
  });

  it('a bad setting makes commands exit 1 with a message naming the variable', async () => {
    for (const args of [['token', 'list'], ['start']]) {
      const r = await vecron(args, { ...env, PORT: 'abc', VECRON_WORKER_CONCURRENCY: '0' });
      assert.equal(r.code, 1, `vecron ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /PORT must be a whole number, got 'abc'/);
      assert.match(r.stderr, /VECRON_WORKER_CONCURRENCY/);
      assert.ok(!r.stderr.includes('    at '), 'a message, not a stack trace');
    }
  });

  describe('the README flow against `vecron start`', () => {
    let base = '';
    const call = async (method: string, path: string, body?: unknown, token = BOOTSTRAP) => {
      const res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      server = spawn(process.execPath, [...CLI, 'start'], {
        cwd: ROOT,
        env: cleanEnv({
          ...env,
          PORT: String(port),
          HOST: '127.0.0.1',
          VECRON_BOOTSTRAP_TOKEN: BOOTSTRAP,
          VECRON_SHUTDOWN_GRACE_SECONDS: '5',
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server.stdout!.on('data', (d) => (serverOutput += d));
      server.stderr!.on('data', (d) => (serverOutput += d));
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (server.exitCode !== null) assert.fail(`vecron start exited with ${server.exitCode}: ${serverOutput}`);
        const ok = await fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) break;
        if (Date.now() > deadline) assert.fail(`vecron start did not answer /health within 60 s: ${serverOutput}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    });

    it('serves /health and says where it listens', async () => {
      const h = await fetch(`${base}/health`);
      assert.equal(h.status, 200);
      const body = (await h.json()) as any;
      assert.equal(body.status, 'ok');
      assert.deepEqual([body.database.kind, body.database.status], ['pglite', 'ok']);
      assert.ok(serverOutput.includes(`listening on ${base}`), serverOutput);
    });

    it('creates, lists, fetches, triggers and deletes a job with the bootstrap token', async () => {
      const created = await call('POST', '/api/v1/jobs', {
        name: 'ping',
        schedule: { type: 'cron', expression: '*/30 * * * * *' },
        // Not vecron's own /health: the egress policy refuses a job calling vecron's own API.
        steps: [{ id: 'ping', type: 'http', config: { url: 'https://example.com/' } }],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id;
      assert.deepEqual(created.body.schedule, { type: 'cron', expression: '*/30 * * * * *', timezone: 'Asia/Ho_Chi_Minh' });
      assert.equal(created.body.created_by, 'bootstrap');

      const list = await call('GET', '/api/v1/jobs');
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.items.map((j: any) => j.name),
        ['ping'],
      );
      assert.equal(list.body.total, 1);

      const got = await call('GET', `/api/v1/jobs/${id}`);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, created.body);

      // the token made by the CLI before the server started works against it
      const asCi = await call('GET', `/api/v1/jobs/${id}`, undefined, ciToken);
      assert.equal(asCi.status, 200);

      const trig = await call('POST', `/api/v1/jobs/${id}/trigger`);
      assert.equal(trig.status, 202, JSON.stringify(trig.body));
      const ex = await call('GET', `/api/v1/executions/${trig.body.execution_id}`);
      assert.equal(ex.status, 200);
      assert.equal(ex.body.job_id, id);
      assert.equal(ex.body.trigger.user, 'bootstrap');
      assert.deepEqual(
        ex.body.steps.map((s: any) => s.id),
        ['ping'],
      );

      assert.equal((await call('DELETE', `/api/v1/jobs/${id}`)).status, 204);
      assert.equal((await call('GET', `/api/v1/jobs/${id}`)).status, 404);
    });

    it('a second process cannot open the embedded database while the server runs', async () => {
      const r = await vecron(['token', 'list'], env);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /embedded database in .* is in use by process (\d+)/);
      assert.equal(Number(/in use by process (\d+)/.exec(r.stderr)![1]), server!.pid, 'names the server process');
      assert.match(r.stderr, /DATABASE_URL/, 'says how to share it');
      assert.match(
        r.stderr,
        /create tokens through its API with an admin token: curl -X POST http:\/\/127\.0\.0\.1:\d+\/api\/v1\/tokens/,
        'says how to make tokens meanwhile',
      );
      assert.ok(!r.stderr.includes('    at '), 'a message, not a stack trace');
      assert.equal((await fetch(`${base}/health`)).status, 200, 'the server is unaffected');
    });

    it('SIGTERM stops the server with exit code 0 and releases the data directory', async () => {
      server!.kill('SIGTERM');
      const exit = await exitOf(server!, 30_000);
      assert.ok(exit, `vecron start did not exit within 30 s of SIGTERM: ${serverOutput}`);
      assert.deepEqual(exit, { code: 0, signal: null }, serverOutput);
      assert.equal(existsSync(join(dataDir, 'vecron.pid')), false, 'the lock file is removed');

      const r = await vecron(['token', 'list'], env);
      assert.equal(r.code, 0, r.stderr);
      const names = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).pop());
      assert.deepEqual(names.sort(), ['bootstrap', 'ci']);
    });
  });

  describe('a signal while the server is still starting', () => {
    // Before: the handlers went in after start, so an early SIGTERM killed the process by signal.
    for (const delayMs of [300, 2000]) {
      it(`SIGTERM ${delayMs} ms after Node booted exits with code 0 and leaves no lock file`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'vecron-cli-early-'));
        try {
          // bin/vecron.js, what operators run: its handlers go in before tsx and the modules load.
          const child = spawn(process.execPath, ['--import', './test/fixtures/announce-boot.mjs', 'bin/vecron.js', 'start'], {
            cwd: ROOT,
            env: cleanEnv({ VECRON_DATA_DIR: dir, VECRON_PORT: String(await freePort()), VECRON_HOST: '127.0.0.1' }),
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          child.stdout!.on('data', (d) => (out += d));
          const booted = new Promise<void>((resolve) =>
            child.stderr!.on('data', (d) => {
              out += d;
              if (out.includes('node-booted')) resolve();
            }),
          );
          await booted;
          await new Promise((r) => setTimeout(r, delayMs));
          child.kill('SIGTERM');
          const exit = await exitOf(child, 60_000);
          if (!exit) child.kill('SIGKILL');
          assert.deepEqual(exit, { code: 0, signal: null }, out);
          assert.equal(existsSync(join(dir, 'vecron.pid')), false, 'the lock file is removed');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });
});
