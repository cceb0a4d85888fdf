/**
 * The local session (`wasm-cli test`): a directory is the job's file area, grants are checked the
 * same way, secrets and datasources resolve by name, and its limits are the server's defaults.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/index.ts';
import { createHostDispatch } from '../../../src/wasm/host/index.ts';
import { DEFAULT_HOST_LIMITS, createLocalSession } from '../../../src/wasm/host/session.ts';
import { perm } from '../../helpers/host-session.ts';

const never = new AbortController().signal;

describe('local host session', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vecron-local-files-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the files directory is the job area: writes land at DIR/<path>, shared/ stays apart', async () => {
    mkdirSync(join(dir, 'shared'), { recursive: true });
    writeFileSync(join(dir, 'shared', 'rates.json'), '{"usd":25000}');
    writeFileSync(join(dir, 'input.csv'), 'a,b\n');
    const denied: string[] = [];
    const s = createLocalSession({
      grants: [perm('file:read'), perm('file:write', 'out/**'), perm('file:read', 'shared/*.json')],
      filesDir: dir,
      onDenied: (d) => denied.push(`${d.permission} ${d.resource}`),
    });
    const call = createHostDispatch(s);
    assert.equal((await call('file_write', { path: 'out/r.txt', content: 'hello' }, never)).outcome, 'ok');
    assert.equal(readFileSync(join(dir, 'out', 'r.txt'), 'utf8'), 'hello');
    assert.equal((await call('file_read', { path: 'input.csv' }, never)).response.content, 'a,b\n');
    assert.equal((await call('file_read', { path: 'shared/rates.json' }, never)).response.content, '{"usd":25000}');
    const own = await call('file_list', { prefix: '' }, never);
    assert.deepEqual(
      (own.response.files as any[]).map((f) => f.path),
      ['input.csv', 'out/r.txt'],
    );
    const shared = await call('file_list', { prefix: 'shared/' }, never);
    assert.deepEqual(
      (shared.response.files as any[]).map((f) => f.path),
      ['shared/rates.json'],
    );
    assert.equal((await call('file_write', { path: 'input.csv', content: 'x' }, never)).outcome, 'permission_denied');
    assert.deepEqual(denied, ['file:write input.csv']);
    assert.deepEqual(
      s.denials.map((d) => d.function),
      ['file_write'],
    );
  });

  it('without a files directory a file call is unavailable, naming the option', async () => {
    const call = createHostDispatch(createLocalSession({ grants: [perm('file:read')] }));
    const a = await call('file_read', { path: 'x' }, never);
    assert.deepEqual(a.response, { error: { code: 'unavailable', message: 'no file area: give one with --files DIR' } });
  });

  it('secrets and datasources resolve by name; a secret key works under secret:use', async () => {
    const s = createLocalSession({
      grants: [perm('secret:use', 'SIGNING_KEY')],
      secrets: { SIGNING_KEY: 'k' },
      datasources: { crm: 'postgres://localhost/crm' },
    });
    assert.equal(s.variable('crm'), 'postgres://localhost/crm');
    assert.equal(s.variable('toString'), undefined);
    const a = await createHostDispatch(s)('crypto', { op: 'hmac_sha256', key_secret: 'SIGNING_KEY', data: 'x' }, never);
    assert.equal(a.outcome, 'ok');
  });

  it('its default limits are the server defaults of VECRON_WASM_HOST_*', () => {
    const c = loadConfig({});
    assert.deepEqual(DEFAULT_HOST_LIMITS, {
      maxRequestBytes: c.wasmHostMaxRequestBytes,
      maxResponseBytes: c.wasmHostMaxResponseBytes,
      maxRows: c.wasmHostMaxRows,
      maxCallMs: c.wasmHostMaxCallMs,
    });
  });
});
