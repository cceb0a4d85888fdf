/**
 * The claim reads what it returns, not the backlog (migration 020). Its ORDER BY run_at,
 * created_at LIMIT n is served by an index in that order, so claiming 3 executions from a backlog
 * of hundreds reads about 3 rows. Before, the index held run_at only: PostgreSQL read every due
 * row and sorted them, and each claim cost more the longer the queue grew (issue 13's benchmark).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/db/database.ts';
import { enqueueExecution } from '../../src/state/enqueue.ts';
import { claimExecutions } from '../../src/state/claim.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';
import { claimStatement, type PlanNode, walk } from '../helpers/plans.ts';
import { makeJob } from '../helpers/jobs.ts';

const BACKLOG = 300;
const CLAIM = 3;

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: claiming from a long queue`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(async () => {
      await db.close();
    });

    it(`reads about ${CLAIM} queued rows to claim ${CLAIM} of ${BACKLOG}, and takes the oldest`, async () => {
      const job = await makeJob(db, { steps: [{ id: 'only', type: 'http', config: { url: 'http://127.0.0.1:9/' } }] });
      for (let i = 0; i < BACKLOG; i += 50) {
        await Promise.all(Array.from({ length: 50 }, () => enqueueExecution(db, job, { trigger: { type: 'manual', time: new Date().toISOString() } })));
      }
      await db.exec('ANALYZE executions');
      const sql = await claimStatement();
      // EXPLAIN ANALYZE runs the claim: inside a transaction that is rolled back, so nothing is claimed.
      const plan = await db
        .transaction(async (tx) => {
          const { rows } = await tx.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, ['w', CLAIM, 60, 0]);
          throw Object.assign(new Error('rollback'), { plan: rows[0]['QUERY PLAN'][0].Plan });
        })
        .catch((err: { plan?: PlanNode }) => {
          if (!err.plan) throw err;
          return err.plan;
        });
      const scans = [...walk(plan)].filter((n) => n['Relation Name'] === 'executions' && n.Alias === 'e');
      assert.ok(scans.length > 0, 'the candidates scan is in the plan');
      const read = scans.reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
      assert.ok(read <= CLAIM + 2, `the claim read ${read} queued rows to return ${CLAIM}`);

      // And what it claims is the head of the queue, in order.
      const claimed = await claimExecutions(db, 'w', CLAIM, 60);
      const order = await db.query<{ id: string }>('SELECT id FROM executions WHERE job_id = $1 ORDER BY run_at, created_at LIMIT $2', [job.id, CLAIM]);
      assert.deepEqual(
        claimed.map((c) => c.id),
        order.rows.map((r) => r.id),
      );
    });
  });
});
