/**
 * The scheduler's batch paths (issue 19): many fire times in one statement, syncing only the
 * recently changed jobs, and cron fire times remembered per expression.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/db/database.ts';
import { enqueueExecutions } from '../../src/state/enqueue-many.ts';
import { syncSchedules } from '../../src/scheduler/sync.ts';
import { parseCron } from '../../src/scheduler/cron.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';
import { makeJob, silentLogger } from '../helpers/jobs.ts';

const HTTP = [{ id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/' } }];

describe('cron fire times, remembered', () => {
  it('answer the same for the same instant, as new Date objects a caller may change', () => {
    const c = parseCron('* * 22-2 * * ?', 'Asia/Kathmandu');
    const fresh = parseCron('* * 22-2 * * ?', 'Asia/Kathmandu');
    const after = new Date('2026-12-02T17:14:59.500Z'); // 23:00 in Kathmandu (UTC+5:45)
    const a = c.next(after)!;
    a.setTime(0);
    const b = c.next(after)!;
    assert.equal(b.toISOString(), '2026-12-02T17:15:00.000Z');
    assert.equal(b.getTime(), fresh.next(after)!.getTime());
    // many instants: each answer equals a fresh schedule's, also after old ones were forgotten
    for (let i = 0; i < 200; i++) {
      const t = new Date(after.getTime() + i * 37_000);
      assert.equal(c.next(t)?.getTime(), fresh.next(t)?.getTime());
    }
  });
});

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: scheduler batches`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(async () => {
      await db.close();
    });

    it('enqueueExecutions: one execution and one event per (job, fire time), however often and by how many it is sent', async () => {
      const a = await makeJob(db, { schedule: { type: 'cron', expression: '* * * * * ?' }, steps: HTTP });
      const b = await makeJob(db, { schedule: { type: 'cron', expression: '* * * * * ?' }, steps: HTTP });
      const t0 = Math.ceil(Date.now() / 1000) * 1000 + 60_000;
      const item = (job: typeof a, k: number, skip = false) => ({
        job,
        opts: {
          trigger: { type: 'schedule' as const, time: new Date(t0 + k * 1000).toISOString() },
          fireTime: new Date(t0 + k * 1000),
          runAt: new Date(t0 + k * 1000),
          skip: skip ? { code: 'misfire' as const, message: 'not run' } : undefined,
        },
      });
      const before = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM status_events')).rows[0].n;
      const batch = [item(a, 0), item(a, 1), item(b, 0), item(b, 1, true), item(a, 1)];
      assert.equal(await enqueueExecutions(db, batch), 4, 'the repeated (job, fire time) of the batch is one execution');
      // a second scheduler sending the same fire times again creates nothing
      assert.equal(await enqueueExecutions(db, batch), 0);
      const rows = (
        await db.query<{ job_id: string; fire_time: Date; status: string; run_at: Date; job_snapshot: any; max_attempts: number }>(
          'SELECT job_id, fire_time, status, run_at, job_snapshot, max_attempts FROM executions WHERE job_id = ANY($1::uuid[]) ORDER BY job_id, fire_time',
          [[a.id, b.id]],
        )
      ).rows;
      assert.equal(rows.length, 4);
      const ofB = rows.filter((r) => r.job_id === b.id);
      assert.deepEqual(
        ofB.map((r) => r.status),
        ['queued', 'skipped'],
      );
      for (const r of rows) {
        assert.equal(r.run_at.getTime(), r.fire_time.getTime(), 'queued ahead to run at its fire time');
        assert.equal(r.job_snapshot.name, r.job_id === a.id ? a.name : b.name);
        assert.equal(r.max_attempts, a.max_retries + 1);
      }
      const events = (await db.query<{ events: any }>(`SELECT events FROM status_events ORDER BY seq OFFSET $1`, [before])).rows.flatMap((r) =>
        typeof r.events === 'string' ? JSON.parse(r.events) : r.events,
      );
      assert.equal(events.filter((e: any) => e.job_id === a.id || e.job_id === b.id).length, 4, 'one event per new execution');
    });

    it("syncSchedules: the 'recent' sync sees jobs updated lately only, the full one every job", async () => {
      const job = await makeJob(db, { schedule: { type: 'cron', expression: '0 0 0 1 1 ?' }, steps: HTTP });
      await db.query(`UPDATE jobs SET updated_at = now() - interval '2 hours' WHERE id = $1`, [job.id]);
      const scheduled = async () => (await db.query('SELECT 1 FROM schedules WHERE job_id = $1', [job.id])).rows.length;
      await syncSchedules(db, new Date(), { recentSeconds: 60 });
      assert.equal(await scheduled(), 0, 'an old change is left to the full sync');
      await syncSchedules(db, new Date());
      assert.equal(await scheduled(), 1);
    });

    it('a running scheduler picks up a new job that came without a NOTIFY (its first round compares every job)', async () => {
      const job = await makeJob(db, { schedule: { type: 'cron', expression: '0 0 0 1 1 ?' }, steps: HTTP });
      const s = new Scheduler(db, { intervalMs: 50, misfireThresholdMs: 5000 }, silentLogger);
      await s.start();
      try {
        for (let i = 0; i < 400; i++) {
          const { rows } = await db.query<{ next_fire_at: Date }>('SELECT next_fire_at FROM schedules WHERE job_id = $1', [job.id]);
          if (rows.length) {
            assert.ok(rows[0].next_fire_at > new Date(), 'its next fire time, next 1 January');
            return;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.fail('the job got no schedule row');
      } finally {
        await s.stop();
      }
    });
  });
});
