import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execute } from '../../src/executors/sftp/executor.ts';
import type { SftpStepConfig } from '../../src/executors/sftp/definition.ts';
import type { StepRunContext } from '../../src/executors/executor.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { createLogger } from '../../src/logger.ts';
import { giveToUser, startSshServer, withSshd, type SshServer } from '../helpers/sshd.ts';
import { stepError, stepRunContext } from '../helpers/steps.ts';

const silent = createLogger('silent');

withSshd('sftp step', () => {
  describe('sftp step (OpenSSH server on loopback)', () => {
    let ssh: SshServer;
    let dir: string;
    let blobs: FsBlobStore;
    const folder = 'jobs/job-s/executions/exec-s/';

    const ctx = (over: Partial<StepRunContext> = {}) =>
      stepRunContext({ jobId: 'job-s', executionId: 'exec-s', stepId: 'sftp', services: { blobs, variable: () => undefined }, ...over });
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
      ssh = await startSshServer();
      dir = mkdtempSync(join(tmpdir(), 'vecron-sftp-blobs-'));
      blobs = new FsBlobStore(dir);
      mkdirSync(join(ssh.home, 'out', 'archive'), { recursive: true });
      writeFileSync(join(ssh.home, 'out', 'TXN_20240301.csv'), 'id,amount\n1,10\n');
      writeFileSync(join(ssh.home, 'out', 'TXN_20240302.csv'), 'id,amount\n2,20\n3,30\n');
      writeFileSync(join(ssh.home, 'out', 'readme.txt'), 'not a transaction file');
      writeFileSync(join(ssh.home, 'out', 'archive', 'TXN_20240229.csv'), 'id,amount\n0,5\n');
      giveToUser(ssh, ssh.home);
    });
    after(async () => {
      await ssh?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
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
      assert.deepEqual(flat.files.map((f: any) => f.path), ['flat/TXN_20240301.csv', 'flat/TXN_20240302.csv']);
      assert.equal(flat.total_bytes, 15 + 20);
      const deep = await run({ pattern: 'TXN_*.csv', recursive: true, local_path: 'deep' });
      assert.deepEqual(deep.files.map((f: any) => f.path), ['deep/TXN_20240301.csv', 'deep/TXN_20240302.csv', 'deep/archive/TXN_20240229.csv']);
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
      const garbage = await stepError(run({ auth: { type: 'private_key', private_key: '-----BEGIN OPENSSH PRIVATE KEY-----\nnonsense\n-----END OPENSSH PRIVATE KEY-----\n' } }));
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
      assert.deepEqual(warnings.map((w) => [w.attempt, w.retryInMs]), [[1, 500], [2, 1000]]);
    });

    it('uploads a folder, creating remote directories, and a single file under a new name', async () => {
      await blobs.put(folder + 'reports/a.csv', Buffer.from('a\n1\n'));
      await blobs.put(folder + 'reports/b.csv', Buffer.from('b\n2\n'));
      await blobs.put(folder + 'reports/skip.tmpl', Buffer.from('x'));
      const out = await run({ operation: 'upload', local_path: 'reports', pattern: '*.csv', remote_path: `${ssh.home}/in/2024/03` });
      assert.deepEqual(out.files.map((f: any) => [f.path, f.remote_path, f.size]), [
        ['reports/a.csv', `${ssh.home}/in/2024/03/a.csv`, 4],
        ['reports/b.csv', `${ssh.home}/in/2024/03/b.csv`, 4],
      ]);
      assert.equal(readFileSync(join(ssh.home, 'in/2024/03/b.csv'), 'utf8'), 'b\n2\n');

      const one = await run({ operation: 'upload', local_path: 'reports/a.csv', remote_path: `${ssh.home}/in/final/settlement.csv` });
      assert.equal(one.files[0].remote_path, `${ssh.home}/in/final/settlement.csv`);
      assert.equal(readFileSync(join(ssh.home, 'in/final/settlement.csv'), 'utf8'), 'a\n1\n');

      const nothing = await stepError(run({ operation: 'upload', local_path: 'no-such-folder', remote_path: `${ssh.home}/in` }));
      assert.equal(nothing.code, 'sftp_file_not_found');
    });

    it('reports a remote directory it may not write as sftp_permission_denied', async () => {
      await blobs.put(folder + 'x.csv', Buffer.from('x'));
      const e = await stepError(run({ operation: 'upload', local_path: 'x.csv', remote_path: '/root/x.csv', create_directories: false }));
      assert.equal(e.code, 'sftp_permission_denied');
    });
  });
});
