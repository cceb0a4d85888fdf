/**
 * What a guest sees when the file store fails under a host call: `upstream_error` (or `bad_request`
 * for a path that clashes with a folder), a clean answer, never a crash; the host's directory and
 * bucket stay out of the guest's message (they go to the step log).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { S3BlobStore } from '../../../src/storage/s3-store.ts';
import { caller, perm, testSession } from '../../helpers/host-session.ts';
import { s3SkipReason } from '../../helpers/blob-stores.ts';
import { startS3Server, type S3Server } from '../../helpers/s3.ts';

const all = [perm('file:read'), perm('file:write')];

describe('file host functions on a full disk (64 KB tmpfs)', () => {
  let dir: string;
  let mounted = false;
  let mountError = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vecron-host-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      mountError = String((err as { stderr?: Buffer }).stderr ?? err).trim();
    }
  });
  after(() => {
    if (mounted) execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a write that does not fit is upstream_error; the old file stays readable', async (t) => {
    if (!mounted) return t.skip(`cannot mount a tmpfs here: ${mountError}`);
    const s = testSession({ blobs: new FsBlobStore(dir), permissions: all });
    const call = caller(s);
    assert.equal((await call('file_write', { path: 'a.txt', content: 'small' })).outcome, 'ok');
    const big = await call('file_write', { path: 'a.txt', content: 'x'.repeat(200 * 1024) });
    assert.equal(big.outcome, 'upstream_error');
    assert.match((big.response.error as any).message, /^file_write 'a\.txt': the file store is unavailable or full/);
    assert.doesNotMatch((big.response.error as any).message, new RegExp(dir.replace(/[/.]/g, '\\$&')), 'the host directory is not shown to the guest');
    assert.equal(s.errors.length, 1, 'the full error went to the log');
    assert.equal((await call('file_read', { path: 'a.txt' })).response.content, 'small');
  });
});

describe('file host functions on the directory store: a file where a folder is', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vecron-host-clash-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writing a/b when a is a file (and a when a/ is a folder) is bad_request', async () => {
    const call = caller(testSession({ blobs: new FsBlobStore(dir), permissions: all }));
    assert.equal((await call('file_write', { path: 'a', content: '1' })).outcome, 'ok');
    const under = await call('file_write', { path: 'a/b', content: '2' });
    assert.equal(under.outcome, 'bad_request');
    assert.match((under.response.error as any).message, /clashes with an existing file or folder/);
    assert.equal((await call('file_write', { path: 'd/e', content: '3' })).outcome, 'ok');
    const over = await call('file_write', { path: 'd', content: '4' });
    assert.equal(over.outcome, 'bad_request');
    const read = await call('file_read', { path: 'd' });
    assert.equal(read.outcome, 'not_found', 'a folder is not a file');
  });
});

describe('file host functions on an S3 bucket that does not exist', { skip: s3SkipReason() ?? undefined }, () => {
  let server: S3Server;
  before(async () => {
    server = await startS3Server();
  });
  after(() => server.stop());

  it('every call is upstream_error, naming neither the bucket nor the endpoint', async () => {
    const store = new S3BlobStore({ ...server.settings, bucket: 'vecron-missing-bucket-for-host-tests' });
    const s = testSession({ blobs: store, permissions: all });
    const call = caller(s);
    for (const [fn, req] of [
      ['file_write', { path: 'x.txt', content: 'x' }],
      ['file_read', { path: 'x.txt' }],
      ['file_list', { prefix: '' }],
    ] as const) {
      const a = await call(fn, req);
      assert.equal(a.outcome, 'upstream_error', `${fn}: ${JSON.stringify(a.response)}`);
      assert.doesNotMatch((a.response.error as any).message, /vecron-missing-bucket|127\.0\.0\.1/);
    }
    assert.equal(s.errors.length, 3);
    store.destroy();
  });
});

describe('file host functions on a store that never answers (a loopback server that accepts and stays silent)', () => {
  let server: Server;
  const sockets = new Set<Socket>();
  let endpoint = '';
  before(async () => {
    server = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('the step deadline ends a hanging write and a hanging read with timeout; a cancel ends one with cancelled', async () => {
    const store = new S3BlobStore({ endpoint, bucket: 'silent', region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b', forcePathStyle: true });
    const s = testSession({ blobs: store, permissions: all, deadline: Date.now() + 300 });
    const call = caller(s);
    const t0 = Date.now();
    const [w, r] = await Promise.all([call('file_write', { path: 'x.txt', content: 'x' }), call('file_read', { path: 'x.txt' })]);
    assert.equal(w.outcome, 'timeout');
    assert.equal(r.outcome, 'timeout');
    assert.ok(Date.now() - t0 < 3000, `answered after ${Date.now() - t0} ms`);

    const run = new AbortController();
    const later = caller(testSession({ blobs: store, permissions: all }));
    const pending = later('file_list', { prefix: '' }, run.signal);
    setTimeout(() => run.abort(new Error('cancelled')), 100);
    const t1 = Date.now();
    assert.equal((await pending).outcome, 'cancelled');
    assert.ok(Date.now() - t1 < 3000);
    store.destroy();
  });
});
