/**
 * Table upkeep (src/db/upkeep.ts): the busy tables are analyzed as they grow (on PGlite, where
 * autovacuum never runs, vacuumed and analyzed), so that cached plans are rebuilt with statistics
 * that match the tables. On PostgreSQL this is what turns the claim's generic plan, made while
 * `step_runs` was empty (a sequential scan of it), into one that reads it by index.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/db/database.ts';
import { enqueueExecution } from '../../src/state/enqueue.ts';
import { claimExecutions } from '../../src/state/claim.ts';
import { needsAnalyze, runUpkeep, startTableUpkeep, tableSizes, UPKEEP_TABLES } from '../../src/db/upkeep.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';
import { claimStatement, type PlanNode, walk } from '../helpers/plans.ts';
import { makeJob } from '../helpers/jobs.ts';

const GROWTH = 600;

const seqScansOf = (plan: PlanNode, table: string) => [...walk(plan)].filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === table).length;

/** `n` executions through the queue: enqueued, claimed (a step row each), then marked done. */
async function grow(db: Database, n: number): Promise<void> {
  const job = await makeJob(db, { steps: [{ id: 'only', type: 'http', config: { url: 'http://127.0.0.1:9/' } }] });
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: 50 }, () => enqueueExecution(db, job, { trigger: { type: 'manual', time: new Date().toISOString() } })));
    while ((await claimExecutions(db, 'grow', 50, 60)).length > 0);
    await db.query("UPDATE executions SET status = 'succeeded', finished_at = now(), locked_by = NULL WHERE locked_by = 'grow'");
  }
}

const reltuples = async (db: Database, table: string) =>
  Number((await db.query<{ n: number }>('SELECT reltuples AS n FROM pg_class WHERE oid = to_regclass($1)', [table])).rows[0].n);

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: table upkeep`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
      // What is asserted is this module's work: PostgreSQL's autovacuum must not analyze the tables meanwhile.
      for (const t of UPKEEP_TABLES) await db.exec(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
    });
    after(async () => {
      await db.close();
    });

    it('analyzes the tables that grew since their statistics (twice their size; on PGlite a fifth, and vacuums them too), and only those', async () => {
      await grow(db, GROWTH);
      const before = await tableSizes(db);
      const grown = before.filter((t) => needsAnalyze(t, kind)).map((t) => t.table);
      assert.ok(grown.includes('executions') && grown.includes('step_runs'), `grown: ${JSON.stringify(before)}`);
      assert.ok(!grown.includes('wasm_execution_logs'), 'an untouched table is left alone');
      assert.ok((await reltuples(db, 'step_runs')) < GROWTH / 2, 'no statistics of the grown step_runs yet');

      const run = await runUpkeep(db);
      assert.deepEqual([...run.tables].sort(), [...grown].sort());
      assert.ok((await reltuples(db, 'step_runs')) >= GROWTH * 0.9, 'step_runs analyzed: the planner now knows its rows');
      assert.ok((await reltuples(db, 'executions')) >= GROWTH * 0.9);
      assert.deepEqual(
        (await tableSizes(db)).filter((t) => needsAnalyze(t, kind)),
        [],
        'nothing left to do',
      );
      assert.deepEqual((await runUpkeep(db)).tables, [], 'a second round does nothing');
      if (kind === 'pglite') {
        // Reported by VACUUM itself (n_dead_tup is not: the UPDATEs' counts may be flushed after it).
        const { rows } = await db.query<{ last_vacuum: Date | null; vacuum_count: number }>(
          "SELECT last_vacuum, vacuum_count FROM pg_stat_user_tables WHERE relname IN ('executions', 'step_runs') ORDER BY relname",
        );
        assert.equal(rows.length, 2);
        for (const r of rows) {
          assert.ok(r.last_vacuum, 'PGlite: vacuumed');
          assert.equal(Number(r.vacuum_count), 1, 'PGlite: vacuumed once');
        }
      }
    });

    it('runs by itself at its interval and reports what it did', async () => {
      // Past twice the size of the first test's tables (on PGlite, more than the space its VACUUM freed: two dead row versions per execution).
      await grow(db, 3 * GROWTH);
      const runs: string[][] = [];
      const errors: unknown[] = [];
      const stop = startTableUpkeep(
        db,
        50,
        (e) => errors.push(e),
        (r) => runs.push(r.tables),
      );
      const until = Date.now() + 10_000;
      while (runs.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await stop();
      assert.deepEqual(errors, []);
      assert.ok(runs.length >= 1 && runs[0].includes('executions'), `runs: ${JSON.stringify(runs)}`);
    });

    if (kind === 'postgres') {
      it("rebuilds the claim's cached plan: made on an empty step_runs it scans it whole, after upkeep it does not", async () => {
        // A fresh database of its own, so that the plan is made while step_runs is empty (as on a new installation).
        const fresh = await openTestDb(kind);
        try {
          // Autovacuum must not analyze the tables in the middle of the test (it would rebuild the plan itself).
          for (const t of ['executions', 'step_runs', 'status_events']) await fresh.exec(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
          const sql = await claimStatement();
          await fresh.withSession(async (s) => {
            // The generic plan is what a named statement runs after its first executions (src/db/postgres.ts).
            await s.exec('SET plan_cache_mode = force_generic_plan');
            await s.exec(`PREPARE upkeep_claim(text, int, int, float8) AS ${sql}`);
            const plan = async () =>
              (await s.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>("EXPLAIN (FORMAT JSON) EXECUTE upkeep_claim('w', 3, 60, 0)")).rows[0]['QUERY PLAN'][0]
                .Plan;
            assert.ok(seqScansOf(await plan(), 'step_runs') > 0, 'made on an empty table, the plan reads step_runs whole');
            await grow(fresh, GROWTH);
            assert.ok(seqScansOf(await plan(), 'step_runs') > 0, 'the cached plan is kept as the table grows');
            const run = await runUpkeep(fresh);
            assert.ok(run.tables.includes('step_runs'), JSON.stringify(run));
            assert.equal(seqScansOf(await plan(), 'step_runs'), 0, 'after upkeep the plan reads step_runs by index');
            await s.exec('DEALLOCATE upkeep_claim');
            await s.exec('RESET plan_cache_mode');
          });
        } finally {
          await fresh.close();
        }
      });
    }
  });
});
