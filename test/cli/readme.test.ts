/**
 * The README's quick start ("First steps with curl"), run literally: its shell block is taken from
 * README.md as it is and run with bash against the real server it starts, on a free port (not 8080)
 * and a temporary data directory. Only a probe is appended, to see the variables the block set.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settings } from '../../src/config/index.ts';
import { freePort } from '../helpers/ports.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The first ```bash block after the heading. */
function shellBlockAfter(markdown: string, heading: string): string {
  const at = markdown.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README.md has no heading '${heading}'`);
  const m = /\n```bash\n([\s\S]*?)\n```\n/.exec(markdown.slice(at));
  assert.ok(m, `no bash block after '${heading}'`);
  return m[1];
}

/** The environment without any vecron setting of the caller (a fresh shell), plus `extra`. */
function freshEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const ours = new Set(Object.values(settings).map((s) => s.env));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!ours.has(k) && !k.startsWith('VECRON_') && k !== 'NODE_ENV') env[k] = v;
  return { ...env, ...extra };
}

describe('README quick start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'vecron-readme-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('runs as pasted with any PORT: waits for /health, captures the ids, triggers, makes a token, deletes, stops', { timeout: 180_000 }, async () => {
    const block = shellBlockAfter(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## First steps with curl');
    const port = await freePort(2); // PORT, and PORT + 1 for the block's stand-in service
    // `wait` lets the server's shutdown (after the block's `kill %1`) finish before we look
    const script = `${block}\nwait\necho "PROBE job=$JOB_ID execution=$EXECUTION_ID status=$STATUS base=$BASE"\n`;
    const child = spawn('bash', ['-c', script], {
      cwd: ROOT,
      env: freshEnv({ PORT: String(port), VECRON_DATA_DIR: dataDir, VECRON_LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a failure cannot leave the server behind
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 150_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* the group is gone: nothing left running */
    }

    assert.equal(code, 0, out);
    const probe = /PROBE job=(\S*) execution=(\S*) status=(\S*) base=(\S*)/.exec(out);
    assert.ok(probe, out);
    const [, jobId, executionId, status, base] = probe;
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    assert.match(jobId, uuid, out);
    assert.match(executionId, uuid, out);
    assert.equal(status, 'succeeded', out);
    assert.equal(base, `http://127.0.0.1:${port}`);
    const lines = out.split('\n');
    assert.ok(lines.includes(`job ${jobId}`), out);
    assert.ok(lines.includes(jobId), `found by name: ${out}`);
    assert.ok(lines.includes(`execution ${executionId}: succeeded`), out);
    assert.ok(lines.includes('200'), `the ping step got 200 from the stand-in service: ${out}`);
    assert.ok(
      lines.some((l) => /^vcr_[A-Za-z0-9_-]{20,}$/.test(l)),
      `a new token from POST /api/v1/tokens: ${out}`,
    );
    assert.ok(lines.includes('204'), `the job was deleted: ${out}`);
  });
});
