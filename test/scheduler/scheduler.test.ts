import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/db/database.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';
import { makeJob, makeWorker, silentLogger } from '../helpers/jobs.ts';
import { startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: scheduler`, () => {
    let db: Database;
    let server: TestServer;
    before(async () => {
      db = await openTestDb(kind);
      server = await startHttpServer((_r, res) => res.end('ok'));
    });
    after(async () => {
      await db.close();
      await server.close();
    });

    it('fires a */1 second job once per second, with no duplicates and no gaps, while three schedulers run', async () => {
      // Three schedulers, each with its own connection pool when on PostgreSQL (as three processes would).
      const extra: Database[] =
        kind === 'postgres' ? [await openPostgres((db as any).url, { poolSize: 2 }), await openPostgres((db as any).url, { poolSize: 2 })] : [db, db];
      // Fire times are queued up to 1 s ahead (lookahead); a worker must still start none of them early.
      const schedulers = [db, ...extra].map(
        (d, i) => new Scheduler(d, { intervalMs: 200, misfireThresholdMs: 5000, lookaheadMs: 1000, name: `s${i}` }, silentLogger),
      );
      const job = await makeJob(db, {
        schedule: { type: 'cron', expression: '*/1 * * * * *' },
        steps: [{ id: 'a', type: 'http', config: { url: server.url } }],
      });
      const worker = makeWorker(db, { pollIntervalMs: 1000 });
      await worker.start();
      await Promise.all(schedulers.map((s) => s.start()));
      await sleep(4300);
      await Promise.all(schedulers.map((s) => s.stop()));
      await worker.stop(2000);
      for (const d of extra) if (d !== db) await d.close();
      const started = await db.query<{ fire_time: Date; step_started: Date | null }>(
        `SELECT e.fire_time, r.started_at AS step_started FROM executions e JOIN step_runs r ON r.execution_id = e.id WHERE e.job_id = $1`,
        [job.id],
      );
      const ran = started.rows.filter((r) => r.step_started);
      assert.ok(ran.length >= 3, `${ran.length} executions ran`);
      for (const r of ran)
        assert.ok(r.step_started! >= r.fire_time, `step started ${r.step_started!.toISOString()} before its fire time ${r.fire_time.toISOString()}`);
      await db.query(`UPDATE jobs SET enabled = false, version = version + 1 WHERE id = $1`, [job.id]);

      const { rows } = await db.query<{ fire_time: Date; n: number }>(
        `SELECT fire_time, count(*)::int AS n FROM executions WHERE job_id = $1 GROUP BY fire_time ORDER BY fire_time`,
        [job.id],
      );
      assert.ok(rows.length >= 3, `at least 3 fire times in 4.3 s, got ${rows.length}`);
      assert.ok(
        rows.every((r) => r.n === 1),
        'each fire time has exactly one execution',
      );
      for (let i = 1; i < rows.length; i++) {
        assert.equal(rows[i].fire_time.getTime() - rows[i - 1].fire_time.getTime(), 1000, 'consecutive whole seconds, no gap');
      }
      assert.ok(rows.every((r) => r.fire_time.getMilliseconds() === 0));
    });

    it('after downtime, a misfired job runs once (fire_once) or not at all (skip), never a burst', async () => {
      const s = new Scheduler(db, { intervalMs: 200, misfireThresholdMs: 5000 }, silentLogger);
      // Hourly, so that no regular fire time falls between the two rounds below.
      const fireOnce = await makeJob(db, {
        schedule: { type: 'cron', expression: '0 0 * * * *' },
        steps: [{ id: 'a', type: 'http', config: { url: server.url } }],
      });
      const skip = await makeJob(db, {
        misfire_policy: 'skip',
        schedule: { type: 'cron', expression: '0 0 * * * *' },
        steps: [{ id: 'a', type: 'http', config: { url: server.url } }],
      });
      await s.round(); // creates the schedule rows
      // Pretend the whole cluster was down for three hours.
      await db.query(`UPDATE schedules SET next_fire_at = date_trunc('hour', now()) - interval '3 hours' WHERE job_id = ANY($1::uuid[])`, [
        [fireOnce.id, skip.id],
      ]);
      await s.round();
      await s.round();
      const count = async (id: string) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM executions WHERE job_id = $1', [id])).rows[0].n;
      assert.equal(await count(fireOnce.id), 1);
      const ex = await db.query<{ trigger: any }>('SELECT trigger FROM executions WHERE job_id = $1', [fireOnce.id]);
      assert.equal(ex.rows[0].trigger.misfired, true);
      // skip runs none, but the dropped fire times stay visible: one skipped execution with reason misfire
      assert.equal(await count(skip.id), 1);
      const dropped = (await db.query<any>('SELECT * FROM executions WHERE job_id = $1', [skip.id])).rows[0];
      assert.equal(dropped.status, 'skipped');
      assert.equal(dropped.error.code, 'misfire');
      assert.match(dropped.error.message, /^not run: [34] fire times from .* passed more than 5 s ago .*misfire_policy skip/);
      assert.equal(
        dropped.fire_time.getTime(),
        (await db.query<{ t: Date }>(`SELECT date_trunc('hour', now()) - interval '3 hours' AS t`)).rows[0].t.getTime(),
      );
      assert.ok(dropped.finished_at, 'a skipped execution is final');
      const next = await db.query<{ next_fire_at: Date }>('SELECT next_fire_at FROM schedules WHERE job_id = $1', [skip.id]);
      assert.ok(next.rows[0].next_fire_at > new Date(), 'schedule continues from now');
    });

    it('overlap policies: skip records the fire time as skipped, queue runs one at a time in order', async () => {
      const s = new Scheduler(db, { intervalMs: 200, misfireThresholdMs: 5000 }, silentLogger);
      const skipJob = await makeJob(db, {
        overlap_policy: 'skip',
        schedule: { type: 'cron', expression: '*/1 * * * * *' },
        steps: [{ id: 'a', type: 'http', config: { url: server.url } }],
      });
      await s.start();
      await sleep(2600); // no worker runs: the first execution stays queued, later fire times overlap
      await s.stop();
      const rows = (await db.query<{ status: string; error: any }>('SELECT status, error FROM executions WHERE job_id = $1 ORDER BY fire_time', [skipJob.id]))
        .rows;
      assert.ok(rows.length >= 2, `${rows.length} fire times`);
      assert.equal(rows[0].status, 'queued');
      assert.ok(rows.slice(1).every((r) => r.status === 'skipped' && r.error.code === 'overlap_skipped'));

      // queue: three queued serial executions of one job run strictly one after another.
      let inFlight = 0;
      let maxInFlight = 0;
      server.handler = (r, res) => {
        if (r.url !== '/q') return res.end('ok');
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        setTimeout(() => (inFlight--, res.end('ok')), 80);
      };
      const q = await makeJob(db, {
        overlap_policy: 'queue',
        schedule: { type: 'cron', expression: '*/1 * * * * *' },
        steps: [{ id: 'a', type: 'http', config: { url: server.url + '/q' } }],
      });
      const s2 = new Scheduler(db, { intervalMs: 200, misfireThresholdMs: 5000 }, silentLogger);
      await s2.start();
      await sleep(2600);
      await s2.stop();
      await db.query(`UPDATE executions SET status = 'cancelled' WHERE job_id = $1`, [skipJob.id]);
      const w = makeWorker(db, { concurrency: 4 });
      await w.start();
      await waitFor(
        async () => (await db.query(`SELECT 1 FROM executions WHERE job_id = $1 AND status <> 'succeeded'`, [q.id])).rows.length === 0,
        'queued executions to finish',
      );
      await w.stop(1000);
      const done = (
        await db.query<{ started_at: Date; finished_at: Date }>('SELECT started_at, finished_at FROM executions WHERE job_id = $1 ORDER BY fire_time', [q.id])
      ).rows;
      assert.ok(done.length >= 2);
      assert.equal(maxInFlight, 1, 'never two executions of a queue-policy job at once');
      for (let i = 1; i < done.length; i++) assert.ok(done[i].started_at >= done[i - 1].finished_at, 'in fire-time order');
      server.handler = (_r, res) => res.end('ok');
    });

    it('fixed_delay counts the next run from the end of the previous one', async () => {
      const s = new Scheduler(db, { intervalMs: 100, misfireThresholdMs: 5000 }, silentLogger);
      server.handler = (_r, res) => setTimeout(() => res.end('ok'), 300);
      const job = await makeJob(db, { schedule: { type: 'fixed_delay', delay_seconds: 1 }, steps: [{ id: 'a', type: 'http', config: { url: server.url } }] });
      const w = makeWorker(db);
      await w.start();
      await s.start();
      await waitFor(
        async () => (await db.query(`SELECT 1 FROM executions WHERE job_id = $1 AND status = 'succeeded'`, [job.id])).rows.length >= 2,
        'two runs',
        15000,
      );
      await s.stop();
      await w.stop(2000);
      server.handler = (_r, res) => res.end('ok');
      const runs = (
        await db.query<{ fire_time: Date; finished_at: Date }>(
          `SELECT fire_time, finished_at FROM executions WHERE job_id = $1 AND status = 'succeeded' ORDER BY fire_time`,
          [job.id],
        )
      ).rows;
      const gap = runs[1].fire_time.getTime() - runs[0].finished_at.getTime();
      assert.ok(gap >= 999, `second run fired ${gap} ms after the first ended (delay 1 s)`);
    });
  });
});
