import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Database, Queryable } from '../../src/db/database.ts';
import { enqueueExecution as enqueue } from '../../src/state/enqueue.ts';
import { claimExecutions } from '../../src/state/claim.ts';
import { SuccessWriter } from '../../src/queue/success-writer.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';
import { makeJob } from '../helpers/jobs.ts';

const manual = () => ({ trigger: { type: 'manual' as const, time: new Date().toISOString() } });

/** Counts the statements that reach the database through it. */
function counting(db: Database): Queryable & { statements: number } {
  const q = {
    statements: 0,
    query: (sql: string, params?: unknown[]) => {
      q.statements++;
      return db.query(sql, params);
    },
  };
  return q as unknown as Queryable & { statements: number };
}

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: success writer (group commit of finished executions)`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(async () => {
      await db.close();
    });

    it('writes successes that arrive while a write is under way together, each with its step result and fence', async () => {
      const job = await makeJob(db, { steps: [{ id: 'only', type: 'http', config: { url: 'http://127.0.0.1:9/' } }] });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await enqueue(db, job, manual()))!);
      const mine = await claimExecutions(db, 'worker-a', 5, 60);
      const theirs = await claimExecutions(db, 'worker-b', 5, 60);
      assert.equal(mine.length + theirs.length, 6);
      assert.ok(theirs.length >= 1);

      const q = counting(db);
      const writer = new SuccessWriter(q, 'worker-a');
      const at = new Date('2026-01-02T03:04:05.678Z');
      // One of worker-b's executions is recorded through worker-a's writer: the fence must refuse it.
      const items = [...mine, theirs[0]].map((e, i) => ({
        executionId: e.id,
        lastStep: { stepId: 'only', completedAt: at, outputJson: JSON.stringify({ n: i }) },
        contextJson: JSON.stringify({ variables: { i } }),
      }));
      const owned = await Promise.all(items.map((item) => writer.record(item)));

      assert.deepEqual(owned, [...mine.map(() => true), false]);
      // The first success goes alone; the others, queued behind it, go in one more statement.
      assert.equal(q.statements, 2);
      for (const [i, e] of mine.entries()) {
        const row = (await db.query<any>('SELECT status, locked_by, context FROM executions WHERE id = $1', [e.id])).rows[0];
        assert.equal(row.status, 'succeeded');
        assert.equal(row.locked_by, null);
        assert.deepEqual(row.context, { variables: { i } });
        const step = (await db.query<any>('SELECT status, output, completed_at FROM step_runs WHERE execution_id = $1', [e.id])).rows[0];
        assert.equal(step.status, 'succeeded');
        assert.deepEqual(step.output, { n: i });
        assert.equal(new Date(step.completed_at).toISOString(), at.toISOString());
      }
      const other = (await db.query<any>('SELECT status, locked_by FROM executions WHERE id = $1', [theirs[0].id])).rows[0];
      assert.deepEqual(other, { status: 'running', locked_by: 'worker-b' });
      const otherStep = (await db.query<any>('SELECT status, output FROM step_runs WHERE execution_id = $1', [theirs[0].id])).rows[0];
      assert.deepEqual(otherStep, { status: 'running', output: null });
    });

    it('rejects every waiting success when its statement fails, and keeps working afterwards', async () => {
      const job = await makeJob(db, { steps: [{ id: 'only', type: 'http', config: { url: 'http://127.0.0.1:9/' } }] });
      const id = (await enqueue(db, job, manual()))!;
      const [claimed] = await claimExecutions(db, 'worker-c', 1, 60);
      assert.equal(claimed.id, id);
      const writer = new SuccessWriter(db, 'worker-c');
      const bad = { executionId: id, lastStep: { stepId: 'only', completedAt: new Date(), outputJson: '{not json' } };
      await assert.rejects(writer.record(bad), /json/i);
      const good = { executionId: id, lastStep: { stepId: 'only', completedAt: new Date(), outputJson: '{"ok":true}' } };
      assert.equal(await writer.record(good), true);
    });
  });
});
