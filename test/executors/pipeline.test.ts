/**
 * End to end through the real worker and engine: SFTP download (OpenSSH on loopback) -> CSV read with
 * a filter -> database insert into a real SQL server, over a named connection kept as a secret variable.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/db/database.ts';
import { enqueueExecution as enqueue } from '../../src/state/enqueue.ts';
import { Worker } from '../../src/queue/worker.ts';
import { loadConfig } from '../../src/config/index.ts';
import { secretKeyFor } from '../../src/secrets/crypto.ts';
import { mergeRunVariables, setVariable } from '../../src/variables/repository.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { runShutdownHooks } from '../../src/executors/shutdown.ts';
import { openTestDb } from '../helpers/db.ts';
import { makeJob, silentLogger } from '../helpers/jobs.ts';
import { waitFor } from '../helpers/http-server.ts';
import { forEachSqlServer, openSqlServer, type SqlServer } from '../helpers/sql-servers.ts';
import { giveToUser, startSshServer, withSshd, type SshServer } from '../helpers/sshd.ts';

const CSV = ['txn_id,account,amount,status', 'T1,ACC-1,1500.00,OK', 'T2,ACC-2,20.00,OK', 'T3,ACC-3,99000.00,FAILED', 'T4,ACC-4,1200.50,OK', ''].join('\n');

withSshd('three-step job', () => {
  forEachSqlServer((kind) => {
    describe(`job: SFTP download -> CSV read with a filter -> database insert (${kind})`, () => {
      let db: Database;
      let ssh: SshServer;
      let target: SqlServer;
      let dir: string;
      let worker: Worker;

      before(async () => {
        dir = mkdtempSync(join(tmpdir(), 'vecron-pipeline-'));
        const config = loadConfig({ VECRON_DATA_DIR: dir, VECRON_SECRET_KEY: 'k'.repeat(40), VECRON_LOG_LEVEL: 'silent' });
        const key = secretKeyFor(config);
        [db, ssh, target] = await Promise.all([openTestDb('pglite'), startSshServer(), openSqlServer(kind)]);
        mkdirSync(join(ssh.home, 'outbox'));
        writeFileSync(join(ssh.home, 'outbox', 'TXN_20240301.csv'), CSV);
        writeFileSync(join(ssh.home, 'outbox', 'BAL_20240301.csv'), 'not this one');
        giveToUser(ssh, ssh.home);
        await target.sql('CREATE TABLE transactions (txn_id VARCHAR(20) PRIMARY KEY, account VARCHAR(20), amount NUMERIC(14,2), run_id VARCHAR(64))');
        await setVariable(db, key, { jobId: null, name: 'warehouse', value: target.url, secret: true, actor: 'test' });
        await setVariable(db, key, { jobId: null, name: 'sftp_password', value: ssh.password, secret: true, actor: 'test' });
        worker = new Worker(
          {
            db,
            logger: silentLogger,
            services: { db, blobs: new FsBlobStore(join(dir, 'blobs')), config, logger: silentLogger },
            loadVariables: async (exec, docVars) => mergeRunVariables(exec.variable_rows ?? [], key, docVars),
          },
          { concurrency: 2, leaseSeconds: 30, pollIntervalMs: 100 },
        );
        await worker.start();
      });
      after(async () => {
        await worker?.stop(1000);
        await runShutdownHooks();
        await Promise.all([db?.close(), ssh?.stop(), target?.close()]);
        rmSync(dir, { recursive: true, force: true });
      });

      it('moves the filtered rows from the SFTP server into the table', async () => {
        const insert =
          target.type === 'postgresql'
            ? `INSERT INTO transactions (txn_id, account, amount, run_id)
               SELECT txn_id, account, amount, $2 FROM json_to_recordset($1::json) AS r(txn_id text, account text, amount numeric)`
            : `INSERT INTO transactions (txn_id, account, amount, run_id)
               SELECT txn_id, account, amount, ? FROM JSON_TABLE(?, '$[*]' COLUMNS (txn_id VARCHAR(20) PATH '$.txn_id', account VARCHAR(20) PATH '$.account', amount DECIMAL(14,2) PATH '$.amount')) AS r`;
        const job = await makeJob(db, {
          max_retries: 0,
          steps: [
            {
              id: 'fetch',
              type: 'sftp',
              config: {
                operation: 'download',
                host: ssh.host,
                port: ssh.port,
                username: ssh.user,
                auth: { type: 'password', password: '${sftp_password}' },
                host_key_fingerprint: ssh.fingerprint,
                remote_path: `${ssh.home}/outbox`,
                pattern: 'TXN_*.csv',
                local_path: 'incoming',
              },
            },
            {
              id: 'read',
              type: 'file',
              config: {
                operation: 'read',
                format: 'csv',
                path: '{{steps.fetch.output.files[0].path}}',
                types: { amount: 'number' },
                filter: "status = 'OK' and amount >= 1000",
                max_output_rows: 1000,
              },
            },
            {
              id: 'load',
              type: 'database',
              config: {
                database_type: target.type,
                connection: 'warehouse',
                query: insert,
                parameters:
                  target.type === 'postgresql' ? ['{{steps.read.output.rows}}', '{{execution.id}}'] : ['{{execution.id}}', '{{steps.read.output.rows}}'],
              },
            },
          ],
        });
        const id = (await enqueue(db, job, { trigger: { type: 'manual', time: new Date().toISOString(), user: 'test' } }))!;
        const e = await waitFor(
          async () => {
            const r = (await db.query<any>('SELECT * FROM executions WHERE id = $1', [id])).rows[0];
            return ['succeeded', 'failed', 'dead_lettered'].includes(r.status) ? r : null;
          },
          'the execution to finish',
          30_000,
        );
        assert.equal(e.status, 'succeeded', JSON.stringify(e.error));

        const steps = (await db.query<any>('SELECT step_id, output FROM step_runs WHERE execution_id = $1 ORDER BY position', [id])).rows;
        assert.deepEqual(
          steps[0].output.files.map((f: any) => f.path),
          ['incoming/TXN_20240301.csv'],
        );
        assert.equal(steps[1].output.row_count, 2);
        assert.equal(steps[1].output.rows_read, 4);
        assert.equal(steps[2].output.affected_rows, 2);

        const rows = await target.sql('SELECT txn_id, account, amount, run_id FROM transactions ORDER BY txn_id');
        assert.deepEqual(
          rows.map((r) => [r.txn_id, r.account, String(r.amount), r.run_id]),
          [
            ['T1', 'ACC-1', '1500.00', id],
            ['T4', 'ACC-4', '1200.50', id],
          ],
        );
        // The secret SFTP password never reaches the stored context or outputs.
        const stored = JSON.stringify((await db.query<any>('SELECT context FROM executions WHERE id = $1', [id])).rows[0]) + JSON.stringify(steps);
        assert.ok(!stored.includes(ssh.password));
      });
    });
  });
});
