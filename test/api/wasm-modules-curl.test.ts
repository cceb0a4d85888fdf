/**
 * The design study's "Deployment" section, with curl itself: upload, list, get, set permissions,
 * download (identical bytes), delete.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const run = promisify(execFile);
const wasmFile = new URL('../../fixtures/wasm/customer-tiers/customer-tiers.wasm', import.meta.url).pathname;

describe('module registry with curl, as in the design study', () => {
  let t: TestApp;
  let dir: string;
  let curl: (...args: string[]) => Promise<{ status: number; body: string }>;
  before(async () => {
    t = await startTestApp('pglite');
    dir = mkdtempSync(join(tmpdir(), 'vecron-curl-'));
    const token = await t.token('admin', 'deployer');
    curl = async (...args) => {
      const { stdout } = await run('curl', ['-sS', '-H', `Authorization: Bearer ${token}`, '-w', '\n%{http_code}', ...args]);
      const cut = stdout.lastIndexOf('\n');
      return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
    };
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('uploads, lists, gets, sets permissions, downloads the same bytes and deletes', async () => {
    const base = `${t.url}/api/v1/wasm/modules`;
    const up = await curl(
      '-X',
      'POST',
      base,
      '-F',
      `file=@${wasmFile}`,
      '-F',
      'name=customer-transformer',
      '-F',
      'version=1.0.0',
      '-F',
      'description=Transform customer data',
      '-F',
      'author=team-data',
    );
    assert.equal(up.status, 201, up.body);
    const m = JSON.parse(up.body);
    assert.deepEqual(Object.keys(m).slice(0, 7), ['id', 'name', 'version', 'minio_path', 'hash', 'size_bytes', 'created_at']);

    const list = await curl(`${base}?page=1&limit=20`);
    assert.equal(list.status, 200);
    assert.deepEqual(
      JSON.parse(list.body).items.map((x: any) => x.id),
      [m.id],
    );

    const perms = await curl(
      '-X',
      'POST',
      `${base}/${m.id}/permissions`,
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify({
        permissions: [
          { type: 'http:read', resource_pattern: 'https://api.example.com/*' },
          { type: 'database:write', resource_pattern: 'customer_analysis' },
        ],
      }),
    );
    assert.equal(perms.status, 200, perms.body);

    const got = await curl(`${base}/${m.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(
      JSON.parse(got.body).permissions.map((p: any) => `${p.type} ${p.resource_pattern}`),
      ['http:read https://api.example.com/*', 'database:write customer_analysis'],
    );

    const out = join(dir, 'downloaded.wasm');
    const dl = await curl('-o', out, `${base}/${m.id}/download`);
    assert.equal(dl.status, 200);
    assert.ok(readFileSync(out).equals(readFileSync(wasmFile)), 'downloaded bytes differ');

    const del = await curl('-X', 'DELETE', `${base}/${m.id}`);
    assert.equal(del.status, 204);
    assert.equal((await curl(`${base}/${m.id}`)).status, 404);
  });
});
