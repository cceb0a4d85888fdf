import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifySql, loadSqlParsers, type SqlDialect } from '../../../src/wasm/host/sql-classify.ts';
import { HostCallError } from '../../../src/wasm/host/types.ts';

const tables = (d: SqlDialect, sql: string) => {
  const c = classifySql(d, sql);
  return { writes: c.writes, verb: c.verb, tables: Object.fromEntries([...c.tables].map(([k, v]) => [k, [...v].sort().join('+')])) };
};
const refused = (d: SqlDialect, sql: string, re: RegExp) =>
  assert.throws(
    () => classifySql(d, sql),
    (e: any) => {
      assert.ok(e instanceof HostCallError, String(e));
      assert.equal(e.code, 'bad_request');
      assert.match(e.message, re);
      return true;
    },
    sql,
  );

before(() => loadSqlParsers());

describe('SQL classification: PostgreSQL (libpg-query)', () => {
  it('reports every table with how it is used', () => {
    assert.deepEqual(tables('postgresql', 'SELECT * FROM crm.customers c JOIN orders o ON o.cid = c.id WHERE c.id = $1'), {
      writes: false,
      verb: 'select',
      tables: { 'crm.customers': 'read', orders: 'read' },
    });
    assert.deepEqual(
      tables('postgresql', 'INSERT INTO tiers (id, tier) SELECT id, $1 FROM customers ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier').tables,
      {
        tiers: 'write',
        customers: 'read',
      },
    );
    assert.deepEqual(tables('postgresql', 'UPDATE t SET a = 1 FROM u WHERE t.id = u.id RETURNING t.*').tables, { t: 'read+write', u: 'read' });
    assert.deepEqual(tables('postgresql', 'DELETE FROM t USING u WHERE t.id = u.id').tables, { t: 'write', u: 'read' });
    assert.deepEqual(tables('postgresql', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a').tables, { t: 'write', s: 'read' });
    assert.deepEqual(tables('postgresql', 'SELECT * FROM "Mixed"."Case"').tables, { 'Mixed.Case': 'read' });
    assert.deepEqual(tables('postgresql', 'TABLE t').tables, { t: 'read' });
    assert.deepEqual(tables('postgresql', 'SELECT * FROM json_to_recordset($1::json) AS r(id int)').tables, {});
  });

  it('scopes CTE names: a CTE is not a table, but the table it shadows inside its own body is', () => {
    assert.deepEqual(tables('postgresql', 'WITH x AS (SELECT id FROM a) SELECT * FROM x JOIN b ON true').tables, { a: 'read', b: 'read' });
    assert.deepEqual(tables('postgresql', 'WITH customers AS (SELECT * FROM customers) SELECT * FROM customers').tables, { customers: 'read' });
    assert.deepEqual(tables('postgresql', 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r').tables, {});
    // A CTE is visible in its subqueries, not outside its statement.
    assert.deepEqual(tables('postgresql', 'SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) q, x').tables, { x: 'read' });
    // A data-modifying CTE makes the statement a write.
    const dm = tables('postgresql', 'WITH d AS (DELETE FROM a RETURNING *) SELECT * FROM d');
    assert.equal(dm.writes, true);
    assert.deepEqual(dm.tables, { a: 'read+write' });
  });

  it('refuses what db_query does not run', () => {
    refused('postgresql', 'SELECT 1; SELECT 2', /2 statements/);
    refused('postgresql', 'DROP TABLE x', /DDL \(DropStmt\)/);
    refused('postgresql', 'CREATE INDEX i ON t (a)', /DDL/);
    refused('postgresql', 'SET search_path = evil', /VariableSetStmt/);
    refused('postgresql', 'COPY t TO STDOUT', /CopyStmt/);
    refused('postgresql', 'EXPLAIN ANALYZE DELETE FROM t', /ExplainStmt/);
    refused('postgresql', 'BEGIN', /TransactionStmt/);
    refused('postgresql', 'DO $$ BEGIN DELETE FROM t; END $$', /DoStmt/);
    refused('postgresql', 'SELECT * INTO n FROM t', /INTO/);
    refused('postgresql', 'SELECT * FROM t FOR UPDATE', /locking/);
    refused('postgresql', "SELECT query_to_xml('select * from secret', true, false, '')", /query_to_xml/);
    refused('postgresql', 'SELECT pg_catalog.set_config($1, $2, false)', /set_config/);
    refused('postgresql', "SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)", /dblink/);
    refused('postgresql', 'SELECT pg_advisory_lock(1)', /pg_advisory_lock/);
    refused('postgresql', 'SELECT * FROM "a/b"', /contains '\/'/);
    refused('postgresql', 'SELEC 1', /syntax error/);
    refused('postgresql', '   ', /non-empty/);
  });
});

describe('SQL classification: MySQL/MariaDB (node-sql-parser)', () => {
  it('reports every table with how it is used', () => {
    assert.deepEqual(tables('mysql', 'SELECT * FROM customers c JOIN db2.orders o ON o.cid = c.id WHERE c.id = ?'), {
      writes: false,
      verb: 'select',
      tables: { customers: 'read', 'db2.orders': 'read' },
    });
    assert.deepEqual(tables('mysql', 'UPDATE t JOIN u ON t.id = u.id SET t.a = u.a').tables, { t: 'write', u: 'read' });
    assert.deepEqual(tables('mysql', 'DELETE FROM t WHERE id = ? RETURNING *').tables, { t: 'read+write' });
    assert.deepEqual(tables('mysql', 'REPLACE INTO t VALUES (?)'), { writes: true, verb: 'replace', tables: { t: 'write' } });
    assert.deepEqual(tables('mysql', 'WITH x AS (SELECT id FROM a) SELECT * FROM x JOIN b ON x.id = b.id').tables, { a: 'read', b: 'read' });
    assert.deepEqual(tables('mysql', 'WITH customers AS (SELECT * FROM customers) SELECT * FROM customers').tables, { customers: 'read' });
  });

  it('refuses what db_query does not run', () => {
    refused('mysql', 'SELECT 1; SELECT 2', /2 statements/);
    refused('mysql', 'DROP TABLE x', /DDL \(DROP\)/);
    refused('mysql', 'SET @x = 1', /SET/);
    refused('mysql', 'SELECT * FROM t /*!50000 UNION SELECT * FROM secret */', /executable comments/);
    refused('mysql', 'SELECT * FROM t /*M!100000 UNION SELECT * FROM secret */', /executable comments/);
    refused('mysql', 'SELECT * FROM t INTO OUTFILE "/tmp/x"', /INTO/);
    refused('mysql', 'SELECT a INTO @v FROM t', /INTO/);
    refused('mysql', 'SELECT @a := 1', /session variables/);
    refused('mysql', 'SELECT * FROM t FOR UPDATE', /locking/);
    refused('mysql', 'SELECT LOAD_FILE("/etc/passwd")', /LOAD_FILE/);
    refused('mysql', 'SELECT GET_LOCK("x", 1)', /GET_LOCK/);
    refused('mysql', 'CALL p(?)', /can check/);
    refused('mysql', 'SELECT * FROM `a/b`', /contains '\/'/);
  });
});
