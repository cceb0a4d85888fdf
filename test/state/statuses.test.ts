import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/db/database.ts';
import { EXECUTION_STATUSES, EXECUTION_TRANSITIONS, FINAL_EXECUTION_STATUSES, STEP_STATUSES, STEP_TRANSITIONS, sqlList } from '../../src/state/statuses.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';

/** The values a `CHECK (status IN (...))` constraint allows, read from the database's catalog. */
async function allowedByCheck(db: Database, table: string, column: string): Promise<string[]> {
  const { rows } = await db.query<{ def: string }>(
    `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
     WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%' || $2 || '%'`,
    [table, column],
  );
  assert.equal(rows.length, 1, `one CHECK constraint on ${table}.${column}`);
  return [...rows[0].def.matchAll(/'([^']+)'::text/g)].map((m) => m[1]).sort();
}

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: the status lists of src/state hold against the schema`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(async () => {
      await db?.close();
    });

    it('EXECUTION_STATUSES is exactly what executions.status allows', async () => {
      assert.deepEqual(await allowedByCheck(db, 'executions', 'status'), [...EXECUTION_STATUSES].sort());
    });

    it('STEP_STATUSES is exactly what step_runs.status allows', async () => {
      assert.deepEqual(await allowedByCheck(db, 'step_runs', 'status'), [...STEP_STATUSES].sort());
    });

    it('a status outside the lists is refused by the database', async () => {
      const job = (await db.query<{ id: string }>(`INSERT INTO jobs (name, definition) VALUES ('status-check', '{}') RETURNING id`)).rows[0];
      await assert.rejects(
        db.query(`INSERT INTO executions (job_id, job_version, job_snapshot, trigger_type, status) VALUES ($1, 1, '{}', 'manual', 'paused')`, [job.id]),
        /check constraint/,
      );
    });
  });
});

describe('the transitions, as data', () => {
  it('start and end in listed statuses; every status but queued is reached by some transition', () => {
    const reached = new Set<string>();
    for (const [name, t] of Object.entries(EXECUTION_TRANSITIONS)) {
      assert.ok((EXECUTION_STATUSES as readonly string[]).includes(t.to), `${name}.to`);
      for (const f of t.from) assert.ok(f === null || (EXECUTION_STATUSES as readonly string[]).includes(f), `${name}.from ${f}`);
      reached.add(t.to);
    }
    assert.deepEqual([...reached].sort(), [...EXECUTION_STATUSES].sort());
    for (const [name, t] of Object.entries(STEP_TRANSITIONS)) {
      assert.ok((STEP_STATUSES as readonly string[]).includes(t.to), `step ${name}.to`);
      for (const f of t.from) assert.ok(f === null || (STEP_STATUSES as readonly string[]).includes(f), `step ${name}.from ${f}`);
    }
  });

  it('no transition leaves a final status except the operator retry of a failed or dead-lettered execution', () => {
    for (const [name, t] of Object.entries(EXECUTION_TRANSITIONS)) {
      const leavesFinal = t.from.some((f) => f !== null && (FINAL_EXECUTION_STATUSES as readonly string[]).includes(f));
      assert.equal(leavesFinal, name === 'operator_retry', name);
    }
    assert.deepEqual([...EXECUTION_TRANSITIONS.operator_retry.from].sort(), ['dead_lettered', 'failed']);
  });

  it('sqlList quotes statuses for SQL and refuses anything that is not a status name', () => {
    assert.equal(sqlList(['queued', null, 'running']), `'queued', 'running'`);
    assert.throws(() => sqlList([`x'; DROP TABLE jobs; --`]), /not a status/);
  });
});
