import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { forEachBlobStore, openBlobHarness, type BlobHarness, type BlobKind } from '../helpers/blob-stores.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { generateSigningKeyPair, signModuleBytes } from '../../src/modules/signatures.ts';

const fixture = (p: string) => readFileSync(new URL(`../../fixtures/wasm/${p}`, import.meta.url));
const echo = fixture('echo/echo.wasm');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The app's blob store settings for one store kind, and a second handle on the same store (to tamper with it). */
async function blobSetup(kind: BlobKind): Promise<{ env: Record<string, string>; store: BlobStore; close(): Promise<void> }> {
  if (kind === 'fs') {
    const dir = mkdtempSync(join(tmpdir(), 'vecron-modules-'));
    return { env: { VECRON_BLOB_DIR: dir }, store: new FsBlobStore(dir), close: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const h: BlobHarness = await openBlobHarness('s3');
  const s = h.s3!.settings;
  return {
    env: {
      VECRON_S3_ENDPOINT: s.endpoint ?? '',
      VECRON_S3_BUCKET: s.bucket,
      VECRON_S3_REGION: s.region,
      VECRON_S3_ACCESS_KEY_ID: s.accessKeyId ?? '',
      VECRON_S3_SECRET_ACCESS_KEY: s.secretAccessKey ?? '',
      VECRON_S3_FORCE_PATH_STYLE: 'true',
    },
    store: h.store,
    close: () => h.close(),
  };
}

interface UploadFields {
  name?: string;
  version?: string;
  author?: string;
  description?: string;
  signature?: string;
  [k: string]: string | undefined;
}

forEachBlobStore('module registry API', (kind) => {
  let t: TestApp;
  let blobs: Awaited<ReturnType<typeof blobSetup>>;
  let seq = 0;

  async function upload(bytes: Uint8Array | null, fields: UploadFields, token?: string): Promise<{ status: number; body: any }> {
    const form = new FormData();
    if (bytes) form.set('file', new Blob([bytes]), 'module.wasm');
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.set(k, v);
    const res = await fetch(`${t.url}/api/v1/wasm/modules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token ?? t.adminToken}` },
      body: form,
    });
    return { status: res.status, body: await res.json() };
  }
  const fresh = (prefix = 'mod') => `${prefix}-${kind}-${++seq}`;

  before(async () => {
    blobs = await blobSetup(kind);
    t = await startTestApp('pglite', { ...blobs.env, VECRON_WASM_MAX_MODULE_BYTES: String(4 * 1024 * 1024), VECRON_WASM_MAX_MEMORY_MB: '64' });
  });
  after(async () => {
    await t?.close();
    await blobs?.close();
  });

  it('uploads a module: 201 with the seed fields, the bytes stored at wasm-modules/{id}.wasm, the hash their SHA-256', async () => {
    const name = fresh('echo');
    const r = await upload(echo, { name, version: '1.0.0', author: 'team-a', description: 'returns its input' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const m = r.body;
    assert.match(m.id, /^[0-9a-f-]{36}$/);
    assert.equal(m.name, name);
    assert.equal(m.version, '1.0.0');
    assert.equal(m.minio_path, `wasm-modules/${m.id}.wasm`);
    assert.equal(m.hash, sha256(echo));
    assert.equal(m.size_bytes, echo.length);
    assert.ok(!Number.isNaN(Date.parse(m.created_at)));
    assert.equal(m.signed, false);
    assert.deepEqual(await blobs.store.get(m.minio_path), echo);
  });

  it('refuses a duplicate name and version with 409, and keeps the first', async () => {
    const name = fresh('dup');
    const first = await upload(echo, { name, version: '2.0.0', author: 'team-a' });
    assert.equal(first.status, 201);
    const again = await upload(fixture('trap/trap.wasm'), { name, version: '2.0.0', author: 'team-a' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'conflict');
    assert.match(again.body.error.message, new RegExp(`${name}.*2\\.0\\.0`));
    const got = await t.api('GET', `/api/v1/wasm/modules/${name}@2.0.0`);
    assert.equal(got.body.hash, sha256(echo));
  });

  it('refuses bad uploads with a clear 4xx and stores nothing', async () => {
    const cases: { what: string; bytes: Uint8Array | null; fields?: UploadFields; status: number; code: string; message: RegExp }[] = [
      {
        what: 'broken binary',
        bytes: Buffer.from('this is not wasm at all'),
        status: 400,
        code: 'invalid_module',
        message: /not a valid WebAssembly module.*magic/,
      },
      { what: 'truncated binary', bytes: echo.subarray(0, echo.length - 7), status: 400, code: 'invalid_module', message: /not a valid WebAssembly module/ },
      { what: 'foreign import', bytes: fixture('foreign-import/foreign-import.wasm'), status: 400, code: 'import_not_allowed', message: /evil\.system/ },
      {
        what: 'no usable entry',
        bytes: fixture('missing-exports/missing-exports.wasm'),
        status: 400,
        code: 'invalid_module',
        message: /no usable entry function.*alloc/,
      },
      {
        what: 'memory over the limit',
        bytes: fixture('memory-bomb/big-initial.wasm'),
        status: 400,
        code: 'invalid_module',
        message: /initial memory of 2048 pages.*64 MiB/,
      },
      // issue 11: tables counted all together, and modules past the engine's limits once metered,
      // refused in terms of the uploaded module (its function, count, limit, byte offsets)
      {
        what: 'tables over the limit',
        bytes: fixture('sandbox-holes/big-tables.wasm'),
        status: 400,
        code: 'invalid_module',
        message: /64 tables declare 320000000 initial entries.*VECRON_WASM_MAX_TABLE_ELEMENTS.*byte offset \d+/,
      },
      {
        what: 'locals at the engine limit',
        bytes: fixture('engine-limits/locals-50000.wasm'),
        status: 400,
        code: 'invalid_module',
        message: /function #1 \('run'\) has 50000 locals.*byte offset \d+.*limit is 50000/,
      },
      {
        what: 'too large',
        bytes: Buffer.concat([echo, Buffer.alloc(5 * 1024 * 1024)]),
        status: 413,
        code: 'payload_too_large',
        message: /VECRON_WASM_MAX_MODULE_BYTES/,
      },
      { what: 'no file', bytes: null, status: 400, code: 'validation_failed', message: /'file'/ },
      { what: 'bad version', bytes: echo, fields: { version: 'one' }, status: 400, code: 'validation_failed', message: /version/ },
      {
        what: 'version v1',
        bytes: echo,
        fields: { version: 'v1' },
        status: 400,
        code: 'validation_failed',
        message: /version: must be a semantic version.*without a leading 'v'/,
      },
      {
        what: 'version 1.0',
        bytes: echo,
        fields: { version: '1.0' },
        status: 400,
        code: 'validation_failed',
        message: /version: .*all three numbers are required, e\.g\. '1\.0\.0'/,
      },
      { what: 'version 01.0.0', bytes: echo, fields: { version: '01.0.0' }, status: 400, code: 'validation_failed', message: /version: .*leading zeros/ },
      {
        what: 'version with build metadata',
        bytes: echo,
        fields: { version: '1.0.0+build.5' },
        status: 400,
        code: 'validation_failed',
        message: /version: .*build metadata/,
      },
      { what: 'bad name', bytes: echo, fields: { name: 'has space' }, status: 400, code: 'validation_failed', message: /name/ },
      { what: 'no author', bytes: echo, fields: { author: '' }, status: 400, code: 'validation_failed', message: /author/ },
      { what: 'unknown field', bytes: echo, fields: { colour: 'blue' }, status: 400, code: 'validation_failed', message: /unknown field 'colour'/ },
      { what: 'malformed signature', bytes: echo, fields: { signature: 'abc' }, status: 400, code: 'invalid_signature', message: /128 hex digits/ },
    ];
    const before = (await t.api('GET', '/api/v1/wasm/modules?limit=200')).body.total;
    for (const c of cases) {
      const r = await upload(c.bytes, { name: fresh('bad'), version: '1.0.0', author: 'team-a', ...c.fields });
      assert.equal(r.status, c.status, `${c.what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, c.code, c.what);
      assert.match(r.body.error.message, c.message, c.what);
    }
    const json = await t.api('POST', '/api/v1/wasm/modules', { body: { name: 'x' } });
    assert.equal(json.status, 415);
    assert.equal(json.body.error.code, 'unsupported_media_type');
    assert.equal((await t.api('GET', '/api/v1/wasm/modules?limit=200')).body.total, before);
    const stored = await blobs.store.list('wasm-modules/');
    assert.equal(stored.length, before, 'no blob left behind by a refused upload');
  });

  it('lists with search and pagination, and shows details by id, name@version and name@latest', async () => {
    const name = fresh('listed');
    const v1 = (await upload(echo, { name, version: '1.2.0', author: 'team-b', description: 'Customer tiers' })).body;
    const v2 = (await upload(echo, { name, version: '1.10.0', author: 'team-b' })).body;
    const v0 = (await upload(echo, { name, version: '1.10.0-rc.1', author: 'team-b' })).body;
    const found = await t.api('GET', `/api/v1/wasm/modules?search=${name}&limit=2&page=1`);
    assert.equal(found.status, 200);
    assert.equal(found.body.total, 3);
    assert.equal(found.body.items.length, 2);
    const page2 = await t.api('GET', `/api/v1/wasm/modules?search=${name}&limit=2&page=2`);
    assert.equal(page2.body.items.length, 1);
    const ids = [...found.body.items, ...page2.body.items].map((m: any) => m.id).sort();
    assert.deepEqual(ids, [v0.id, v1.id, v2.id].sort());
    assert.equal((await t.api('GET', '/api/v1/wasm/modules?search=customer%20TIERS')).body.items[0].id, v1.id);

    const d = await t.api('GET', `/api/v1/wasm/modules/${v1.id}`);
    assert.equal(d.status, 200);
    assert.equal(d.body.name, name);
    assert.deepEqual(d.body.permissions, []);
    assert.deepEqual(d.body.stats, { runs: 0, failures: 0, avg_duration_ms: null, avg_fuel_consumed: null, max_memory_used_bytes: null, last_run_at: null });
    assert.deepEqual(d.body.imports, []);
    assert.ok(d.body.exports.some((e: any) => e.name === 'echo' && e.kind === 'function'));
    assert.ok(d.body.function_count >= 2);
    assert.deepEqual(d.body.entries, [
      { name: 'echo', form: 'A' },
      { name: 'echo_copy', form: 'A' },
      { name: 'echo_cstr', form: 'B' },
    ]);
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${name}@1.2.0`)).body.id, v1.id);
    // latest = highest semantic version: 1.10.0 > 1.10.0-rc.1 > 1.2.0
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${name}@latest`)).body.id, v2.id);
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${name}`)).body.id, v2.id);
    // a pre-release above every release is not latest: it runs where it is named exactly
    const rc = (await upload(echo, { name, version: '2.0.0-rc.1', author: 'team-b' })).body;
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${name}@latest`)).body.id, v2.id);
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${name}@2.0.0-rc.1`)).body.id, rc.id);
    // a name with only pre-releases: the highest of them (rc.10 > rc.9: numeric identifiers)
    const only = fresh('prerelease-only');
    await upload(echo, { name: only, version: '1.0.0-rc.9', author: 'team-b' });
    const rc10 = (await upload(echo, { name: only, version: '1.0.0-rc.10', author: 'team-b' })).body;
    await upload(echo, { name: only, version: '1.0.0-beta.2', author: 'team-b' });
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${only}@latest`)).body.id, rc10.id);
    const missing = await t.api('GET', `/api/v1/wasm/modules/${name}@9.9.9`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, new RegExp(`${name}@9\\.9\\.9`));
    assert.equal((await t.api('GET', '/api/v1/wasm/modules/00000000-0000-4000-8000-000000000000')).status, 404);
  });

  it('downloads the identical bytes with the hash in a header', async () => {
    const bytes = fixture('customer-tiers/customer-tiers.wasm');
    const m = (await upload(bytes, { name: fresh('dl'), version: '1.0.0', author: 'team-a' })).body;
    const res = await fetch(`${t.url}/api/v1/wasm/modules/${m.id}/download`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/wasm');
    assert.equal(res.headers.get('x-vecron-module-sha256'), sha256(bytes));
    const got = Buffer.from(await res.arrayBuffer());
    assert.ok(got.equals(bytes), 'downloaded bytes differ from the upload');
  });

  it('replaces (PUT) and adds (POST) permissions; admin only; bad ones are refused naming the path', async () => {
    const m = (await upload(echo, { name: fresh('perm'), version: '1.0.0', author: 'team-a' })).body;
    const put = await t.api('PUT', `/api/v1/wasm/modules/${m.id}/permissions`, {
      body: {
        permissions: [
          { type: 'http:read', resource_pattern: 'https://api.example.com/**' },
          { type: 'database:write', resource_pattern: 'customer_*' },
        ],
      },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(
      put.body.permissions.map((p: any) => [p.type, p.resource_pattern]),
      [
        ['http:read', 'https://api.example.com/**'],
        ['database:write', 'customer_*'],
      ],
    );
    const add = await t.api('POST', `/api/v1/wasm/modules/${m.id}/permissions`, {
      body: { permissions: [{ type: 'file:read' }, { type: 'http:read', resource_pattern: 'https://api.example.com/**' }] },
    });
    assert.deepEqual(
      add.body.permissions.map((p: any) => [p.type, p.resource_pattern]),
      [
        ['http:read', 'https://api.example.com/**'],
        ['database:write', 'customer_*'],
        ['file:read', null],
      ],
    );
    const replaced = await t.api('PUT', `/api/v1/wasm/modules/${m.id}/permissions`, {
      body: { permissions: [{ type: 'network:external', resource_pattern: '*.example.com' }] },
    });
    assert.deepEqual(
      replaced.body.permissions.map((p: any) => p.type),
      ['network:external'],
    );
    assert.deepEqual(
      (await t.api('GET', `/api/v1/wasm/modules/${m.id}`)).body.permissions.map((p: any) => p.resource_pattern),
      ['*.example.com'],
    );

    const bad = await t.api('PUT', `/api/v1/wasm/modules/${m.id}/permissions`, { body: { permissions: [{ type: 'shell:exec' }] } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /permissions\[0\]\.type/);
    const badGlob = await t.api('PUT', `/api/v1/wasm/modules/${m.id}/permissions`, { body: { permissions: [{ type: 'file:read', resource_pattern: '  ' }] } });
    assert.equal(badGlob.status, 400);
    for (const role of ['operator', 'viewer'] as const) {
      const r = await t.api('PUT', `/api/v1/wasm/modules/${m.id}/permissions`, { token: await t.token(role), body: { permissions: [] } });
      assert.equal(r.status, 403, role);
    }
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${m.id}`)).body.permissions.length, 1);
  });

  it("verifies Ed25519 signatures against the author's registered keys: forged, altered, unknown-author and revoked-key uploads are refused", async () => {
    const alice = generateSigningKeyPair();
    const mallory = generateSigningKeyPair();
    const author = fresh('alice');
    const operator = await t.token('operator');
    const asOperator = await t.api('POST', '/api/v1/wasm/keys', { token: operator, body: { author, public_key: alice.publicKeyHex } });
    assert.equal(asOperator.status, 403, 'only admins register keys');
    const reg = await t.api('POST', '/api/v1/wasm/keys', { body: { author, public_key: alice.publicKeyPem, description: 'laptop' } });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal(reg.body.public_key, alice.publicKeyHex);
    assert.equal((await t.api('POST', '/api/v1/wasm/keys', { body: { author, public_key: alice.publicKeyHex } })).status, 409);
    assert.equal((await t.api('POST', '/api/v1/wasm/keys', { body: { author, public_key: 'zz' } })).status, 400);

    const good = await upload(echo, { name: fresh('signed'), version: '1.0.0', author, signature: signModuleBytes(echo, alice.privateKeyPem) }, operator);
    assert.equal(good.status, 201, JSON.stringify(good.body));
    assert.equal(good.body.signed, true);
    assert.equal(good.body.signed_by_key, reg.body.id);

    const forged = await upload(echo, { name: fresh('forged'), version: '1.0.0', author, signature: signModuleBytes(echo, mallory.privateKeyPem) });
    assert.equal(forged.status, 400);
    assert.equal(forged.body.error.code, 'invalid_signature');
    assert.match(forged.body.error.message, /does not verify/);
    const altered = Buffer.from(echo);
    altered[altered.length - 1] ^= 1;
    const alteredUp = await upload(altered, { name: fresh('altered'), version: '1.0.0', author, signature: signModuleBytes(echo, alice.privateKeyPem) });
    assert.equal(alteredUp.status, 400);
    assert.equal(alteredUp.body.error.code, 'invalid_signature');
    const stranger = await upload(echo, {
      name: fresh('stranger'),
      version: '1.0.0',
      author: 'nobody-registered',
      signature: signModuleBytes(echo, alice.privateKeyPem),
    });
    assert.equal(stranger.status, 400);
    assert.match(stranger.body.error.message, /no trusted public key is registered for author 'nobody-registered'/);

    const listed = await t.api('GET', `/api/v1/wasm/keys?author=${author}`);
    assert.deepEqual(
      listed.body.items.map((k: any) => k.id),
      [reg.body.id],
    );
    const revoked = await t.api('DELETE', `/api/v1/wasm/keys/${reg.body.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revoked_at);
    const afterRevoke = await upload(echo, { name: fresh('late'), version: '1.0.0', author, signature: signModuleBytes(echo, alice.privateKeyPem) });
    assert.equal(afterRevoke.status, 400);
    assert.match(afterRevoke.body.error.message, /no trusted public key/);
    assert.equal((await t.api('GET', `/api/v1/wasm/keys?author=${author}`)).body.items.length, 0);
    assert.equal((await t.api('GET', `/api/v1/wasm/keys?author=${author}&include_revoked=true`)).body.items.length, 1);
  });

  it('refuses a blob altered after upload when it is loaded (and on download), with an audit alert and a metric', async () => {
    const m = (await upload(echo, { name: fresh('tamper'), version: '1.0.0', author: 'team-a' })).body;
    const loaded = await t.app.modules.loadForRun(m.id);
    assert.ok(loaded.bytes.equals(echo));
    const evil = Buffer.from(echo);
    evil[evil.length - 2] ^= 0xff;
    await blobs.store.put(m.minio_path, evil);

    await assert.rejects(t.app.modules.loadForRun(`${m.name}@1.0.0`, { execution_id: 'e-1', step_id: 's-1' }), (err: any) => {
      assert.equal(err.code, 'integrity_check_failed');
      assert.match(err.message, new RegExp(`${m.name}@1\\.0\\.0.*${sha256(evil)}.*${m.hash}`));
      return true;
    });
    const dl = await t.api('GET', `/api/v1/wasm/modules/${m.id}/download`);
    assert.equal(dl.status, 500);
    assert.equal(dl.body.error.code, 'integrity_check_failed');

    const audit = await t.api('GET', `/api/v1/audit?action=wasm.module.integrity_failure&limit=50`);
    const alerts = audit.body.items.filter((a: any) => a.resource_id === m.id);
    assert.equal(alerts.length, 2);
    assert.equal(alerts[0].outcome, 'alert');
    assert.ok(alerts.some((a: any) => a.details.execution_id === 'e-1' && a.details.actual === sha256(evil) && a.details.expected === m.hash));
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    assert.match(metrics, /vecron_security_alerts_total\{kind="module_integrity"\} 2/);
    assert.match(metrics, /vecron_wasm_module_loads_total\{result="refused"\} 2/);
  });

  it('deletes a module (rows and blob), refused with 409 naming the jobs while a job uses it', async () => {
    const name = fresh('del');
    const m = (await upload(echo, { name, version: '1.0.0', author: 'team-a' })).body;
    await t.api('PUT', `/api/v1/wasm/modules/${m.id}/permissions`, { body: { permissions: [{ type: 'file:read' }] } });
    const job = await t.api('POST', '/api/v1/jobs', {
      body: { name: fresh('uses'), steps: [{ id: 'transform', type: 'wasm', config: { module_id: `${name}@latest`, function_name: 'echo' } }] },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const refused = await t.api('DELETE', `/api/v1/wasm/modules/${m.id}`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, new RegExp(`'${job.body.name}' \\(steps transform\\)`));
    assert.deepEqual(
      refused.body.error.details.jobs.map((j: any) => j.id),
      [job.body.id],
    );
    assert.deepEqual(
      (await t.api('GET', `/api/v1/wasm/modules/${m.id}`)).body.used_by.map((j: any) => j.name),
      [job.body.name],
    );

    assert.equal((await t.api('DELETE', `/api/v1/jobs/${job.body.id}`)).status, 204);
    const viewer = await t.token('viewer');
    assert.equal((await t.api('DELETE', `/api/v1/wasm/modules/${m.id}`, { token: viewer })).status, 403);
    const del = await t.api('DELETE', `/api/v1/wasm/modules/${m.id}`);
    assert.equal(del.status, 204);
    assert.equal((await t.api('GET', `/api/v1/wasm/modules/${m.id}`)).status, 404);
    assert.equal(await blobs.store.stat(m.minio_path), null);
    // The name and version are free again.
    assert.equal((await upload(echo, { name, version: '1.0.0', author: 'team-a' })).status, 201);
  });

  it('records every mutating call in the audit log with the caller', async () => {
    const operator = await t.token('operator', 'olga');
    const m = (await upload(echo, { name: fresh('audited'), version: '1.0.0', author: 'team-a' }, operator)).body;
    await t.api('POST', `/api/v1/wasm/modules/${m.id}/permissions`, { body: { permissions: [{ type: 'http:read' }] } });
    await upload(Buffer.from('junk'), { name: fresh('audited'), version: '1.0.0', author: 'team-a' }, operator);
    await t.api('DELETE', `/api/v1/wasm/modules/${m.id}`, { token: operator });
    const log = (await t.api('GET', '/api/v1/audit?limit=200')).body.items;
    const mine = log.filter((a: any) => a.resource_id === m.id).map((a: any) => [a.action, a.actor.name, a.outcome]);
    assert.deepEqual(mine.reverse(), [
      ['wasm.module.upload', 'olga', 'success'],
      ['wasm.module.permissions.add', 'test-admin', 'success'],
      ['wasm.module.delete', 'olga', 'success'],
    ]);
    const refused = log.find((a: any) => a.action === 'wasm.module.upload' && a.outcome === 'failure');
    assert.equal(refused.actor.name, 'olga');
    assert.equal(refused.status_code, 400);
  });
});

describe('module registry: VECRON_REQUIRE_SIGNED_MODULES=true', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('pglite', { VECRON_REQUIRE_SIGNED_MODULES: 'true' });
  });
  after(async () => {
    await t?.close();
  });
  it('refuses an unsigned upload, saying how to sign', async () => {
    const form = new FormData();
    form.set('file', new Blob([echo]), 'echo.wasm');
    form.set('name', 'unsigned');
    form.set('version', '1.0.0');
    form.set('author', 'team-a');
    const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
    const body: any = await res.json();
    assert.equal(res.status, 400);
    assert.equal(body.error.code, 'invalid_signature');
    assert.match(body.error.message, /only signed modules.*wasm-cli sign/);
  });
});
