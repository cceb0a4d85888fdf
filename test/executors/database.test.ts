import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { execute, closeDatabasePools, databasePoolCount } from '../../src/executors/database/executor.ts';
import type { DatabaseStepConfig } from '../../src/executors/database/definition.ts';
import type { StepRunContext } from '../../src/executors/executor.ts';
import { StepError } from '../../src/engine/step-error.ts';
import { runShutdownHooks } from '../../src/executors/shutdown.ts';
import { parseJobDocument } from '../../src/jobs/validate.ts';
import { forEachSqlServer, openSqlServer, type SqlServer } from '../helpers/sql-servers.ts';
import { waitFor } from '../helpers/http-server.ts';
import { stepError, stepRunContext } from '../helpers/steps.ts';

const runCtx = (vars: Record<string, unknown> = {}, over: Partial<StepRunContext> = {}) =>
  stepRunContext({ stepId: 'db', services: { variable: (n: string) => vars[n], config: { stepDbPoolSize: 3 } as any }, ...over });

/** A loopback port with nothing listening. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as any).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

after(() => closeDatabasePools());

forEachSqlServer((kind) => {
  describe(`database step (${kind})`, () => {
    let db: SqlServer;
    const isPg = kind !== 'mysql';
    const p = (i: number) => (isPg ? `$${i}` : '?');
    const run = (c: Partial<DatabaseStepConfig>, ctx = runCtx()) =>
      execute({ database_type: db.type, connection_string: db.url, query_type: 'raw_sql', row_limit: 10_000, ...c } as DatabaseStepConfig, ctx) as Promise<any>;

    before(async () => {
      db = await openSqlServer(kind);
      await db.sql(`CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(100) NOT NULL, balance NUMERIC(14,2) NOT NULL, opened DATE)`);
      await db.sql(`INSERT INTO accounts VALUES (1, 'An', 100.50, '2024-01-02'), (2, 'Binh', 2500.00, '2023-05-06'), (3, 'Chi', 0.10, NULL)`);
    });
    after(async () => {
      await closeDatabasePools();
      await db?.close();
    });

    it('runs a parameterised query and returns rows, row_count and fields', async () => {
      const out = await run({ query: `SELECT id, owner, balance, opened FROM accounts WHERE balance > ${p(1)} ORDER BY id`, parameters: [50] });
      assert.equal(out.row_count, 2);
      assert.deepEqual(
        out.rows.map((r: any) => [r.id, r.owner]),
        [
          [1, 'An'],
          [2, 'Binh'],
        ],
      );
      // Amounts keep their exact text; a date is the server's date, not shifted to local time.
      assert.equal(out.rows[0].balance, '100.50');
      assert.equal(out.rows[0].opened, '2024-01-02');
      assert.deepEqual(
        out.fields.map((f: any) => f.name),
        ['id', 'owner', 'balance', 'opened'],
      );
      assert.equal(out.fields[0].type, isPg ? 'int4' : 'long');
      assert.equal(out.fields[2].type, isPg ? 'numeric' : 'newdecimal');
      assert.equal(out.affected_rows, null);
    });

    it('sends parameters separately from the SQL: an injection attempt is stored as text', async () => {
      const evil = `x'); DROP TABLE accounts; --`;
      const out = await run({ query: `INSERT INTO accounts (id, owner, balance) VALUES (${p(1)}, ${p(2)}, ${p(3)})`, parameters: [10, evil, '1.00'] });
      assert.equal(out.affected_rows, 1);
      const rows = await db.sql(`SELECT owner FROM accounts WHERE id = 10`);
      assert.equal(rows[0].owner, evil);
      assert.equal((await db.sql('SELECT count(*) AS n FROM accounts'))[0].n.toString(), '4');
      await db.sql('DELETE FROM accounts WHERE id = 10');
    });

    it('inserts a list of rows passed as one JSON parameter', async () => {
      const rows = [
        { id: 20, owner: 'Dung', balance: '12.00' },
        { id: 21, owner: 'Em', balance: '13.50' },
      ];
      const query = isPg
        ? `INSERT INTO accounts (id, owner, balance) SELECT id, owner, balance FROM json_to_recordset($1::json) AS r(id int, owner text, balance numeric)`
        : `INSERT INTO accounts (id, owner, balance) SELECT id, owner, balance FROM JSON_TABLE(?, '$[*]' COLUMNS (id INT PATH '$.id', owner VARCHAR(100) PATH '$.owner', balance DECIMAL(14,2) PATH '$.balance')) AS r`;
      const out = await run({ query, parameters: [rows] });
      assert.equal(out.affected_rows, 2);
      assert.deepEqual(
        (await db.sql('SELECT owner FROM accounts WHERE id >= 20 ORDER BY id')).map((r) => r.owner),
        ['Dung', 'Em'],
      );
      await db.sql('DELETE FROM accounts WHERE id >= 20');
    });

    it('fails with db_row_limit_exceeded when the result has more rows than row_limit', async () => {
      const e = await stepError(run({ query: 'SELECT id FROM accounts', row_limit: 2 }));
      assert.equal(e.code, 'db_row_limit_exceeded');
      assert.equal(e.retryable, false);
      assert.deepEqual(e.details, { row_count: 3, row_limit: 2 });
      const ok = await run({ query: 'SELECT id FROM accounts', row_limit: 3 });
      assert.equal(ok.row_count, 3);
    });

    it('reports SQL errors as db_query_failed with the server code', async () => {
      const e = await stepError(run({ query: 'SELECT * FROM no_such_table' }));
      assert.equal(e.code, 'db_query_failed');
      assert.equal(e.retryable, false);
      assert.equal((e.details as any).sqlstate, isPg ? '42P01' : '42S02');
      const dup = await stepError(run({ query: `INSERT INTO accounts (id, owner, balance) VALUES (${p(1)}, 'dup', 1)`, parameters: [1] }));
      assert.equal(dup.code, 'db_query_failed');
      assert.equal((dup.details as any).sqlstate, isPg ? '23505' : '23000');
    });

    it('calls a stored procedure with parameters', async () => {
      if (isPg) {
        await db.sql(`CREATE PROCEDURE credit(acc int, amount numeric) LANGUAGE sql AS $$ UPDATE accounts SET balance = balance + amount WHERE id = acc $$`);
        await db.sql(
          `CREATE FUNCTION rich(min numeric) RETURNS TABLE(owner text, balance numeric) LANGUAGE sql AS $$ SELECT owner, balance FROM accounts WHERE balance >= min ORDER BY owner $$`,
        );
      } else {
        await db.sql(`CREATE PROCEDURE credit(IN acc INT, IN amount DECIMAL(14,2)) UPDATE accounts SET balance = balance + amount WHERE id = acc`);
        await db.sql(`CREATE PROCEDURE rich(IN min DECIMAL(14,2)) SELECT owner, balance FROM accounts WHERE balance >= min ORDER BY owner`);
      }
      await run({ query: 'credit', query_type: 'stored_procedure', parameters: [3, '4.90'] });
      assert.equal(String((await db.sql('SELECT balance FROM accounts WHERE id = 3'))[0].balance), '5.00');
      const out = await run({ query: 'rich', query_type: 'stored_procedure', parameters: [100] });
      assert.deepEqual(
        out.rows.map((r: any) => r.owner),
        ['An', 'Binh'],
      );
      assert.equal(out.row_count, 2);

      const missing = await stepError(run({ query: 'no_such_proc', query_type: 'stored_procedure' }));
      assert.equal(missing.code, isPg ? 'db_procedure_not_found' : 'db_query_failed');
      const bad = await stepError(run({ query: 'credit; DROP TABLE accounts', query_type: 'stored_procedure' }));
      assert.equal(bad.code, 'db_invalid_config');
    });

    it('uses a named connection from a (secret) variable, and explains a missing one', async () => {
      const out = await run({ connection_string: undefined, connection: 'core_db', query: 'SELECT 1 AS one' }, runCtx({ core_db: db.url }));
      assert.equal(out.rows[0].one, 1);
      const e = await stepError(run({ connection_string: undefined, connection: 'nope', query: 'SELECT 1' }));
      assert.equal(e.code, 'db_connection_not_found');
      assert.match(e.message, /secret variable 'nope'/);
    });

    it('fails with db_connection_failed (retryable) when nothing listens', async () => {
      const u = new URL(db.url);
      u.port = String(await closedPort());
      u.password = 'Pw-9f8e7d6c';
      const e = await stepError(run({ connection_string: u.toString(), query: 'SELECT 1' }));
      assert.equal(e.code, 'db_connection_failed');
      assert.equal(e.retryable, true);
      assert.ok(!e.message.includes('Pw-9f8e7d6c'), 'no password in the message');
    });

    it('keeps one pool per connection and closes them at shutdown', async () => {
      await closeDatabasePools();
      await run({ query: 'SELECT 1 AS x' });
      await run({ query: 'SELECT 2 AS x' });
      assert.equal(databasePoolCount(), 1);
      await runShutdownHooks();
      assert.equal(databasePoolCount(), 0);
    });

    if (kind !== 'pglite') {
      // PGlite runs in this process: a sleeping statement would block the test itself.
      it('cancels the statement on the server when the timeout passes', async () => {
        const marker = `vecron_timeout_${Date.now()}`;
        const sleepSql = isPg ? `SELECT pg_sleep(30) AS ${marker}` : `SELECT SLEEP(30) AS ${marker}`;
        const e = await stepError(run({ query: sleepSql, timeout_seconds: 0.5 }));
        assert.equal(e.code, 'db_timeout');
        assert.equal((e.details as any).cancel, 'cancelled');
        // The server no longer runs it (its activity view is updated just after the error is sent: poll).
        const running = () =>
          isPg
            ? db.sql(`SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()`, [`%${marker}%`])
            : db.sql(`SELECT id FROM information_schema.processlist WHERE info LIKE ? AND id <> CONNECTION_ID()`, [`%${marker}%`]);
        await waitFor(async () => (await running()).length === 0, 'the statement to stop on the server', 10_000);
        // The pooled connection is still usable.
        assert.equal((await run({ query: 'SELECT 1 AS ok' })).rows[0].ok, 1);
      });

      it('cancels the statement on the server when the step is aborted', async () => {
        const ac = new AbortController();
        const reason = new StepError('job_timeout', 'job exceeded its timeout');
        setTimeout(() => ac.abort(reason), 300);
        const e = await stepError(run({ query: isPg ? 'SELECT pg_sleep(30)' : 'SELECT SLEEP(30)' }, runCtx({}, { signal: ac.signal })));
        assert.equal(e, reason);
      });

      it('a wait for a pooled connection ends at the timeout or at an abort, while the pool stays busy', async () => {
        // The pool (stepDbPoolSize 3) held by three sleeping statements, stopped by the test at the end.
        const hold = new AbortController();
        let holdersDone = 0;
        const holders = [1, 2, 3].map(() =>
          run({ query: isPg ? 'SELECT pg_sleep(30)' : 'SELECT SLEEP(30)' }, runCtx({}, { signal: hold.signal })).then(
            () => holdersDone++,
            () => holdersDone++,
          ),
        );
        try {
          await new Promise((r) => setTimeout(r, 300));
          const e = await stepError(run({ query: 'SELECT 1 AS x', timeout_seconds: 0.3 }));
          assert.equal(e.code, 'db_timeout');
          assert.match(e.message, /no connection within the step's timeout of 0.3s/);
          const ac = new AbortController();
          const reason = new StepError('job_cancelled', 'cancelled by an operator');
          setTimeout(() => ac.abort(reason), 200);
          assert.equal(await stepError(run({ query: 'SELECT 1 AS x' }, runCtx({}, { signal: ac.signal }))), reason);
          assert.equal(holdersDone, 0, 'the waits ended while every connection was still busy');
        } finally {
          hold.abort(new StepError('aborted', 'test over'));
          await Promise.all(holders);
        }
        // The connections went back: the pool serves again.
        assert.equal((await run({ query: 'SELECT 1 AS ok' })).rows[0].ok, 1);
      });

      it('fails with db_auth_failed (not retryable) on wrong credentials', async () => {
        const u = new URL(db.url);
        u.password = 'wrong-password';
        const e = await stepError(run({ connection_string: u.toString(), query: 'SELECT 1' }));
        assert.equal(e.code, 'db_auth_failed');
        assert.equal(e.retryable, false);
      });
    }
  });
});

describe('database step config (checked when the job is saved)', () => {
  const job = (config: Record<string, unknown>) => () => parseJobDocument({ name: 'j', steps: [{ id: 'q', type: 'database', config }] });
  it('accepts the seed shape and rejects what cannot run', () => {
    const j = parseJobDocument({
      name: 'j',
      steps: [
        {
          id: 'q',
          step_type: {
            DatabaseQuery: { database_type: 'PostgreSQL', connection_string: '{{variables.db_url}}', query: 'INSERT INTO t VALUES ($1)', query_type: 'RawSql' },
          },
        },
      ],
    });
    assert.deepEqual((j.steps[0] as any).config, {
      database_type: 'postgresql',
      connection_string: '{{variables.db_url}}',
      query: 'INSERT INTO t VALUES ($1)',
      query_type: 'raw_sql',
      row_limit: 10_000,
    });
    assert.throws(job({ database_type: 'oracle', connection: 'x', query: 'select 1' }), /Oracle is not supported/);
    assert.throws(job({ database_type: 'postgresql', query: 'select 1' }), /one of 'connection'/);
    assert.throws(job({ database_type: 'mysql', connection_string: 'postgres://x', query: 'select 1' }), /mysql:\/\//);
    assert.throws(job({ database_type: 'mysql', connection: 'c', query: 'x(1)', query_type: 'stored_procedure' }), /procedure name/);
  });
});
