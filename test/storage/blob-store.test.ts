/**
 * The behaviours every BlobStore must have, run on the filesystem store and on the S3 store against a
 * real S3-compatible server (MinIO; see test/helpers/s3.ts). Filesystem-only matters (temporary files,
 * a full disk) are in fs-store.test.ts; S3-only ones (pagination, multipart, a missing bucket) at the end.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { putContentAddressed, sha256Hex } from '../../src/storage/content-addressed.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { S3BlobStore } from '../../src/storage/s3-store.ts';
import { VecronError } from '../../src/errors.ts';
import { forEachBlobStore, openBlobHarness, type BlobHarness } from '../helpers/blob-stores.ts';

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

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `data` in 64 KB chunks, as a stream of unknown length. */
function chunked(data: Buffer, size = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
    })(),
  );
}

/** A stream that yields `good` bytes, then fails. */
function failingStream(good: Buffer, message = 'upstream connection reset'): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < good.length; i += 1024 * 1024) yield good.subarray(i, i + 1024 * 1024);
      throw new Error(message);
    })(),
  );
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function assertVecronError(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof VecronError, `a VecronError, got ${err}`);
    assert.equal(err.code, code);
    for (const re of patterns) assert.match(err.message, re);
    return true;
  });
}

forEachBlobStore('blob store', (kind) => {
  let h: BlobHarness;
  let store: BlobStore;

  before(async () => {
    h = await openBlobHarness(kind);
    store = h.store;
  });
  after(async () => {
    await h?.close();
  });

  it('put, get, stat, list and delete round trip', async () => {
    const csv = Buffer.from('id,amount\n1,100\n');
    const info = await store.put('jobs/j1/executions/e1/out.csv', csv);
    assert.equal(info.key, 'jobs/j1/executions/e1/out.csv');
    assert.equal(info.size, csv.length);
    assert.ok(info.modifiedAt instanceof Date && !Number.isNaN(info.modifiedAt.getTime()));
    assert.deepEqual(await store.get('jobs/j1/executions/e1/out.csv'), csv);
    assert.deepEqual(await readAll(await store.getStream('jobs/j1/executions/e1/out.csv')), csv);
    const st = await store.stat('jobs/j1/executions/e1/out.csv');
    assert.equal(st?.size, csv.length);
    assert.equal(st?.key, 'jobs/j1/executions/e1/out.csv');
    assert.ok(st?.modifiedAt instanceof Date);
    assert.ok(Math.abs(st!.modifiedAt.getTime() - Date.now()) < 60_000, `modifiedAt ${st!.modifiedAt.toISOString()} is now`);
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
    assert.ok(listed.modifiedAt instanceof Date);

    await store.put('jobs/j1/b.txt', Buffer.from('replaced'));
    assert.equal((await store.get('jobs/j1/b.txt')).toString(), 'replaced', 'put overwrites');
    assert.equal((await store.stat('jobs/j1/b.txt'))?.size, 8);

    await store.delete('jobs/j1/b.txt');
    assert.equal(await store.stat('jobs/j1/b.txt'), null);
    await assertVecronError(store.get('jobs/j1/b.txt'), 'not_found', /'jobs\/j1\/b\.txt'/);
    await store.delete('jobs/j1/b.txt'); // deleting what is gone is not an error
    assert.deepEqual(await keys('jobs/j1/'), ['jobs/j1/executions/e1/out.csv']);
    assert.deepEqual(await h.leftovers(), [], 'no unfinished writes are left behind');
  });

  it('put accepts a Uint8Array and an empty blob; putStream an empty stream', async () => {
    const u8 = new Uint8Array([1, 2, 3, 250]);
    assert.equal((await store.put('shapes/u8.bin', u8)).size, 4);
    assert.deepEqual([...(await store.get('shapes/u8.bin'))], [1, 2, 3, 250]);
    const view = new Uint8Array(bytes(100, 5).buffer, 10, 20); // a view into a larger buffer
    await store.put('shapes/view.bin', view);
    assert.ok((await store.get('shapes/view.bin')).equals(Buffer.from(view)), 'only the view, not its whole buffer');

    assert.equal((await store.put('shapes/empty.bin', Buffer.alloc(0))).size, 0);
    assert.equal((await store.get('shapes/empty.bin')).length, 0);
    assert.equal((await store.stat('shapes/empty.bin'))?.size, 0);
    const info = await store.putStream('shapes/empty-stream.bin', Readable.from([]));
    assert.equal(info.size, 0);
    assert.equal((await readAll(await store.getStream('shapes/empty-stream.bin'))).length, 0);
  });

  it('keys with spaces, unicode and URL-special characters round-trip and list exactly', async () => {
    const odd = [
      'odd/a b.csv',
      'odd/über straße.txt',
      'odd/plus+sign',
      'odd/percent%20x',
      'odd/q?x=1&y=2#frag',
      'odd/semi;colon,comma',
      'odd/quote\'dq"',
      'odd/emoji-📦',
    ];
    for (const [i, key] of odd.entries()) await store.put(key, Buffer.from(`v${i}`));
    for (const [i, key] of odd.entries()) {
      assert.equal((await store.get(key)).toString(), `v${i}`, key);
      assert.equal((await store.stat(key))?.size, `v${i}`.length, key);
    }
    assert.deepEqual(
      (await store.list('odd/')).map((b) => b.key),
      [...odd].sort((a, b) => (a < b ? -1 : 1)),
    );
    assert.deepEqual(
      (await store.list('odd/plus+')).map((b) => b.key),
      ['odd/plus+sign'],
    );
    assert.deepEqual(
      (await store.list('odd/percent%')).map((b) => b.key),
      ['odd/percent%20x'],
    );
    assert.equal(await store.stat('odd/percent x'), null, 'percent signs are not decoded');
    for (const key of odd) await store.delete(key);
    assert.deepEqual(await store.list('odd/'), []);
  });

  it('putStream stores a few MB without loss', async () => {
    const data = bytes(5 * 1024 * 1024 + 123, 7);
    const info = await store.putStream('big/upload.bin', chunked(data));
    assert.equal(info.size, data.length);
    assert.equal(info.key, 'big/upload.bin');
    const back = await store.get('big/upload.bin');
    assert.equal(back.length, data.length);
    assert.equal(sha(back), sha(data));
    const streamed = await readAll(await store.getStream('big/upload.bin'));
    assert.ok(streamed.equals(data));
  });

  it('putStream of a blob larger than one part (multipart on S3) and a streaming get', async () => {
    const data = bytes(17 * 1024 * 1024 + 5, 9); // three 8 MB parts on S3
    const info = await store.putStream('big/multi.bin', chunked(data));
    assert.equal(info.size, data.length);
    assert.equal((await store.stat('big/multi.bin'))?.size, data.length);

    const stream = await store.getStream('big/multi.bin');
    assert.ok(stream instanceof Readable, 'getStream gives a node Readable');
    let n = 0;
    let chunks = 0;
    const hash = createHash('sha256');
    for await (const c of stream) {
      n += (c as Buffer).length;
      chunks++;
      hash.update(c as Buffer);
    }
    assert.equal(n, data.length);
    assert.equal(hash.digest('hex'), sha(data));
    assert.ok(chunks > 1, 'the body arrives in several chunks, not as one buffer');
    assert.deepEqual(await h.leftovers(), []);
  });

  it('a reader may stop early: destroying a getStream frees it and the store keeps working', async () => {
    await store.put('early/big.bin', bytes(4 * 1024 * 1024, 21));
    for (let i = 0; i < 60; i++) {
      const s = await store.getStream('early/big.bin');
      await new Promise<void>((resolve, reject) => {
        s.once('data', () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      });
    }
    // 60 abandoned reads: more than the S3 client's default of 50 sockets if any were leaked
    assert.equal((await store.get('early/big.bin')).length, 4 * 1024 * 1024);
  });

  it('rejects keys that could escape the store, on every operation', async () => {
    const before = (await store.list('')).map((b) => b.key);
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
    assert.deepEqual(
      (await store.list('')).map((b) => b.key),
      before,
      'nothing was written',
    );
    // names that merely contain dots are fine
    await store.put('reports/2026..q1/.hidden', Buffer.from('ok'));
    assert.equal((await store.get('reports/2026..q1/.hidden')).toString(), 'ok');
  });

  it('list() rejects a prefix that climbs out of the store instead of listing', async () => {
    for (const prefix of ['../', '../outside', 'a/../../', 'a\\..\\', '/abs', 'a\0']) {
      let listed: string[] | null = null;
      try {
        listed = (await store.list(prefix)).map((b) => b.key);
      } catch (err) {
        assert.match(String(err), /invalid blob key/, `list(${JSON.stringify(prefix)})`);
      }
      assert.equal(listed, null, `list(${JSON.stringify(prefix)}) should be rejected, it returned ${JSON.stringify(listed)}`);
    }
  });

  it('a key that is only the prefix of other keys is not a blob', async () => {
    await store.put('dirlike/inner/file.txt', Buffer.from('x'));
    for (const key of ['dirlike', 'dirlike/inner']) {
      assert.equal(await store.stat(key), null, `stat(${key})`);
      await assertVecronError(store.get(key), 'not_found', /does not exist/);
      await assertVecronError(store.getStream(key), 'not_found', /does not exist/);
    }
  });

  it('get and getStream of a missing key reject with VecronError not_found naming the key', async () => {
    await assertVecronError(store.get('jobs/none/nothing.csv'), 'not_found', /'jobs\/none\/nothing\.csv' does not exist/);
    await assertVecronError(store.getStream('jobs/none/nothing.csv'), 'not_found', /'jobs\/none\/nothing\.csv'/);
  });

  it('a write that fails midway leaves the old content and no unfinished write', async () => {
    await store.put('atomic/report.csv', Buffer.from('old content'));
    await assert.rejects(store.putStream('atomic/report.csv', failingStream(bytes(256 * 1024))), /upstream connection reset/);
    assert.equal((await store.get('atomic/report.csv')).toString(), 'old content');
    await assert.rejects(store.putStream('atomic/new.csv', failingStream(bytes(1024))), /upstream connection reset/);
    assert.equal(await store.stat('atomic/new.csv'), null, 'a failed first write leaves no blob');
    // past the first 8 MB part: on S3 a multipart upload has begun and must be aborted
    await assert.rejects(store.putStream('atomic/report.csv', failingStream(bytes(10 * 1024 * 1024, 2))), /upstream connection reset/);
    assert.equal((await store.get('atomic/report.csv')).toString(), 'old content');
    assert.deepEqual(
      (await store.list('atomic/')).map((b) => b.key),
      ['atomic/report.csv'],
    );
    assert.deepEqual(await h.leftovers(), [], 'no temporary file / unfinished multipart upload is left');
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
    const hash = sha(data);
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

  it('concurrent writes of different keys all land', async () => {
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => store.put(`many/k${String(i).padStart(3, '0')}`, bytes(1000 + i, i))));
    const listed = await store.list('many/');
    assert.equal(listed.length, n);
    assert.deepEqual(
      listed.map((b) => b.size),
      Array.from({ length: n }, (_, i) => 1000 + i),
    );
  });

  if (kind === 's3') {
    it('list() follows continuation tokens across pages (1,000 keys a page on S3; 3 here)', async () => {
      const s3 = h.s3!;
      const paged = new S3BlobStore(s3.settings, { listPageSize: 3 });
      try {
        const keys = Array.from({ length: 11 }, (_, i) => `paged/${String.fromCharCode(97 + i)}.txt`);
        await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
        await store.put('pagedX/other.txt', Buffer.from('x'));
        assert.deepEqual(
          (await paged.list('paged/')).map((b) => b.key),
          keys,
        );
        assert.equal((await paged.list('paged')).length, 12);
        assert.equal((await paged.list('')).length, (await store.list('')).length);
      } finally {
        paged.destroy();
      }
    });

    it("list() pages past S3's 1,000 keys per response", async () => {
      const s3 = h.s3!;
      const n = 1_005;
      // Written with the raw client, 25 at a time, to keep this quick.
      for (let i = 0; i < n; i += 25) {
        await Promise.all(
          Array.from({ length: Math.min(25, n - i) }, (_, j) =>
            s3.client.send(new PutObjectCommand({ Bucket: s3.settings.bucket, Key: `thousand/${String(i + j).padStart(5, '0')}`, Body: 'x' })),
          ),
        );
      }
      const listed = await store.list('thousand/');
      assert.equal(listed.length, n);
      assert.equal(listed[0].key, 'thousand/00000');
      assert.equal(listed[n - 1].key, `thousand/${String(n - 1).padStart(5, '0')}`);
      assert.equal(new Set(listed.map((b) => b.key)).size, n, 'no key twice');
    });

    it('a bucket that does not exist is reported as such, not as a missing blob', async () => {
      const s3 = h.s3!;
      const missing = new S3BlobStore({ ...s3.settings, bucket: `${s3.settings.bucket}-missing` });
      try {
        for (const [op, call] of [
          ['get', () => missing.get('a.txt')],
          ['getStream', () => missing.getStream('a.txt')],
          ['stat', () => missing.stat('a.txt')],
          ['put', () => missing.put('a.txt', Buffer.from('x'))],
          ['putStream', () => missing.putStream('a.txt', Readable.from([Buffer.from('x')]))],
          ['list', () => missing.list('')],
        ] as const) {
          await assertVecronError((call as () => Promise<unknown>)(), 'unavailable', /bucket '[^']+-missing' does not exist/).catch((err) => {
            throw new Error(`${op}: ${err.message}`);
          });
        }
      } finally {
        missing.destroy();
      }
    });

    it('wrong credentials are reported as unavailable, naming the bucket and not the secret', async () => {
      const s3 = h.s3!;
      const wrong = new S3BlobStore({ ...s3.settings, secretAccessKey: 'not-the-secret-123' });
      try {
        await assert.rejects(wrong.get('a.txt'), (err: unknown) => {
          assert.ok(err instanceof VecronError, `a VecronError, got ${err}`);
          assert.equal(err.code, 'unavailable');
          assert.match(err.message, new RegExp(`bucket '${s3.settings.bucket}'`));
          assert.doesNotMatch(err.message, /not-the-secret-123/);
          return true;
        });
      } finally {
        wrong.destroy();
      }
    });
  }
});
