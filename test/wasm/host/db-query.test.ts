/**
 * db_query on real databases: PGlite (always), PostgreSQL (TEST_DATABASE_URL) and MariaDB/MySQL
 * (TEST_MYSQL_URL), each a database of its own. Permissions per table, statement classification,
 * parameters, caps, secrecy of the datasource URL, and cancellation on the server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { closeDatabasePools, getPool, runStatement, type PgPool } from '../../../src/executors/database/client.ts';
import type { Permission } from '../../../src/modules/permissions.ts';
import { dbQuery } from '../../../src/wasm/host/db-query.ts';
import { forEachSqlServer, openSqlServer, type SqlServer } from '../../helpers/sql-servers.ts';
import { waitFor } from '../../helpers/http-server.ts';
import { hostError, testContext, testSession } from './support.ts';

after(() => closeDatabasePools());

const read = (pattern: string | null): Permission => ({ type: 'database:read', resource_pattern: pattern });
const write = (pattern: string | null): Permission => ({ type: 'database:write', resource_pattern: pattern });

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

forEachSqlServer((kind) => {
  describe(`db_query (${kind})`, () => {
    let db: SqlServer;
    const isPg = kind !== 'mysql';
    const p = (i: number) => (isPg ? `$${i}` : '?');
    const run = (
      request: Record<string, unknown>,
      permissions: Permission[],
      opts: { variables?: Record<string, unknown>; limits?: object; signal?: AbortSignal } = {},
    ) => {
      const session = testSession({ permissions, variables: opts.variables ?? { crm: db.url }, limits: opts.limits });
      const ctx = testContext(session, 'db_query', opts.signal);
      return { session, ctx, result: dbQuery.call({ datasource: 'crm', ...request }, ctx) as Promise<any> };
    };

    before(async () => {
      db = await openSqlServer(kind);
      await db.sql('CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, spend NUMERIC(14,2) NOT NULL)');
      await db.sql('CREATE TABLE customer_tiers (id INT PRIMARY KEY, tier VARCHAR(20) NOT NULL)');
      await db.sql('CREATE TABLE salaries (id INT PRIMARY KEY, amount INT NOT NULL)');
      await db.sql(`INSERT INTO customers VALUES (1, 'An', 120.00), (2, 'Binh', 4800.50), (3, 'Chi', 15.25)`);
      await db.sql('INSERT INTO salaries VALUES (1, 99000)');
    });
    after(async () => {
      await closeDatabasePools();
      await db?.close();
    });

    it('runs a parameterised SELECT with database:read on the table', async () => {
      const { ctx, result } = run({ sql: `SELECT id, name, spend FROM customers WHERE spend > ${p(1)} ORDER BY id`, params: [100] }, [read('crm/customers')]);
      const r = await result;
      assert.equal(r.row_count, 2);
      assert.deepEqual(
        r.rows.map((x: any) => [x.id, x.name, x.spend]),
        [
          [1, 'An', '120.00'],
          [2, 'Binh', '4800.50'],
        ],
      );
      assert.deepEqual(
        r.columns.map((c: any) => c.name),
        ['id', 'name', 'spend'],
      );
      assert.equal(r.affected_rows, null);
      assert.equal(ctx.targetValue, 'crm/customers');
    });

    it('needs database:write for INSERT, UPDATE and DELETE, database:read for what they read', async () => {
      const ins = `INSERT INTO customer_tiers (id, tier) VALUES (${p(1)}, ${p(2)})`;
      const denied = run({ sql: ins, params: [1, 'gold'] }, [read('crm/**')]);
      const e = await hostError(denied.result);
      assert.equal(e.code, 'permission_denied');
      assert.equal(e.permission, 'database:write');
      assert.equal(denied.session.denials[0].resource, 'crm/customer_tiers');
      assert.equal((await db.sql('SELECT count(*) AS n FROM customer_tiers'))[0].n.toString(), '0', 'nothing reached the database');

      const ok = await run({ sql: ins, params: [1, 'gold'] }, [write('crm/customer_*')]).result;
      assert.equal(ok.affected_rows, 1);
      const upd = await run({ sql: `UPDATE customer_tiers SET tier = ${p(1)} WHERE id = ${p(2)}`, params: ['silver', 1] }, [write('crm/customer_tiers')])
        .result;
      assert.equal(upd.affected_rows, 1);
      assert.equal((await db.sql('SELECT tier FROM customer_tiers WHERE id = 1'))[0].tier, 'silver');

      // INSERT ... SELECT reads customers: database:read on it is needed too.
      const copy = 'INSERT INTO customer_tiers (id, tier) SELECT id + 100, name FROM customers';
      const e2 = await hostError(run({ sql: copy }, [write('crm/customer_tiers')]).result);
      assert.equal(e2.permission, 'database:read');
      assert.match(e2.message, /crm\/customers/);
      const copied = await run({ sql: copy }, [write('crm/customer_tiers'), read('crm/customers')]).result;
      assert.equal(copied.affected_rows, 3);
      const del = await run({ sql: `DELETE FROM customer_tiers WHERE id > ${p(1)}`, params: [100] }, [write('crm/customer_tiers')]).result;
      assert.equal(del.affected_rows, 3);
    });

    it('checks every table a statement touches: joins, subqueries, CTE bodies; CTE names are not tables', async () => {
      const perms = [read('crm/customer*')];
      const cases = [
        'SELECT c.name, s.amount FROM customers c JOIN salaries s ON s.id = c.id',
        'SELECT name FROM customers WHERE id IN (SELECT id FROM salaries)',
        'WITH x AS (SELECT id FROM salaries) SELECT * FROM customers JOIN x ON x.id = customers.id',
        'SELECT (SELECT max(amount) FROM salaries) AS m FROM customers',
      ];
      for (const sql of cases) {
        const { session, result } = run({ sql }, perms);
        const e = await hostError(result);
        assert.equal(e.code, 'permission_denied', sql);
        assert.deepEqual(
          session.denials.map((d) => d.resource),
          ['crm/salaries'],
          sql,
        );
      }
      const cte = await run({ sql: 'WITH big AS (SELECT id, name FROM customers WHERE spend > 100) SELECT name FROM big ORDER BY id' }, perms).result;
      assert.deepEqual(
        cte.rows.map((r: any) => r.name),
        ['An', 'Binh'],
      );
    });

    it('matches datasource/table globs, and keeps old table-only patterns valid for every datasource', async () => {
      const sql = 'SELECT id FROM customer_tiers';
      const rows = (await db.sql(sql)).length;
      assert.equal((await run({ sql }, [read('crm/customer_*')]).result).row_count, rows);
      assert.equal((await run({ sql }, [read('customer_*')]).result).row_count, rows, 'a pattern stored before datasources existed');
      assert.equal((await run({ sql }, [read(null)]).result).row_count, rows);
      for (const pattern of ['other/customer_tiers', 'crm/customers', 'crm/customer_tiers_x', 'crm']) {
        const e = await hostError(run({ sql }, [read(pattern)]).result);
        assert.equal(e.code, 'permission_denied', pattern);
      }
      // A statement that names no table needs database:read on the datasource itself.
      assert.equal((await hostError(run({ sql: 'SELECT 1 AS one' }, [read('crm/customer_*')]).result)).code, 'permission_denied');
      assert.equal((await run({ sql: 'SELECT 1 AS one' }, [read('crm')]).result).rows[0].one, 1);
    });

    it('refuses multiple statements, DDL and other statements as bad_request, before connecting', async () => {
      const all = [read(null), write(null)];
      const cases: [string, RegExp][] = [
        ['SELECT 1; DROP TABLE customers', /2 statements/],
        ['DROP TABLE customers', /DDL/],
        ['CREATE TABLE evil (a INT)', /DDL/],
        ['ALTER TABLE customers ADD COLUMN x INT', /DDL/],
        ['TRUNCATE customers', /not allowed|DDL/],
        ['GRANT ALL ON customers TO PUBLIC', /not allowed|DDL|not a MySQL/],
        ['SELECT * FROM customers FOR UPDATE', /locking/],
        ['SELEC id FROM customers', /not a/],
        ['', /non-empty/],
      ];
      if (isPg) cases.push(['SELECT * INTO evil FROM customers', /INTO/], ["SELECT query_to_xml('select * from salaries', true, false, '')", /query_to_xml/]);
      else
        cases.push(
          ['SELECT * FROM customers /*!50000 UNION SELECT id, amount, amount FROM salaries */', /executable comments/],
          ['SELECT @x := 1', /session variables/],
        );
      for (const [sql, re] of cases) {
        const e = await hostError(run({ sql }, all).result);
        assert.equal(e.code, 'bad_request', sql);
        assert.match(e.message, re, sql);
      }
      assert.equal((await db.sql('SELECT count(*) AS n FROM customers'))[0].n.toString(), '3', 'the table is intact');
    });

    it('sends values only as parameters: an injection attempt is data', async () => {
      const evil = `x'); DROP TABLE customers; --`;
      const r = await run({ sql: `INSERT INTO customer_tiers (id, tier) VALUES (${p(1)}, ${p(2)})`, params: [50, evil.slice(0, 20)] }, [
        write('crm/customer_tiers'),
      ]).result;
      assert.equal(r.affected_rows, 1);
      assert.equal((await db.sql('SELECT tier FROM customer_tiers WHERE id = 50'))[0].tier, evil.slice(0, 20));
      await db.sql('DELETE FROM customer_tiers WHERE id = 50');
      const wrong = await hostError(run({ sql: `SELECT id FROM customers WHERE id = ${p(1)}`, params: [] }, [read('crm/customers')]).result);
      assert.equal(wrong.code, 'upstream_error');
    });

    if (kind !== 'mysql') {
      it('runs reads in a READ ONLY transaction: a function that writes is refused by the server', async () => {
        await db.sql(`CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS $$ INSERT INTO customer_tiers VALUES (99, 'x') RETURNING 1 $$`);
        const e = await hostError(run({ sql: 'SELECT sneaky() AS s' }, [read('crm')]).result);
        assert.equal(e.code, 'upstream_error');
        assert.match(e.message, /read-only transaction/);
        assert.equal((await db.sql('SELECT count(*) AS n FROM customer_tiers WHERE id = 99'))[0].n.toString(), '0');
      });
    }

    it('refuses every write a read reaches through a function or a sequence: the server itself refuses it', async () => {
      if (isPg) {
        await db.sql(`CREATE FUNCTION sneaky_pl() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO customer_tiers VALUES (98, 'x'); RETURN 1; END $$`);
        await db.sql('CREATE SEQUENCE sneaky_seq');
        for (const sql of ['SELECT sneaky_pl() AS s', "SELECT nextval('sneaky_seq') AS n"]) {
          const e = await hostError(run({ sql }, [read('crm')]).result);
          assert.equal(e.code, 'upstream_error', sql);
          assert.match(e.message, /read-only transaction/, sql);
        }
        assert.equal((await db.sql('SELECT last_value, is_called FROM sneaky_seq'))[0].is_called, false, 'the sequence did not move');
        // A function that turns the session's default to read-write changes nothing for later reads:
        // each read starts its own READ ONLY transaction, and the ROLLBACK undoes the setting.
        await db.sql(
          `CREATE FUNCTION flip() RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('default_transaction_read_only', 'off', false); RETURN 1; END $$`,
        );
        await run({ sql: 'SELECT flip() AS f' }, [read('crm')]).result;
        const e = await hostError(run({ sql: 'SELECT sneaky_pl() AS s' }, [read('crm')]).result);
        assert.match(e.message, /read-only transaction/);
      } else {
        await db.sql("CREATE FUNCTION sneaky_my() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO customer_tiers VALUES (98, 'x'); RETURN 1; END");
        const e = await hostError(run({ sql: 'SELECT sneaky_my() AS s' }, [read('crm')]).result);
        assert.equal(e.code, 'upstream_error');
        assert.match(e.message, /READ ONLY transaction/);
        // A function that turns the session read-write changes nothing for later reads (each starts READ ONLY).
        await db.sql('CREATE FUNCTION flip_my() RETURNS INT BEGIN SET @@session.tx_read_only = 0; RETURN 1; END');
        await run({ sql: 'SELECT flip_my() AS f' }, [read('crm')]).result;
        const again = await hostError(run({ sql: 'SELECT sneaky_my() AS s' }, [read('crm')]).result);
        assert.match(again.message, /READ ONLY transaction/);
      }
      assert.equal(Number((await db.sql('SELECT count(*) AS n FROM customer_tiers WHERE id = 98'))[0].n), 0);
      // A writable CTE is a write: it needs database:write, and a read grant alone is refused before any connection.
      if (isPg) {
        const e = await hostError(run({ sql: "WITH w AS (INSERT INTO customer_tiers VALUES (97, 'x') RETURNING id) SELECT id FROM w" }, [read(null)]).result);
        assert.equal(e.code, 'permission_denied');
      }
    });

    if (kind === 'postgres') {
      it('parses a read once per connection (named statements), and falls back when the server loses them', async () => {
        const names = "SELECT statement FROM pg_prepared_statements WHERE name LIKE 'vecron\\_%' ORDER BY statement";
        await run({ sql: 'SELECT id FROM customers WHERE id = $1', params: [1] }, [read('crm/customers')]).result;
        await run({ sql: 'SELECT id FROM customers WHERE id = $1', params: [2] }, [read('crm/customers')]).result;
        const held = (await run({ sql: names }, [read('crm'), read('crm/pg_prepared_statements')]).result).rows.map((r: any) => r.statement);
        const count = (t: string) => held.filter((x: string) => x === t).length;
        assert.equal(count('BEGIN TRANSACTION READ ONLY'), 1, 'BEGIN parsed once on the connection');
        assert.equal(count('ROLLBACK'), 1, 'ROLLBACK parsed once on the connection');
        assert.equal(count('SELECT id FROM customers WHERE id = $1'), 1, 'the read parsed once, run twice');
        // A schema change under a kept plan ('cached plan must not change result type'): sent again unnamed.
        const star = 'SELECT * FROM customer_tiers ORDER BY id';
        await run({ sql: star }, [read('crm/customer_tiers')]).result;
        await db.sql('ALTER TABLE customer_tiers ADD COLUMN note VARCHAR(10)');
        const after = await run({ sql: star }, [read('crm/customer_tiers')]).result;
        assert.ok(after.columns.some((c: any) => c.name === 'note'));
        await db.sql('ALTER TABLE customer_tiers DROP COLUMN note');
        // A renamed column, same types (whether or not the server refuses the kept plan): the rows
        // and columns carry the new name, never the one a former read of the statement was told.
        const byPosition = 'SELECT * FROM customer_tiers ORDER BY 1';
        const before = await run({ sql: byPosition }, [read('crm/customer_tiers')]).result;
        await run({ sql: byPosition }, [read('crm/customer_tiers')]).result;
        const first = before.columns[0].name;
        await db.sql(`ALTER TABLE customer_tiers RENAME COLUMN ${first} TO renamed_col`);
        try {
          const renamed = await run({ sql: byPosition }, [read('crm/customer_tiers')]).result;
          assert.equal(renamed.columns[0].name, 'renamed_col');
          assert.ok(renamed.rows.length > 0 && renamed.rows.every((r: any) => 'renamed_col' in r && !(first in r)));
        } finally {
          await db.sql(`ALTER TABLE customer_tiers RENAME COLUMN renamed_col TO ${first}`);
        }
        // A server that lost the statements (as behind a pooler that moves sessions): sent unnamed, and named statements stop.
        const pool = getPool('postgresql', db.url, 5) as PgPool;
        const client = await pool.pool.connect();
        await client.query('DEALLOCATE ALL');
        client.release();
        const r = await run({ sql: 'SELECT id FROM customers WHERE id = $1', params: [3] }, [read('crm/customers')]).result;
        assert.equal(r.rows[0].id, 3);
        assert.equal(pool.named, false);
        pool.named = true;
      });
    }

    if (kind === 'pglite') {
      it('uses no named statements on PGlite (one backend shared by every connection)', async () => {
        await run({ sql: 'SELECT id FROM customers WHERE id = $1', params: [1] }, [read('crm/customers')]).result;
        const held = await db.sql("SELECT name FROM pg_prepared_statements WHERE name LIKE 'vecron\\_%'");
        assert.deepEqual(held, []);
      });
    }

    if (kind !== 'mysql') {
      it('sends a read with its BEGIN READ ONLY and ROLLBACK in one batch: read-only inside, the connection clean after, a failure rolled back', async () => {
        const probe = "SELECT pg_backend_pid() AS pid, current_setting('transaction_read_only') AS ro";
        // One round trip with one Sync: the server answers the whole read (BEGIN, statement, ROLLBACK)
        // with a single ReadyForQuery, and leaves the connection outside any transaction.
        // A pool of its own (another URL): connections no earlier test touched.
        const own = new URL(db.url);
        own.searchParams.set('application_name', 'vecron-batch-test');
        const variables = { crm: own.toString() };
        const runOwn = (request: Record<string, unknown>, permissions: Permission[]) => run(request, permissions, { variables });
        const pool = getPool('postgresql', variables.crm, 5) as PgPool;
        const client = await pool.pool.connect();
        const statuses: string[] = [];
        const onReady = (m: { status?: string }) => statuses.push(String(m?.status));
        const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
        connection.on('readyForQuery', onReady);
        client.release(); // the pool hands out its most recently released client next
        const first = (await runOwn({ sql: probe }, [read('crm')]).result).rows[0];
        connection.off('readyForQuery', onReady);
        assert.equal(first.ro, 'on', 'the statement ran inside the read-only transaction');
        assert.deepEqual(statuses, ['I'], 'one ReadyForQuery for the read, outside any transaction');
        // A failed statement ends its transaction too: the same connection serves the next read, read-only again.
        const e = await hostError(runOwn({ sql: 'SELECT 1 / (id - id) AS boom FROM customers' }, [read('crm/customers')]).result);
        assert.equal(e.code, 'upstream_error');
        assert.match(e.message, /division by zero/);
        const again = (await runOwn({ sql: probe }, [read('crm')]).result).rows[0];
        assert.equal(again.pid, first.pid, 'the pooled connection was kept: it was left outside any transaction');
        assert.equal(again.ro, 'on');
        // And a write on that connection is not read-only: nothing of the reads' transactions stayed.
        const w = await runOwn({ sql: `INSERT INTO customer_tiers VALUES (${p(1)}, ${p(2)})`, params: [70, 'gold'] }, [write('crm/customer_tiers')]).result;
        assert.equal(w.affected_rows, 1);
        await db.sql('DELETE FROM customer_tiers WHERE id = 70');
        // A parameter that cannot be mapped to its wire text: nothing of the batch is sent (no BEGIN
        // left open), the read fails with the mapping's error and the connection serves the next one.
        const bad = {
          toPostgres: () => {
            throw new Error('no wire text for this value');
          },
        };
        await assert.rejects(
          runStatement(pool, {
            sql: 'SELECT $1::text AS v',
            params: [bad],
            rowLimit: 10,
            timeoutMs: 5000,
            signal: new AbortController().signal,
            readOnly: true,
          }),
          /no wire text for this value/,
        );
        const after = (await runOwn({ sql: probe }, [read('crm')]).result).rows[0];
        assert.equal(after.pid, first.pid, 'the connection was kept: it was left outside any transaction');
        // Values and their types come back as the unbatched path gives them.
        const t = (
          await runOwn({ sql: `SELECT ${p(1)}::int8 AS big, ${p(2)}::date AS day, 2.50::numeric AS amount`, params: [42, '2026-12-02'] }, [read('crm')]).result
        ).rows[0];
        assert.deepEqual(t, { big: 42, day: '2026-12-02', amount: '2.50' });
      });
    }

    it('caps rows at min(max_rows, limits.maxRows) and the rows JSON at maxResponseBytes: too_large', async () => {
      const sql = 'SELECT id, name FROM customers ORDER BY id';
      const perms = [read('crm/customers')];
      const e = await hostError(run({ sql, max_rows: 2 }, perms).result);
      assert.equal(e.code, 'too_large');
      assert.match(e.message, /3 rows, more than max_rows \(2\)/);
      const e2 = await hostError(run({ sql, max_rows: 50 }, perms, { limits: { maxRows: 2 } }).result);
      assert.match(e2.message, /more than the limit of 2 rows per call/);
      assert.equal((await run({ sql, max_rows: 3 }, perms).result).row_count, 3);
      const e3 = await hostError(run({ sql }, perms, { limits: { maxResponseBytes: 40 } }).result);
      assert.equal(e3.code, 'too_large');
      assert.match(e3.message, /40 bytes/);
    });

    it('never shows the datasource URL: not in answers, not in any error message', async () => {
      const password = 'Pw-s3cret-7f6e';
      const u = new URL(db.url);
      u.port = String(await closedPort());
      u.password = password;
      const down = u.toString();
      const messages: string[] = [];
      const refused = await hostError(run({ sql: 'SELECT 1 AS one' }, [read('crm')], { variables: { crm: down } }).result);
      assert.equal(refused.code, 'upstream_error');
      assert.match(refused.message, /datasource 'crm': cannot connect/);
      messages.push(refused.message);
      const missing = await hostError(run({ sql: 'SELECT 1' }, [read(null)], { variables: {} }).result);
      assert.equal(missing.code, 'not_found');
      const notUrl = await hostError(run({ sql: 'SELECT 1' }, [read(null)], { variables: { crm: 'token-Zq9-not-a-url' } }).result);
      assert.equal(notUrl.code, 'not_found');
      assert.equal(notUrl.message, missing.message, 'a variable that is not a datasource reads like a missing one');
      messages.push(missing.message, notUrl.message);
      const sqlErr = await hostError(run({ sql: 'SELECT nope FROM customers' }, [read(null)]).result);
      assert.equal(sqlErr.code, 'upstream_error');
      messages.push(sqlErr.message);
      const egress = await hostError(
        run({ sql: 'SELECT 1' }, [read(null)], { variables: { crm: `${isPg ? 'postgresql' : 'mysql'}://admin:${password}@169.254.169.254:5432/db` } }).result,
      );
      assert.equal(egress.code, 'egress_denied');
      messages.push(egress.message);
      if (kind !== 'pglite') {
        const bad = new URL(db.url);
        bad.password = password;
        const auth = await hostError(run({ sql: 'SELECT 1 AS one' }, [read('crm')], { variables: { crm: bad.toString() } }).result);
        assert.equal(auth.code, 'upstream_error');
        assert.match(auth.message, /credentials/);
        messages.push(auth.message);
      }
      const host = new URL(db.url).host;
      for (const m of messages) {
        for (const s of [password, down, db.url, host, 'token-Zq9', '169.254.169.254']) assert.ok(!m.includes(s), `'${m}' must not contain '${s}'`);
      }
    });

    it('refuses malformed requests with bad_request naming the field', async () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ datasource: 3, sql: 'SELECT 1' }, /^datasource:/],
        [{ datasource: '../x', sql: 'SELECT 1' }, /^datasource:/],
        [{ sql: 7 }, /^sql:/],
        [{ sql: 'SELECT 1', params: 'x' }, /^params:/],
        [{ sql: 'SELECT 1', max_rows: 0 }, /^max_rows:/],
        [{ sql: 'SELECT 1', max_rows: 'all' }, /^max_rows:/],
        [{ sql: 'SELECT 1', dsn: 'postgres://x' }, /^dsn: is not a db_query field/],
      ];
      for (const [req, re] of cases) {
        const e = await hostError(run(req, [read(null)]).result);
        assert.equal(e.code, 'bad_request', JSON.stringify(req));
        assert.match(e.message, re);
      }
    });

    if (kind !== 'pglite') {
      // PGlite runs in this process: a sleeping statement would block the test itself.
      const sleep = (marker: string, s: number) => (isPg ? `SELECT pg_sleep(${s}) AS ${marker}` : `SELECT SLEEP(${s}) AS ${marker}`);
      const running = (marker: string) =>
        isPg
          ? db.sql(`SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()`, [`%${marker}%`])
          : db.sql(`SELECT id FROM information_schema.processlist WHERE info LIKE ? AND id <> CONNECTION_ID()`, [`%${marker}%`]);

      it('cancels the statement on the server when the call outlives limits.maxCallMs', async () => {
        const marker = `vecron_hostq_${Date.now()}`;
        const t0 = Date.now();
        const e = await hostError(run({ sql: sleep(marker, 30) }, [read('crm')], { limits: { maxCallMs: 500 } }).result);
        assert.equal(e.code, 'timeout');
        assert.ok(Date.now() - t0 < 5000);
        await waitFor(async () => (await running(marker)).length === 0, 'the statement to stop on the server', 10_000);
        assert.equal((await run({ sql: 'SELECT 1 AS ok' }, [read('crm')]).result).rows[0].ok, 1, 'the pooled connection is still usable');
      });

      it('cancels the statement on the server when the run is stopped', async () => {
        const marker = `vecron_hostabort_${Date.now()}`;
        const ac = new AbortController();
        setTimeout(() => ac.abort(new Error('run cancelled')), 300);
        const e = await hostError(run({ sql: sleep(marker, 30) }, [read('crm')], { signal: ac.signal }).result);
        assert.equal(e.code, 'cancelled');
        await waitFor(async () => (await running(marker)).length === 0, 'the statement to stop on the server', 10_000);
      });
    }
  });
});
