import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  INLINE_MYSQL_CHARS,
  classifySql,
  closeSqlParsers,
  loadSqlParsers,
  setMysqlParseTimeout,
  type SqlDialect,
} from '../../../src/wasm/host/sql-classify.ts';
import { HostCallError } from '../../../src/wasm/host/types.ts';

const tables = async (d: SqlDialect, sql: string) => {
  const c = await classifySql(d, sql);
  return { writes: c.writes, verb: c.verb, tables: Object.fromEntries([...c.tables].map(([k, v]) => [k, [...v].sort().join('+')])) };
};
const refused = (d: SqlDialect, sql: string, re: RegExp) =>
  assert.rejects(
    classifySql(d, sql),
    (e: any) => {
      assert.ok(e instanceof HostCallError, String(e));
      assert.equal(e.code, 'bad_request');
      assert.match(e.message, re);
      return true;
    },
    sql,
  );

before(() => loadSqlParsers());
after(() => closeSqlParsers());

describe('SQL classification: PostgreSQL (libpg-query)', () => {
  it('reports every table with how it is used', async () => {
    assert.deepEqual(await tables('postgresql', 'SELECT * FROM crm.customers c JOIN orders o ON o.cid = c.id WHERE c.id = $1'), {
      writes: false,
      verb: 'select',
      tables: { 'crm.customers': 'read', orders: 'read' },
    });
    assert.deepEqual(
      (await tables('postgresql', 'INSERT INTO tiers (id, tier) SELECT id, $1 FROM customers ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier')).tables,
      {
        tiers: 'write',
        customers: 'read',
      },
    );
    assert.deepEqual((await tables('postgresql', 'UPDATE t SET a = 1 FROM u WHERE t.id = u.id RETURNING t.*')).tables, { t: 'read+write', u: 'read' });
    assert.deepEqual((await tables('postgresql', 'DELETE FROM t USING u WHERE t.id = u.id')).tables, { t: 'write', u: 'read' });
    assert.deepEqual((await tables('postgresql', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a')).tables, {
      t: 'write',
      s: 'read',
    });
    assert.deepEqual((await tables('postgresql', 'SELECT * FROM "Mixed"."Case"')).tables, { 'Mixed.Case': 'read' });
    assert.deepEqual((await tables('postgresql', 'TABLE t')).tables, { t: 'read' });
    assert.deepEqual((await tables('postgresql', 'SELECT * FROM json_to_recordset($1::json) AS r(id int)')).tables, {});
  });

  it('scopes CTE names: a CTE is not a table, but the table it shadows inside its own body is', async () => {
    assert.deepEqual((await tables('postgresql', 'WITH x AS (SELECT id FROM a) SELECT * FROM x JOIN b ON true')).tables, { a: 'read', b: 'read' });
    assert.deepEqual((await tables('postgresql', 'WITH customers AS (SELECT * FROM customers) SELECT * FROM customers')).tables, { customers: 'read' });
    assert.deepEqual((await tables('postgresql', 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r')).tables, {});
    // A CTE is visible in its subqueries, not outside its statement.
    assert.deepEqual((await tables('postgresql', 'SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) q, x')).tables, { x: 'read' });
    // A data-modifying CTE makes the statement a write.
    const dm = await tables('postgresql', 'WITH d AS (DELETE FROM a RETURNING *) SELECT * FROM d');
    assert.equal(dm.writes, true);
    assert.deepEqual(dm.tables, { a: 'read+write' });
  });

  it('refuses what db_query does not run', async () => {
    await refused('postgresql', 'SELECT 1; SELECT 2', /2 statements/);
    await refused('postgresql', 'DROP TABLE x', /DDL \(DropStmt\)/);
    await refused('postgresql', 'CREATE INDEX i ON t (a)', /DDL/);
    await refused('postgresql', 'SET search_path = evil', /VariableSetStmt/);
    await refused('postgresql', 'COPY t TO STDOUT', /CopyStmt/);
    await refused('postgresql', 'EXPLAIN ANALYZE DELETE FROM t', /ExplainStmt/);
    await refused('postgresql', 'BEGIN', /TransactionStmt/);
    await refused('postgresql', 'DO $$ BEGIN DELETE FROM t; END $$', /DoStmt/);
    await refused('postgresql', 'SELECT * INTO n FROM t', /INTO/);
    await refused('postgresql', 'SELECT * FROM t FOR UPDATE', /locking/);
    await refused('postgresql', "SELECT query_to_xml('select * from secret', true, false, '')", /query_to_xml/);
    await refused('postgresql', 'SELECT pg_catalog.set_config($1, $2, false)', /set_config/);
    await refused('postgresql', "SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)", /dblink/);
    await refused('postgresql', 'SELECT pg_advisory_lock(1)', /pg_advisory_lock/);
    await refused('postgresql', 'SELECT * FROM "a/b"', /contains '\/'/);
    await refused('postgresql', 'SELEC 1', /syntax error/);
    await refused('postgresql', '   ', /non-empty/);
  });
});

describe('SQL classification: nothing can turn a read-only transaction off', () => {
  // Reads run inside BEGIN TRANSACTION READ ONLY, sent in one batch with the statement: a statement
  // that ended the transaction, changed its mode or the session's default would let a later part of
  // the same call, or the next call on the pooled connection, write.
  const OFF = [
    'SET TRANSACTION READ WRITE',
    'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE',
    'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    'SET default_transaction_read_only = off',
    'SET LOCAL transaction_read_only = off',
    'RESET ALL',
    'RESET default_transaction_read_only',
    'COMMIT',
    'ROLLBACK',
    'END',
    'ABORT',
    'START TRANSACTION READ WRITE',
    'BEGIN READ WRITE',
    'SAVEPOINT s',
    'PREPARE TRANSACTION $$x$$',
    'DISCARD ALL',
  ];
  for (const sql of OFF) {
    it(`refuses ${sql}`, () => refused('postgresql', sql, /not|refused|DDL|Stmt/));
  }
  it('refuses set_config however it is named or nested', async () => {
    await refused('postgresql', "SELECT set_config('default_transaction_read_only', 'off', false)", /set_config/);
    await refused('postgresql', "SELECT pg_catalog.set_config('transaction_read_only', 'off', true)", /set_config/);
    await refused('postgresql', "SELECT id FROM t WHERE (SELECT set_config('x', 'y', false)) IS NOT NULL", /set_config/);
    await refused('postgresql', "WITH c AS (SELECT set_config('x', 'y', false) AS v) SELECT v FROM c", /set_config/);
  });
  it('answers a statement seen before from the cache, and refuses a refused one again', async () => {
    const sql = 'SELECT id, name FROM customers WHERE id = $1';
    const a = await tables('postgresql', sql);
    const b = await tables('postgresql', sql);
    assert.deepEqual(b, a);
    assert.deepEqual(a.tables, { customers: 'read' });
    assert.equal(await classifySql('postgresql', sql), await classifySql('postgresql', sql), 'the same classification, not parsed again');
    for (let i = 0; i < 2; i++) await refused('postgresql', 'SET TRANSACTION READ WRITE', /VariableSetStmt/);
    // Another dialect's answer is its own.
    await refused('mysql', 'SELECT id FROM t WHERE id = $1 ;; SELECT 2', /statements|can check/);
  });
});

describe('SQL classification: MySQL/MariaDB (node-sql-parser)', () => {
  it('reports every table with how it is used', async () => {
    assert.deepEqual(await tables('mysql', 'SELECT * FROM customers c JOIN db2.orders o ON o.cid = c.id WHERE c.id = ?'), {
      writes: false,
      verb: 'select',
      tables: { customers: 'read', 'db2.orders': 'read' },
    });
    assert.deepEqual((await tables('mysql', 'UPDATE t JOIN u ON t.id = u.id SET t.a = u.a')).tables, { t: 'write', u: 'read' });
    assert.deepEqual((await tables('mysql', 'DELETE FROM t WHERE id = ? RETURNING *')).tables, { t: 'read+write' });
    assert.deepEqual(await tables('mysql', 'REPLACE INTO t VALUES (?)'), { writes: true, verb: 'replace', tables: { t: 'write' } });
    assert.deepEqual((await tables('mysql', 'WITH x AS (SELECT id FROM a) SELECT * FROM x JOIN b ON x.id = b.id')).tables, { a: 'read', b: 'read' });
    assert.deepEqual((await tables('mysql', 'WITH customers AS (SELECT * FROM customers) SELECT * FROM customers')).tables, { customers: 'read' });
  });

  it('refuses what db_query does not run', async () => {
    await refused('mysql', 'SELECT 1; SELECT 2', /2 statements/);
    await refused('mysql', 'DROP TABLE x', /DDL \(DROP\)/);
    await refused('mysql', 'SET @x = 1', /SET/);
    await refused('mysql', 'SELECT * FROM t /*!50000 UNION SELECT * FROM secret */', /executable comments/);
    await refused('mysql', 'SELECT * FROM t /*M!100000 UNION SELECT * FROM secret */', /executable comments/);
    await refused('mysql', 'SELECT * FROM t INTO OUTFILE "/tmp/x"', /INTO/);
    await refused('mysql', 'SELECT a INTO @v FROM t', /INTO/);
    await refused('mysql', 'SELECT @a := 1', /session variables/);
    await refused('mysql', 'SELECT * FROM t FOR UPDATE', /locking/);
    await refused('mysql', 'SELECT LOAD_FILE("/etc/passwd")', /LOAD_FILE/);
    await refused('mysql', 'SELECT GET_LOCK("x", 1)', /GET_LOCK/);
    await refused('mysql', 'CALL p(?)', /can check/);
    await refused('mysql', 'SELECT * FROM `a/b`', /contains '\/'/);
  });
});

describe('SQL classification: long and deep statements', () => {
  const sum = (n: number) => Array.from({ length: n }, (_, i) => `a${i}`).join(' + ');

  it('parses long MySQL statements in their own thread, with the same answer', async () => {
    const sql = `SELECT ${sum(120)} AS s FROM customers c JOIN salaries s ON s.id = c.id WHERE c.id IN (SELECT id FROM vip)`;
    assert.ok(sql.length > INLINE_MYSQL_CHARS);
    assert.deepEqual((await tables('mysql', sql)).tables, { customers: 'read', salaries: 'read', vip: 'read' });
    await refused('mysql', `SELECT ${sum(120)} FROM t; DROP TABLE t`, /2 statements/);
    await refused('mysql', `SELECT ${sum(120)} FROM t WHERE (`, /can check/);
  });

  it('stops a MySQL parse that takes too long, refuses the statement, and serves the next one', async () => {
    setMysqlParseTimeout(1);
    try {
      await refused('mysql', `SELECT ${sum(300)} FROM t`, /too complex to check within 1 ms/);
    } finally {
      setMysqlParseTimeout(null);
    }
    assert.deepEqual((await tables('mysql', `SELECT ${sum(100)} FROM t`)).tables, { t: 'read' });
  });

  it('refuses statements nested deeper than the walk allows, and statements over 64 KiB', async () => {
    await refused('postgresql', `SELECT ${sum(3000)} FROM t`, /nested more than 1000 levels/);
    await refused('postgresql', `SELECT 1 FROM t WHERE ${'x = 1 OR '.repeat(8000)} true`, /at most 65536 characters/);
  });
});
