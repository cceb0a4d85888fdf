import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { putContentAddressed, sha256Hex } from '../../src/storage/content-addressed.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { VecronError } from '../../src/errors.ts';

/** Deterministic, non-repeating-per-chunk bytes. */
function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Every file under `dir`, recursively, as relative paths. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as any[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A stream that yields `good` bytes, then fails. */
function failingStream(good: Buffer, message = 'upstream connection reset'): Readable {
  return Readable.from(
    (async function* () {
      yield good.subarray(0, good.length / 2);
      yield good.subarray(good.length / 2);
      throw new Error(message);
    })(),
  );
}

async function assertVecronError(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof VecronError, `a VecronError, got ${err}`);
    assert.equal(err.code, code);
    for (const re of patterns) assert.match(err.message, re);
    return true;
  });
}

describe('filesystem blob store', () => {
  let parent: string;
  let root: string;
  let store: FsBlobStore;

  before(() => {
    parent = mkdtempSync(join(tmpdir(), 'vecron-blobs-'));
    root = join(parent, 'store');
    store = new FsBlobStore(root);
  });
  after(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  it('put, get, stat, list and delete round trip', async () => {
    const csv = Buffer.from('id,amount\n1,100\n');
    const info = await store.put('jobs/j1/executions/e1/out.csv', csv);
    assert.equal(info.key, 'jobs/j1/executions/e1/out.csv');
    assert.equal(info.size, csv.length);
    assert.ok(info.modifiedAt instanceof Date);
    assert.deepEqual(await store.get('jobs/j1/executions/e1/out.csv'), csv);
    assert.deepEqual(await readAll(await store.getStream('jobs/j1/executions/e1/out.csv')), csv);
    assert.equal((await store.stat('jobs/j1/executions/e1/out.csv'))?.size, csv.length);
    assert.equal(await store.stat('jobs/j1/executions/e1/missing.csv'), null);

    await store.put('jobs/j1/b.txt', Buffer.from('b'));
    await store.put('jobs/j2/a.txt', Buffer.from('a'));
    await store.put('jobs/j10/a.txt', Buffer.from('x'));
    await store.put('wasm-modules/m1.wasm', Buffer.from([0, 0x61, 0x73, 0x6d]));
    const keys = async (prefix: string) => (await store.list(prefix)).map((b) => b.key);
    assert.deepEqual(await keys('jobs/'), ['jobs/j1/b.txt', 'jobs/j1/executions/e1/out.csv', 'jobs/j10/a.txt', 'jobs/j2/a.txt']);
    assert.deepEqual(await keys('jobs/j1/'), ['jobs/j1/b.txt', 'jobs/j1/executions/e1/out.csv']);
    assert.deepEqual(await keys('jobs/j1'), ['jobs/j1/b.txt', 'jobs/j1/executions/e1/out.csv', 'jobs/j10/a.txt'], 'a plain string prefix');
    assert.deepEqual(await keys('wasm-modules/'), ['wasm-modules/m1.wasm']);
    assert.deepEqual(await keys('nothing/'), []);
    assert.equal((await keys('')).length, 5);
    const listed = (await store.list('jobs/j1/')).find((b) => b.key === 'jobs/j1/b.txt')!;
    assert.equal(listed.size, 1);

    await store.put('jobs/j1/b.txt', Buffer.from('replaced'));
    assert.equal((await store.get('jobs/j1/b.txt')).toString(), 'replaced', 'put overwrites');

    await store.delete('jobs/j1/b.txt');
    assert.equal(await store.stat('jobs/j1/b.txt'), null);
    await assertVecronError(store.get('jobs/j1/b.txt'), 'not_found', /'jobs\/j1\/b\.txt'/);
    await store.delete('jobs/j1/b.txt'); // deleting what is gone is not an error
    assert.deepEqual(await keys('jobs/j1/'), ['jobs/j1/executions/e1/out.csv']);
    assert.ok(filesUnder(root).every((f) => !f.endsWith('.tmp')), 'no temporary files are left behind');
  });

  it('putStream stores a few MB without loss', async () => {
    const data = bytes(5 * 1024 * 1024 + 123, 7);
    const chunks = function* () {
      for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
    };
    const info = await store.putStream('big/upload.bin', Readable.from(chunks()));
    assert.equal(info.size, data.length);
    const back = await store.get('big/upload.bin');
    assert.equal(back.length, data.length);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
    const streamed = await readAll(await store.getStream('big/upload.bin'));
    assert.ok(streamed.equals(data));
  });

  it('rejects keys that could escape the store, on every operation', async () => {
    const outside = join(parent, 'escaped');
    for (const key of ['../escaped', 'a/../../escaped', '/etc/passwd', 'a\\b', 'a//b', 'a/', '', '.', './a', 'a/./b', 'a\0b', 'x'.repeat(1025)]) {
      const show = JSON.stringify(key).slice(0, 40);
      const ops: [string, () => Promise<unknown>][] = [
        ['put', () => store.put(key, Buffer.from('x'))],
        ['putStream', () => store.putStream(key, Readable.from([Buffer.from('x')]))],
        ['get', () => store.get(key)],
        ['getStream', () => store.getStream(key)],
        ['stat', () => store.stat(key)],
        ['delete', () => store.delete(key)],
      ];
      for (const [op, call] of ops) {
        await assert.rejects(call(), /invalid blob key/, `${op}(${show}) is rejected`);
      }
    }
    assert.equal(existsSync(outside), false, 'nothing was written outside the store');
    // names that merely contain dots are fine
    await store.put('reports/2026..q1/.hidden', Buffer.from('ok'));
    assert.equal((await store.get('reports/2026..q1/.hidden')).toString(), 'ok');
  });

  it('list() rejects a prefix that climbs out of the store instead of listing outside files', async () => {
    writeFileSync(join(parent, 'outside-secret.txt'), 'not a blob');
    for (const prefix of ['../', '../outside', 'a/../../', 'a\\..\\']) {
      let listed: string[] | null = null;
      try {
        listed = (await store.list(prefix)).map((b) => b.key);
      } catch (err) {
        assert.match(String(err), /invalid blob key/, `list(${JSON.stringify(prefix)})`);
      }
      assert.equal(listed, null, `list(${JSON.stringify(prefix)}) should be rejected, it returned ${JSON.stringify(listed)}`);
    }
  });

  it('get and getStream of a missing key reject with VecronError not_found naming the key', async () => {
    await assertVecronError(store.get('jobs/none/nothing.csv'), 'not_found', /'jobs\/none\/nothing\.csv' does not exist/);
    await assertVecronError(store.getStream('jobs/none/nothing.csv'), 'not_found', /'jobs\/none\/nothing\.csv'/);
  });

  it('a write that fails midway leaves the old content and no temporary file', async () => {
    await store.put('atomic/report.csv', Buffer.from('old content'));
    await assert.rejects(store.putStream('atomic/report.csv', failingStream(bytes(256 * 1024))), /upstream connection reset/);
    assert.equal((await store.get('atomic/report.csv')).toString(), 'old content');
    await assert.rejects(store.putStream('atomic/new.csv', failingStream(bytes(1024))), /upstream connection reset/);
    assert.equal(await store.stat('atomic/new.csv'), null, 'a failed first write leaves no blob');
    assert.deepEqual(readdirSync(join(root, 'atomic')), ['report.csv'], 'no .tmp file is left');
  });

  it('list() does not show temporary files of writes in progress', async () => {
    mkdirSync(join(root, 'inflight'), { recursive: true });
    writeFileSync(join(root, 'inflight', 'x.csv.0b3e.tmp'), 'partial');
    await store.put('inflight/done.csv', Buffer.from('done'));
    assert.deepEqual((await store.list('inflight/')).map((b) => b.key), ['inflight/done.csv']);
  });

  it('content-addressed put stores identical bytes once, under their SHA-256', async () => {
    let puts = 0;
    const counting: BlobStore = Object.assign(Object.create(store), {
      put: (key: string, data: Buffer) => {
        puts++;
        return store.put(key, data);
      },
    });
    const data = bytes(10_000, 3);
    const hash = createHash('sha256').update(data).digest('hex');
    const a = await putContentAddressed(counting, data);
    const b = await putContentAddressed(counting, Buffer.from(data));
    assert.deepEqual(a, { key: `cas/${hash.slice(0, 2)}/${hash}`, hash });
    assert.deepEqual(b, a);
    assert.equal(puts, 1, 'the second put of the same bytes writes nothing');
    assert.equal(sha256Hex(data), hash);
    assert.ok((await store.get(a.key)).equals(data));

    const other = await putContentAddressed(counting, bytes(10_000, 4));
    assert.notEqual(other.key, a.key);
    assert.equal(puts, 2);
    assert.deepEqual((await store.list('cas/')).map((x) => x.key).sort(), [a.key, other.key].sort());
  });
});

describe('filesystem blob store on a full disk (64 KB tmpfs)', () => {
  let dir: string;
  let mounted = false;
  let mountError = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vecron-full-'));
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

  it('a write that does not fit rejects with unavailable ("full") and keeps the old blob', async (t) => {
    if (!mounted) {
      t.skip(`cannot mount a tmpfs here: ${mountError}`);
      return;
    }
    const store = new FsBlobStore(join(dir, 'blobs'));
    const old = bytes(8 * 1024, 11);
    await store.put('modules/m.wasm', old);

    await assertVecronError(store.put('modules/m.wasm', bytes(128 * 1024, 12)), 'unavailable', /full/, /'modules\/m\.wasm'/);
    assert.ok((await store.get('modules/m.wasm')).equals(old), 'the old blob is intact');

    await assertVecronError(store.putStream('modules/m.wasm', Readable.from([bytes(64 * 1024, 13), bytes(64 * 1024, 14)])), 'unavailable', /full/);
    assert.ok((await store.get('modules/m.wasm')).equals(old), 'still intact after a failed stream');

    await assertVecronError(store.put('modules/new.wasm', bytes(128 * 1024, 15)), 'unavailable', /full/);
    assert.equal(await store.stat('modules/new.wasm'), null);
    assert.deepEqual(filesUnder(join(dir, 'blobs')), ['modules/m.wasm'], 'no temporary files fill the disk');

    // the space of the failed writes was given back: a small write still fits
    await store.put('modules/small.wasm', bytes(4 * 1024, 16));
    assert.equal((await store.stat('modules/small.wasm'))?.size, 4 * 1024);
  });
});
