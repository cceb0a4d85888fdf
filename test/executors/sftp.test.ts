import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execute } from '../../src/executors/sftp/executor.ts';
import type { SftpStepConfig } from '../../src/executors/sftp/definition.ts';
import type { StepRunContext } from '../../src/executors/executor.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { StepError } from '../../src/engine/step-error.ts';
import { createLogger } from '../../src/logger.ts';
import { giveToUser, startSshServer, withSshd, type SshServer } from '../helpers/sshd.ts';
import { forEachBlobStore, openBlobHarness, type BlobHarness } from '../helpers/blob-stores.ts';
import { stepError, stepRunContext } from '../helpers/steps.ts';

const silent = createLogger('silent');

/** Temporary upload files (`.<name>.vecron-<random>.part`) in a remote directory. */
const parts = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.part'));

withSshd('sftp step', () => {
  // One server for the whole file, shared by the suites of both blob stores.
  let ssh: SshServer;
  before(async () => {
    ssh = await startSshServer();
    mkdirSync(join(ssh.home, 'out', 'archive'), { recursive: true });
    writeFileSync(join(ssh.home, 'out', 'TXN_20240301.csv'), 'id,amount\n1,10\n');
    writeFileSync(join(ssh.home, 'out', 'TXN_20240302.csv'), 'id,amount\n2,20\n3,30\n');
    writeFileSync(join(ssh.home, 'out', 'readme.txt'), 'not a transaction file');
    writeFileSync(join(ssh.home, 'out', 'archive', 'TXN_20240229.csv'), 'id,amount\n0,5\n');
    giveToUser(ssh, ssh.home);
  });
  after(async () => {
    await ssh?.stop();
  });

  forEachBlobStore('sftp step (OpenSSH server on loopback)', (kind) => {
    let h: BlobHarness;
    let blobs: BlobStore;
    const folder = 'jobs/job-s/executions/exec-s/';
    /** This suite's own remote directory for uploads. */
    const up = () => `${ssh.home}/up-${kind}`;

    const ctx = (over: Partial<StepRunContext> & { blobs?: BlobStore } = {}) =>
      stepRunContext({ jobId: 'job-s', executionId: 'exec-s', stepId: 'sftp', services: { blobs: over.blobs ?? blobs, variable: () => undefined }, ...over });
    const base = (): SftpStepConfig => ({
      operation: 'download',
      host: ssh.host,
      port: ssh.port,
      username: ssh.user,
      auth: { type: 'password', password: ssh.password },
      host_key_fingerprint: ssh.fingerprint,
      remote_path: `${ssh.home}/out`,
    });
    const run = (c: Partial<SftpStepConfig>, x = ctx()) => execute({ ...base(), ...c } as SftpStepConfig, x) as Promise<any>;

    before(async () => {
      h = await openBlobHarness(kind);
      blobs = h.store;
      mkdirSync(up());
      giveToUser(ssh, up());
    });
    after(async () => {
      await h?.close();
    });

    it('downloads one file with a password, checking the host key', async () => {
      const out = await run({ remote_path: `${ssh.home}/out/TXN_20240301.csv`, local_path: 'in' });
      assert.equal(out.count, 1);
      assert.deepEqual(out.files, [{ name: 'TXN_20240301.csv', path: 'in/TXN_20240301.csv', remote_path: `${ssh.home}/out/TXN_20240301.csv`, size: 15 }]);
      assert.equal(out.host_key_fingerprint, ssh.fingerprint);
      assert.equal((await blobs.get(folder + 'in/TXN_20240301.csv')).toString(), 'id,amount\n1,10\n');
    });

    it('downloads the files matching a wildcard, recursively when asked', async () => {
      const flat = await run({ pattern: 'TXN_*.csv', local_path: 'flat' });
      assert.deepEqual(
        flat.files.map((f: any) => f.path),
        ['flat/TXN_20240301.csv', 'flat/TXN_20240302.csv'],
      );
      assert.equal(flat.total_bytes, 15 + 20);
      const deep = await run({ pattern: 'TXN_*.csv', recursive: true, local_path: 'deep' });
      assert.deepEqual(
        deep.files.map((f: any) => f.path),
        ['deep/TXN_20240301.csv', 'deep/TXN_20240302.csv', 'deep/archive/TXN_20240229.csv'],
      );
      assert.equal((await blobs.get(folder + 'deep/archive/TXN_20240229.csv')).toString(), 'id,amount\n0,5\n');
    });

    it('authenticates with a private key', async () => {
      const out = await run({ auth: { type: 'private_key', private_key: ssh.privateKey }, remote_path: `${ssh.home}/out/readme.txt` });
      assert.equal(out.files[0].path, 'readme.txt');
    });

    it('fails at once with sftp_auth_failed on a wrong password or key', async () => {
      const warnings: unknown[] = [];
      const logger = { ...silent, warn: (...a: unknown[]) => warnings.push(a), debug() {}, child: () => logger } as any;
      const pw = await stepError(run({ auth: { type: 'password', password: 'wrong' }, max_retries: 3 }, ctx({ logger })));
      assert.equal(pw.code, 'sftp_auth_failed');
      assert.equal(pw.retryable, false);
      assert.equal(warnings.length, 0, 'no retry');
      const key = await stepError(run({ auth: { type: 'private_key', private_key: ssh.otherKey } }));
      assert.equal(key.code, 'sftp_auth_failed');
      const garbage = await stepError(
        run({ auth: { type: 'private_key', private_key: '-----BEGIN OPENSSH PRIVATE KEY-----\nnonsense\n-----END OPENSSH PRIVATE KEY-----\n' } }),
      );
      assert.equal(garbage.code, 'sftp_invalid_key');
    });

    it('refuses a server whose host key does not match the configured fingerprint', async () => {
      const wrong = 'SHA256:' + 'A'.repeat(43);
      const e = await stepError(run({ host_key_fingerprint: wrong }));
      assert.equal(e.code, 'sftp_host_key_mismatch');
      assert.equal(e.retryable, false);
      assert.deepEqual(e.details, { expected: wrong, actual: ssh.fingerprint });
    });

    it('fails at once with sftp_file_not_found for a missing file or no match', async () => {
      const missing = await stepError(run({ remote_path: `${ssh.home}/out/TXN_19990101.csv` }));
      assert.equal(missing.code, 'sftp_file_not_found');
      assert.equal(missing.retryable, false);
      const none = await stepError(run({ pattern: 'SETTLE_*.csv' }));
      assert.equal(none.code, 'sftp_file_not_found');
      assert.match(none.message, /SETTLE_\*\.csv/);
    });

    it('retries connection errors with backoff, then fails with sftp_connection_failed', async () => {
      const s = createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      const port = (s.address() as any).port;
      await new Promise<void>((r) => s.close(() => r()));
      const warnings: any[] = [];
      const logger = { ...silent, warn: (o: any) => warnings.push(o), debug() {}, child: () => logger } as any;
      const e = await stepError(run({ port, max_retries: 2 }, ctx({ logger })));
      assert.equal(e.code, 'sftp_connection_failed');
      assert.equal(e.retryable, true);
      assert.deepEqual(
        warnings.map((w) => [w.attempt, w.retryInMs]),
        [
          [1, 500],
          [2, 1000],
        ],
      );
    });

    it('uploads a folder, creating remote directories, and a single file under a new name', async () => {
      await blobs.put(folder + 'reports/a.csv', Buffer.from('a\n1\n'));
      await blobs.put(folder + 'reports/b.csv', Buffer.from('b\n2\n'));
      await blobs.put(folder + 'reports/skip.tmpl', Buffer.from('x'));
      const out = await run({ operation: 'upload', local_path: 'reports', pattern: '*.csv', remote_path: `${up()}/in/2024/03` });
      assert.deepEqual(
        out.files.map((f: any) => [f.path, f.remote_path, f.size]),
        [
          ['reports/a.csv', `${up()}/in/2024/03/a.csv`, 4],
          ['reports/b.csv', `${up()}/in/2024/03/b.csv`, 4],
        ],
      );
      assert.equal(readFileSync(join(up(), 'in/2024/03/b.csv'), 'utf8'), 'b\n2\n');

      const one = await run({ operation: 'upload', local_path: 'reports/a.csv', remote_path: `${up()}/in/final/settlement.csv` });
      assert.equal(one.files[0].remote_path, `${up()}/in/final/settlement.csv`);
      assert.equal(readFileSync(join(up(), 'in/final/settlement.csv'), 'utf8'), 'a\n1\n');

      const nothing = await stepError(run({ operation: 'upload', local_path: 'no-such-folder', remote_path: `${up()}/in` }));
      assert.equal(nothing.code, 'sftp_file_not_found');
    });

    it('reports a remote directory it may not write as sftp_permission_denied', async () => {
      await blobs.put(folder + 'x.csv', Buffer.from('x'));
      const e = await stepError(run({ operation: 'upload', local_path: 'x.csv', remote_path: '/root/x.csv', create_directories: false }));
      assert.equal(e.code, 'sftp_permission_denied');
    });

    describe('upload through a temporary file', () => {
      const BIG = 8 * 1024 * 1024;
      const target = () => `${up()}/atomic/report.csv`;
      const OLD = 'the previous report\n';
      /** Puts the previous report on the server; returns its inode. */
      const previous = () => {
        mkdirSync(join(up(), 'atomic'), { recursive: true });
        writeFileSync(target(), OLD);
        giveToUser(ssh, join(up(), 'atomic'));
        return statSync(target()).ino;
      };
      const assertIntact = () => {
        assert.equal(readFileSync(target(), 'utf8'), OLD, 'the previous file is untouched');
      };

      before(async () => {
        await blobs.put(folder + 'big.bin', Buffer.alloc(BIG, 7));
      });

      /** The suite's store, its read streams passed through `f`. */
      const through = (f: (real: Readable) => AsyncGenerator<unknown>): BlobStore => {
        const store: BlobStore = Object.create(blobs);
        store.getStream = async (key) => Readable.from(f(await blobs.getStream(key)));
        return store;
      };
      /** The real bytes, at most 64 KB per 10 ms: an 8 MB upload lasts over a second however fast the link. */
      const paced = () =>
        through(async function* (real) {
          for await (const c of real) {
            for (let i = 0; i < (c as Buffer).length; i += 64 * 1024) {
              yield (c as Buffer).subarray(i, i + 64 * 1024);
              await new Promise((r) => setTimeout(r, 10));
            }
          }
        });

      it('replaces an existing file by a rename and leaves no temporary file', async () => {
        const ino = previous();
        await blobs.put(folder + 'report.csv', Buffer.from('id\n1\n2\n'));
        const out = await run({ operation: 'upload', local_path: 'report.csv', remote_path: target() });
        assert.equal(out.files[0].remote_path, target());
        assert.equal(readFileSync(target(), 'utf8'), 'id\n1\n2\n');
        assert.notEqual(statSync(target()).ino, ino, 'a new file renamed onto the name, not the old one rewritten in place');
        assert.deepEqual(parts(join(up(), 'atomic')), []);
      });

      it('a source blob that fails midway: the previous file stays, the temporary file is removed', async () => {
        previous();
        // The real store's stream, cut after its first 1 MB (as when the store's connection drops).
        const failing = through(async function* (real) {
          let n = 0;
          for await (const c of real) {
            yield c;
            if ((n += (c as Buffer).length) >= 1024 * 1024) break;
          }
          throw new Error('blob store read reset');
        });
        const e = await stepError(run({ operation: 'upload', local_path: 'big.bin', remote_path: target() }, ctx({ blobs: failing })));
        assert.equal(e.code, 'sftp_transfer_failed');
        assert.match(e.message, /blob store read reset/);
        assertIntact();
        assert.deepEqual(parts(join(up(), 'atomic')), []);
      });

      /** Resolves once a temporary file of at least 1 MB is on the server. */
      const midTransfer = async () => {
        const dir = join(up(), 'atomic');
        const until = Date.now() + 20_000;
        while (Date.now() < until) {
          const p = parts(dir)[0];
          if (p && (statSync(join(dir, p), { throwIfNoEntry: false })?.size ?? 0) >= 1024 * 1024) return p;
          await new Promise((r) => setTimeout(r, 5));
        }
        throw new Error('the upload never got going');
      };

      it('a step aborted midway: the previous file stays, the temporary file is removed', async () => {
        previous();
        const ac = new AbortController();
        const reason = new StepError('step_timeout', 'too slow', { retryable: true });
        const step = run({ operation: 'upload', local_path: 'big.bin', remote_path: target() }, ctx({ signal: ac.signal, blobs: paced() }));
        step.catch(() => {});
        await midTransfer();
        ac.abort(reason);
        assert.equal(await stepError(step), reason);
        assertIntact();
        assert.deepEqual(parts(join(up(), 'atomic')), []);
      });

      it('a connection cut midway: the previous file stays; the temporary file cannot be removed', async () => {
        previous();
        const step = run({ operation: 'upload', local_path: 'big.bin', remote_path: target(), max_retries: 0 }, ctx({ blobs: paced() }));
        step.catch(() => {});
        const part = await midTransfer();
        ssh.cutConnections();
        const e = await stepError(step);
        assert.equal(e.code, 'sftp_connection_failed');
        assertIntact();
        // With the connection gone nothing can be removed: the debris has a recognisable name.
        assert.match(part, /^\.report\.csv\.vecron-[0-9a-f]{12}\.part$/);
        assert.deepEqual(parts(join(up(), 'atomic')), [part]);
        assert.ok(statSync(join(up(), 'atomic', part)).size < BIG);
      });
    });
  });
});
