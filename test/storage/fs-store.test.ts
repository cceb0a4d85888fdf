import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
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

/**
 * Filesystem-only behaviours. What every blob store must do (round trip, streams, key checks,
 * failed writes, content addressing) is in blob-store.test.ts, run on this store and on S3.
 */
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

  it('blobs are plain files under the root, written without leaving temporary files', async () => {
    await store.put('jobs/j1/executions/e1/out.csv', Buffer.from('id\n1\n'));
    await store.putStream('jobs/j1/big.bin', Readable.from([bytes(300 * 1024, 2)]));
    assert.deepEqual(filesUnder(root), ['jobs/j1/big.bin', 'jobs/j1/executions/e1/out.csv']);
  });

  it('bad keys and list prefixes never touch files outside the root', async () => {
    const outside = join(parent, 'escaped');
    for (const key of ['../escaped', 'a/../../escaped']) {
      await assert.rejects(store.put(key, Buffer.from('x')), /invalid blob key/);
      await assert.rejects(store.putStream(key, Readable.from([Buffer.from('x')])), /invalid blob key/);
    }
    assert.equal(existsSync(outside), false, 'nothing was written outside the store');
    writeFileSync(join(parent, 'outside-secret.txt'), 'not a blob');
    for (const prefix of ['../', '../outside', 'a/../../']) {
      await assert.rejects(store.list(prefix), /invalid blob key/);
    }
  });

  it('a write that fails midway leaves no temporary file next to the blob', async () => {
    await store.put('atomic/report.csv', Buffer.from('old content'));
    await assert.rejects(store.putStream('atomic/report.csv', failingStream(bytes(256 * 1024))), /upstream connection reset/);
    await assert.rejects(store.putStream('atomic/new.csv', failingStream(bytes(1024))), /upstream connection reset/);
    assert.deepEqual(readdirSync(join(root, 'atomic')), ['report.csv'], 'no .tmp file is left');
  });

  it('list() does not show temporary files of writes in progress', async () => {
    mkdirSync(join(root, 'inflight'), { recursive: true });
    writeFileSync(join(root, 'inflight', 'x.csv.0b3e.tmp'), 'partial');
    await store.put('inflight/done.csv', Buffer.from('done'));
    assert.deepEqual(
      (await store.list('inflight/')).map((b) => b.key),
      ['inflight/done.csv'],
    );
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
