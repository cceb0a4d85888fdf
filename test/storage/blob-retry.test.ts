/**
 * Transient blob-store errors are retried inside the step (storage/retry.ts), for real: the
 * store's directory is made unwritable for a while (chmod 0555, or `chattr +i` when running as
 * root, whom permissions do not stop), and the file step writes into it meanwhile.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execute, executionFolder } from '../../src/executors/file/executor.ts';
import type { FileStepConfig } from '../../src/executors/file/definition.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { isTransientBlobError, withBlobRetry } from '../../src/storage/retry.ts';
import { stepError, stepRunContext } from '../helpers/steps.ts';

const isRoot = process.getuid?.() === 0;

/** Makes `dir` refuse new entries; returns the function that undoes it. */
function freeze(dir: string): () => void {
  if (isRoot) {
    execFileSync('chattr', ['+i', dir]);
    return () => execFileSync('chattr', ['-i', dir]);
  }
  chmodSync(dir, 0o555);
  return () => chmodSync(dir, 0o755);
}

const dirs: string[] = [];
const thaws: (() => void)[] = [];
afterEach(() => {
  for (const t of thaws.splice(0)) {
    try {
      t();
    } catch {
      /* already thawed */
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function store(): { root: string; blobs: FsBlobStore } {
  const root = mkdtempSync(join(tmpdir(), 'vecron-blob-retry-'));
  dirs.push(root);
  return { root, blobs: new FsBlobStore(root) };
}

const rows = [
  { id: 1, name: 'An' },
  { id: 2, name: 'Binh' },
];
const write = (blobs: FsBlobStore, deadlineMs = 60_000) =>
  execute(
    { operation: 'write', format: 'csv', path: 'out/a.csv', source: rows as any } as FileStepConfig,
    stepRunContext({ jobId: 'j', executionId: 'e', stepId: 'w', deadline: Date.now() + deadlineMs, services: { blobs, variable: () => undefined } }),
  ) as Promise<any>;

describe('blob store errors inside a step', () => {
  it('a store that is read-only for 1.5 s: the file step waits it out and writes the whole file in one attempt', async () => {
    const { root, blobs } = store();
    const thaw = freeze(root);
    thaws.push(thaw);
    // The fault is real: a plain write fails now, with an error classed as transient.
    const direct = await blobs.put('probe', Buffer.from('x')).then(
      () => null,
      (e) => e,
    );
    assert.ok(direct, 'the frozen directory refuses writes');
    assert.ok(isTransientBlobError(direct), `${direct?.code} is retried`);

    const started = Date.now();
    const pending = write(blobs);
    setTimeout(thaw, 1500);
    const out = await pending;
    assert.ok(Date.now() - started >= 1400, 'the step waited for the store to come back');
    assert.equal(out.row_count, 2);
    const text = (await blobs.get(executionFolder({ jobId: 'j', executionId: 'e' }) + 'out/a.csv')).toString('utf8');
    assert.equal(text.trim().split(/\r?\n/).join('|'), 'id,name|1,An|2,Binh');
    assert.equal(out.bytes, Buffer.byteLength(text));
  });

  it('a store that stays read-only fails the attempt with the store error once the deadline is near', async () => {
    const { root, blobs } = store();
    thaws.push(freeze(root));
    const started = Date.now();
    const err = await write(blobs, 2000).then(
      () => null,
      (e) => e,
    );
    const took = Date.now() - started;
    assert.ok(err, 'the write failed');
    assert.ok(isTransientBlobError(err), `the store's own error comes out (${err?.code}: ${err?.message})`);
    assert.ok(took < 2000 + 1000, `gave up within the deadline + 1 s (took ${took} ms)`);
  });

  it('a missing blob is not retried: the read fails at once', async () => {
    const { blobs } = store();
    const started = Date.now();
    const e = await stepError(
      execute(
        { operation: 'read', format: 'csv', path: 'nope.csv', max_output_rows: 10 } as FileStepConfig,
        stepRunContext({ services: { blobs, variable: () => undefined } }),
      ),
    );
    assert.equal(e.code, 'file_not_found');
    assert.ok(Date.now() - started < 1000);
  });

  it('an aborted step stops retrying at once', async () => {
    const { root, blobs } = store();
    thaws.push(freeze(root));
    const ac = new AbortController();
    const retrying = withBlobRetry(blobs, { signal: ac.signal, deadline: Date.now() + 60_000 });
    const p = retrying.put('k', Buffer.from('x')).then(
      () => null,
      (e) => e,
    );
    setTimeout(() => ac.abort(new Error('stopped by the test')), 300);
    const started = Date.now();
    const err = await p;
    assert.equal(err?.message, 'stopped by the test');
    assert.ok(Date.now() - started < 1500);
  });
});
