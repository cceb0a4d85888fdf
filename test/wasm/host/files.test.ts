/**
 * file_read, file_write, file_list through the dispatch, on both blob stores (directory and S3 on
 * MinIO): allowed and denied, the job's own area and the shared area, paths that are refused, the
 * size cap, and what the guest sees when the store fails.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { forEachBlobStore, openBlobHarness, type BlobHarness } from '../../helpers/blob-stores.ts';
import { caller, perm, testSession } from '../../helpers/host-session.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

forEachBlobStore('file host functions', (kind) => {
  let h: BlobHarness;
  before(async () => {
    h = await openBlobHarness(kind);
  });
  after(() => h.close());

  it('file_write then file_read round-trips text in the job area (jobs/{job_id}/...)', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:write', 'reports/**'), perm('file:read', 'reports/**')] });
    const call = caller(s);
    const w = await call('file_write', { path: 'reports/out.csv', content: 'id,tier\n1,gold\n' });
    assert.deepEqual(w, { response: { path: 'reports/out.csv', size: 15, sha256: sha('id,tier\n1,gold\n') }, target: 'reports/out.csv', outcome: 'ok' });
    assert.equal((await h.store.get(`jobs/${s.jobId}/reports/out.csv`)).toString(), 'id,tier\n1,gold\n');
    const r = await call('file_read', { path: 'reports/out.csv' });
    assert.deepEqual(r.response, { path: 'reports/out.csv', content: 'id,tier\n1,gold\n', encoding: 'utf8', size: 15 });
    assert.equal(r.outcome, 'ok');
    assert.equal(r.target, 'reports/out.csv');
    assert.deepEqual(s.denials, []);
  });

  it('bytes that are not UTF-8 go in and come out as base64', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:write'), perm('file:read')] });
    const call = caller(s);
    const bin = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41]);
    const w = await call('file_write', { path: 'bin/x.dat', content: bin.toString('base64'), encoding: 'base64' });
    assert.deepEqual(w.response, { path: 'bin/x.dat', size: 5, sha256: sha(bin) });
    const r = await call('file_read', { path: 'bin/x.dat' });
    assert.deepEqual(r.response, { path: 'bin/x.dat', content: bin.toString('base64'), encoding: 'base64', size: 5 });
    const bad = await call('file_write', { path: 'bin/y.dat', content: 'not base64!', encoding: 'base64' });
    assert.equal(bad.outcome, 'bad_request');
    assert.match((bad.response.error as any).message, /content is not valid base64/);
    const enc = await call('file_write', { path: 'bin/y.dat', content: 'x', encoding: 'latin1' });
    assert.match((enc.response.error as any).message, /encoding must be "utf8" or "base64"/);
  });

  it('a path no pattern matches is permission_denied, reported once, and nothing is written', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:write', 'reports/*.csv'), perm('file:read', 'reports/*.csv')] });
    const call = caller(s);
    const w = await call('file_write', { path: 'secrets/x.csv', content: 'x' });
    assert.equal(w.outcome, 'permission_denied');
    assert.equal(w.permission, 'file:write');
    assert.equal(w.target, 'secrets/x.csv');
    assert.deepEqual((w.response.error as any).code, 'permission_denied');
    assert.match((w.response.error as any).message, /file:write for 'secrets\/x\.csv' \(no resource pattern of the module matches\)/);
    assert.equal(await h.store.stat(`jobs/${s.jobId}/secrets/x.csv`), null);
    const r = await call('file_read', { path: 'reports/deep/x.csv' });
    assert.equal(r.outcome, 'permission_denied');
    assert.equal(r.permission, 'file:read');
    assert.deepEqual(
      s.denials.map((d) => [d.function, d.permission, d.resource]),
      [
        ['file_write', 'file:write', 'secrets/x.csv'],
        ['file_read', 'file:read', 'reports/deep/x.csv'],
      ],
    );
    // Without any file permission: the reason says so.
    const none = await caller(testSession({ blobs: h.store, permissions: [perm('file:read')] }))('file_write', { path: 'a.txt', content: '' });
    assert.match((none.response.error as any).message, /the module has no such permission/);
  });

  it('a module reads only its own job area: the same path in another job is another file', async () => {
    const a = testSession({ blobs: h.store, permissions: [perm('file:write'), perm('file:read')] });
    const b = testSession({ blobs: h.store, permissions: [perm('file:write'), perm('file:read')] });
    await caller(a)('file_write', { path: 'state.json', content: '{"job":"a"}' });
    const r = await caller(b)('file_read', { path: 'state.json' });
    assert.equal(r.outcome, 'not_found');
    assert.deepEqual(r.response, { error: { code: 'not_found', message: "no file 'state.json'" } });
    const outside = await caller(b)('file_read', { path: `jobs/${a.jobId}/state.json` });
    assert.equal(outside.outcome, 'bad_request');
    assert.match((outside.response.error as any).message, /other jobs' areas are not reachable/);
  });

  it('refuses malformed paths with bad_request before any permission check', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:write'), perm('file:read')] });
    const call = caller(s);
    const cases: [unknown, RegExp][] = [
      ['../x', /"\." or "\.\." segments/],
      ['a/../../x', /"\." or "\.\." segments/],
      ['./x', /"\." or "\.\." segments/],
      ['/etc/passwd', /no leading "\/"/],
      ['a\\b', /no backslashes/],
      ['a\u0000b', /NUL/],
      ['a//b', /empty segments/],
      ['a/', /empty segments/],
      ['', /non-empty string/],
      [42, /non-empty string/],
      ['x'.repeat(513), /at most 512 characters/],
      ['out.tmp', /\.tmp/],
      ['shared', /shared area, not a file/],
    ];
    for (const [path, message] of cases) {
      for (const fn of ['file_read', 'file_write']) {
        const a = await call(fn, { path, content: 'x' });
        assert.equal(a.outcome, 'bad_request', `${fn} ${JSON.stringify(path)}`);
        assert.match((a.response.error as any).message, message, `${fn} ${JSON.stringify(path)}`);
      }
    }
    assert.deepEqual(s.denials, [], 'a malformed path is not a denial');
    assert.deepEqual(await h.store.list(`jobs/${s.jobId}/`), []);
  });

  it('the shared area is reached only through a pattern that names it', async () => {
    await h.store.put('shared/rates/vnd.json', Buffer.from('{"usd":25000}'));
    const wide = testSession({ blobs: h.store, permissions: [perm('file:read', '**'), perm('file:read'), perm('file:write')] });
    const r1 = await caller(wide)('file_read', { path: 'shared/rates/vnd.json' });
    assert.equal(r1.outcome, 'permission_denied');
    assert.match((r1.response.error as any).message, /only through a pattern that names it/);
    const w1 = await caller(wide)('file_write', { path: 'shared/rates/vnd.json', content: 'x' });
    assert.equal(w1.outcome, 'permission_denied');
    assert.equal((await h.store.get('shared/rates/vnd.json')).toString(), '{"usd":25000}');
    const l1 = await caller(wide)('file_list', { prefix: 'shared/' });
    assert.equal(l1.outcome, 'permission_denied');
    assert.equal(wide.denials.length, 3);

    const named = testSession({ blobs: h.store, permissions: [perm('file:read', 'shared/rates/*.json')] });
    const r2 = await caller(named)('file_read', { path: 'shared/rates/vnd.json' });
    assert.deepEqual(r2.response, { path: 'shared/rates/vnd.json', content: '{"usd":25000}', encoding: 'utf8', size: 13 });
    const l2 = await caller(named)('file_list', { prefix: 'shared/rates/' });
    assert.deepEqual(
      (l2.response.files as any[]).map((f) => f.path),
      ['shared/rates/vnd.json'],
    );
    // The pattern names shared/rates only: its own job area is not granted by it.
    const own = await caller(named)('file_read', { path: 'rates/vnd.json' });
    assert.equal(own.outcome, 'permission_denied');
  });

  it('file_list shows the guest paths it may read, under the prefix, in order, with size and time', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:write'), perm('file:read', 'out/*.csv')] });
    const call = caller(s);
    for (const p of ['out/b.csv', 'out/a.csv', 'out/c.txt', 'out/sub/d.csv', 'other/e.csv']) await call('file_write', { path: p, content: p });
    const before = Date.now();
    const l = await call('file_list', { prefix: 'out/' });
    assert.equal(l.outcome, 'ok');
    assert.equal(l.target, 'out/');
    const files = l.response.files as { path: string; size: number; modified_at: string }[];
    assert.deepEqual(
      files.map((f) => [f.path, f.size]),
      [
        ['out/a.csv', 9],
        ['out/b.csv', 9],
      ],
    );
    for (const f of files) assert.ok(Math.abs(Date.parse(f.modified_at) - before) < 60_000, f.modified_at);
    assert.equal(l.response.truncated, false);
    const all = await call('file_list', {});
    assert.deepEqual(
      (all.response.files as any[]).map((f) => f.path),
      ['out/a.csv', 'out/b.csv'],
    );
    assert.deepEqual(s.denials, []);
    const none = testSession({ blobs: h.store, permissions: [perm('file:write')] });
    const refused = await caller(none)('file_list', { prefix: 'out/' });
    assert.equal(refused.outcome, 'permission_denied');
    assert.equal(none.denials.length, 1);
    const bad = await call('file_list', { prefix: '../' });
    assert.equal(bad.outcome, 'bad_request');
  });

  it('file_list stops at 1000 entries and says so', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:read')] });
    await Promise.all(Array.from({ length: 1005 }, (_, i) => h.store.put(`jobs/${s.jobId}/many/${String(i).padStart(4, '0')}.txt`, Buffer.from('x'))));
    const l = await caller(s)('file_list', { prefix: 'many/' });
    assert.equal((l.response.files as any[]).length, 1000);
    assert.equal(l.response.truncated, true);
    assert.equal((l.response.files as any[])[999].path, 'many/0999.txt');
  });

  it('a file larger than the answer limit is too_large, found out from its size', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:read'), perm('file:write')], limits: { maxResponseBytes: 1000 } });
    await h.store.put(`jobs/${s.jobId}/big.txt`, Buffer.alloc(5000, 'a'));
    const r = await caller(s)('file_read', { path: 'big.txt' });
    assert.equal(r.outcome, 'too_large');
    assert.match((r.response.error as any).message, /the file is 5000 bytes; an answer may carry at most 1000 bytes \(VECRON_WASM_HOST_MAX_RESPONSE_BYTES\)/);
    // Fits as a file, but not as escaped JSON: the dispatch's own cap.
    await h.store.put(`jobs/${s.jobId}/quotes.txt`, Buffer.alloc(900, '"'));
    const q = await caller(s)('file_read', { path: 'quotes.txt' });
    assert.equal(q.outcome, 'too_large');
    assert.match((q.response.error as any).message, /the file_read answer is \d+ bytes of JSON; the limit is 1000/);
  });

  it('a missing file is not_found', async () => {
    const s = testSession({ blobs: h.store, permissions: [perm('file:read')] });
    const r = await caller(s)('file_read', { path: `nope-${randomUUID()}.txt` });
    assert.equal(r.outcome, 'not_found');
  });
});
