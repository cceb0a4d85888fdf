/**
 * Maintenance mode: firing paused cluster-wide and per job, in the database, honoured by every
 * scheduler; resume applies each job's misfire_policy to the fire times missed during the pause.
 * Schedulers are driven round by round (Scheduler.round), so what fires is decided, not timed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Database } from '../../src/db/database.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { setClusterPause, setJobPause } from '../../src/maintenance/state.ts';
import { missedDuringPause } from '../../src/scheduler/pause.ts';
import { forEachDatabase, openTestDb } from '../helpers/db.ts';
import { makeJob, silentLogger } from '../helpers/jobs.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, assertError, flatJob } from '../api/support.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const EVERY_SECOND = { type: 'cron', expression: '*/1 * * * * *' };

async function executions(db: Database, jobId: string) {
  return (
    await db.query<{ status: string; trigger_type: string; trigger: any; fire_time: Date | null; error: any }>(
      `SELECT status, trigger_type, trigger, fire_time, error FROM executions WHERE job_id = $1 ORDER BY fire_time NULLS LAST, created_at`,
      [jobId],
    )
  ).rows;
}

describe('missedDuringPause', () => {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
  it('puts the misfire cutoff at the latest resume when the schedule came due before it', () => {
    assert.deepEqual(missedDuringPause(t(10), t(30), [t(20), t(25)]), { resumedAt: t(25), thresholdMs: 5000 });
    assert.deepEqual(missedDuringPause(t(10), t(30), [null, t(20)]), { resumedAt: t(20), thresholdMs: 10_000 });
  });
  it('is null when no pause held the schedule', () => {
    assert.equal(missedDuringPause(t(10), t(30), [null, null]), null);
    assert.equal(missedDuringPause(t(26), t(30), [t(25)]), null);
  });
  it('never gives a negative threshold when the database clock is ahead', () => {
    assert.equal(missedDuringPause(t(10), t(30), [t(31)])?.thresholdMs, 0);
  });
});

forEachDatabase((kind) => {
  describe(`${kind}: maintenance mode in the scheduler`, () => {
    let db: Database;
    let other: Database;
    // Two schedulers; on PostgreSQL each with its own pool, as two processes would have.
    let s1: Scheduler;
    let s2: Scheduler;
    before(async () => {
      db = await openTestDb(kind);
      other = kind === 'postgres' ? await openPostgres((db as any).url, { poolSize: 2 }) : db;
      // The misfire threshold is far longer than the pauses here: only the pause makes them misfires.
      s1 = new Scheduler(db, { intervalMs: 1000, misfireThresholdMs: 600_000, name: 's1' }, silentLogger);
      s2 = new Scheduler(other, { intervalMs: 1000, misfireThresholdMs: 600_000, name: 's2' }, silentLogger);
    });
    after(async () => {
      await setClusterPause(db, false, 'test', null);
      if (other !== db) await other.close();
      await db.close();
    });

    it('a cluster-wide pause stops every scheduler; on resume fire_once runs one execution for the missed fire times', async () => {
      const job = await makeJob(db, {
        schedule: EVERY_SECOND,
        misfire_policy: 'fire_once',
        steps: [{ id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/' } }],
      });
      await s1.round();
      await sleep(1100);
      await s1.round();
      const before = (await executions(db, job.id)).length;
      assert.ok(before >= 1, 'the job fired before the pause');

      const { state, changed } = await setClusterPause(db, true, 'alice', 'database upgrade');
      assert.equal(changed, true);
      assert.equal(state.paused, true);
      assert.equal(state.reason, 'database upgrade');
      assert.equal(state.paused_by, 'alice');
      // Pausing again changes nothing but the reason; the first pause's time and author stay.
      const again = await setClusterPause(db, true, 'bob', 'still upgrading');
      assert.equal(again.changed, false);
      assert.equal(again.state.paused_by, 'alice');
      assert.equal(again.state.paused_at, state.paused_at);

      await sleep(2600); // at least two fire times come due during the pause
      await s1.round();
      await s2.round();
      assert.equal((await executions(db, job.id)).length, before, 'no scheduler fired while paused');

      const resumed = await setClusterPause(db, false, 'alice', null);
      assert.equal(resumed.state.paused, false);
      assert.ok(resumed.state.resumed_at);
      await s2.round();
      const after = await executions(db, job.id);
      const added = after.slice(before);
      const resumedAt = new Date(resumed.state.resumed_at!);
      // fire_once: the missed fire times give one run, the first of them marked misfired; or, when
      // a fire time at or after the resume is already due in this round, that run stands for them
      // and they are recorded as one skipped execution (as for any misfire, see plan.ts).
      const late = added.filter((e) => e.status !== 'skipped' && e.fire_time! < resumedAt);
      const onTime = added.filter((e) => e.status !== 'skipped' && e.fire_time! >= resumedAt);
      const skipped = added.filter((e) => e.status === 'skipped');
      assert.ok(late.length <= 1, `at most one run for all the missed fire times: ${JSON.stringify(added)}`);
      if (late.length === 1) {
        assert.equal(late[0].trigger.misfired, true);
        assert.equal(skipped.length, 0);
      } else {
        assert.ok(onTime.length >= 1, JSON.stringify(added));
        assert.equal(skipped.length, 1, JSON.stringify(added));
        assert.match(skipped[0].error.message, /came due while firing was paused .*misfire_policy fire_once/);
      }
      assert.ok(onTime.every((e) => !e.trigger.misfired));
    });

    it('misfire_policy skip: the fire times missed during a pause are recorded as one skipped execution, none runs', async () => {
      const job = await makeJob(db, {
        schedule: EVERY_SECOND,
        misfire_policy: 'skip',
        steps: [{ id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/' } }],
      });
      await s1.round();
      await setJobPause(db, job.id, true, 'alice', 'vendor outage');
      const before = (await executions(db, job.id)).length;
      await sleep(2600);
      await s1.round();
      await s2.round();
      assert.equal((await executions(db, job.id)).length, before, 'the paused job did not fire');
      const { state } = await setJobPause(db, job.id, false, 'bob', null);
      assert.equal(state.paused, false);
      assert.equal(state.resumed_by, 'bob');
      await s1.round();
      const added = (await executions(db, job.id)).slice(before);
      const skipped = added.filter((e) => e.status === 'skipped');
      assert.equal(skipped.length, 1, JSON.stringify(added));
      assert.equal(skipped[0].error.code, 'misfire');
      assert.match(skipped[0].error.message, /fire times? .* came due while firing was paused \(maintenance mode, resumed at .*misfire_policy skip\)/);
      assert.equal(added.filter((e) => e.trigger.misfired).length, 0);
      for (const e of added.filter((x) => x.status !== 'skipped')) assert.ok(e.fire_time! >= new Date(state.resumed_at!));
    });

    it('a job pause holds only that job: the others fire on', async () => {
      const paused = await makeJob(db, { schedule: EVERY_SECOND, steps: [{ id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/' } }] });
      const free = await makeJob(db, { schedule: EVERY_SECOND, steps: [{ id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/' } }] });
      await setJobPause(db, paused.id, true, 'alice', null);
      await s1.round();
      await sleep(1100);
      await s2.round();
      assert.equal((await executions(db, paused.id)).length, 0);
      assert.ok((await executions(db, free.id)).length >= 1);
      // The scheduler does not spin on the paused job's overdue schedule: with every other job
      // disabled, it sleeps its whole interval.
      await db.query(`UPDATE jobs SET enabled = false, version = version + 1 WHERE id <> $1`, [paused.id]);
      await s1.round();
      assert.equal(await s1.round(), 1000);
    });
  });

  describe(`${kind}: maintenance mode API`, () => {
    let t: TestApp;
    let viewer: string;
    let operator: string;
    before(async () => {
      t = await startTestApp(kind, API_ONLY);
      viewer = await t.token('viewer');
      operator = await t.token('operator');
    });
    after(() => t.close());

    it('pauses and resumes cluster-wide, shows it in GET, /health and /metrics, and audits both', async () => {
      const off = await t.api('GET', '/api/v1/maintenance', { token: viewer });
      assert.equal(off.status, 200);
      assert.equal(off.body.paused, false);
      assert.deepEqual(off.body.paused_jobs, []);

      const on = await t.api('POST', '/api/v1/maintenance', { body: { paused: true, reason: 'core banking cut-over' } });
      assert.equal(on.status, 200, JSON.stringify(on.body));
      assert.equal(on.body.paused, true);
      assert.equal(on.body.reason, 'core banking cut-over');
      assert.equal(on.body.paused_by, 'test-admin');

      const health = await t.api('GET', '/health', { token: null });
      assert.deepEqual({ paused: health.body.maintenance.paused, reason: health.body.maintenance.reason }, { paused: true, reason: 'core banking cut-over' });
      const metrics = await t.api('GET', '/metrics', { token: null });
      assert.match(metrics.body, /^vecron_scheduling_paused 1$/m);

      const resumed = await t.api('POST', '/api/v1/maintenance', { body: { paused: false } });
      assert.equal(resumed.body.paused, false);
      assert.equal(resumed.body.resumed_by, 'test-admin');
      assert.match((await t.api('GET', '/metrics', { token: null })).body, /^vecron_scheduling_paused 0$/m);

      const audit = await t.api('GET', '/api/v1/audit?action=maintenance.set');
      assert.deepEqual(
        audit.body.items.map((e: any) => [e.outcome, e.resource_id, e.details.paused, e.details.reason]),
        [
          ['success', 'cluster', false, null],
          ['success', 'cluster', true, 'core banking cut-over'],
        ],
      );
    });

    it('pauses and resumes one job; GET /maintenance lists it while paused; audited as job.pause and job.resume', async () => {
      const job = (await t.api('POST', '/api/v1/jobs', { body: flatJob('pause-me') })).body;
      const p = await t.api('POST', `/api/v1/jobs/${job.id}/pause`, { token: operator, body: { reason: 'partner API down' } });
      assert.equal(p.status, 200, JSON.stringify(p.body));
      assert.deepEqual([p.body.job_id, p.body.job_name, p.body.paused, p.body.reason], [job.id, 'pause-me', true, 'partner API down']);
      assert.equal((await t.api('GET', `/api/v1/jobs/${job.id}/pause`, { token: viewer })).body.paused, true);
      const m = await t.api('GET', '/api/v1/maintenance');
      assert.deepEqual(
        m.body.paused_jobs.map((j: any) => j.job_name),
        ['pause-me'],
      );
      assert.match((await t.api('GET', '/metrics', { token: null })).body, /^vecron_jobs_paused 1$/m);
      const r = await t.api('POST', `/api/v1/jobs/${job.id}/resume`, { token: operator });
      assert.equal(r.body.paused, false);
      assert.deepEqual((await t.api('GET', '/api/v1/maintenance')).body.paused_jobs, []);
      const audit = await t.api('GET', `/api/v1/audit?resource_id=${job.id}`);
      assert.deepEqual(
        audit.body.items.filter((e: any) => e.action !== 'job.create').map((e: any) => [e.action, e.actor.name]),
        [
          ['job.resume', 'test-operator'],
          ['job.pause', 'test-operator'],
        ],
      );
    });

    it('while paused: a manual trigger still runs, a webhook is refused with 503 and Retry-After', async () => {
      const secret = 'maintenance-webhook-secret-0123';
      const job = (await t.api('POST', '/api/v1/jobs', { body: flatJob('paused-hooks', { webhook: { secret } }) })).body;
      await t.api('POST', `/api/v1/jobs/${job.id}/pause`, { body: { reason: 'month-end close' } });
      const manual = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`, { token: operator });
      assert.equal(manual.status, 202, JSON.stringify(manual.body));
      const body = '{"order":1}';
      const ts = String(Math.floor(Date.now() / 1000));
      const sig = 'sha256=' + createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
      const hook = () =>
        t.api('POST', `/api/v1/webhooks/${job.id}`, { token: null, rawBody: body, headers: { 'x-vecron-signature': sig, 'x-vecron-timestamp': ts } });
      const refused = await hook();
      assertError(refused, 503, 'unavailable', /firing of this job is paused \(month-end close\)/);
      assert.equal(refused.headers.get('retry-after'), '60');
      // The signature was not used up: the same call goes through once the job is resumed.
      await t.api('POST', `/api/v1/jobs/${job.id}/resume`);
      await t.api('POST', '/api/v1/maintenance', { body: { paused: true, reason: 'cluster upgrade' } });
      assertError(await hook(), 503, 'unavailable', /paused cluster-wide \(maintenance mode: cluster upgrade\)/);
      await t.api('POST', '/api/v1/maintenance', { body: { paused: false } });
      assert.equal((await hook()).status, 202);
    });

    it('refuses bad input with the path, missing jobs with 404, and the wrong roles with 403', async () => {
      assertError(await t.api('POST', '/api/v1/maintenance', { body: { reason: 'x' } }), 400, 'validation_failed', /paused/);
      assertError(await t.api('POST', '/api/v1/maintenance', { body: { paused: 'yes' } }), 400, 'validation_failed', /paused/);
      assertError(await t.api('POST', '/api/v1/maintenance', { body: { paused: true, reason: 'x'.repeat(1001) } }), 400, 'validation_failed', /reason/);
      assertError(await t.api('POST', '/api/v1/maintenance', { body: { paused: true, extra: 1 } }), 400, 'validation_failed', /extra/);
      // Cluster-wide is for admins; a job's pause for operators; viewers only read.
      assertError(await t.api('POST', '/api/v1/maintenance', { token: operator, body: { paused: true } }), 403, 'forbidden');
      const job = (await t.api('POST', '/api/v1/jobs', { body: flatJob('pause-roles') })).body;
      assertError(await t.api('POST', `/api/v1/jobs/${job.id}/pause`, { token: viewer }), 403, 'forbidden');
      assertError(await t.api('POST', `/api/v1/jobs/${MISSING_ID}/pause`), 404, 'not_found');
      assertError(await t.api('POST', '/api/v1/jobs/not-a-uuid/resume'), 404, 'not_found');
      assertError(await t.api('GET', `/api/v1/jobs/${MISSING_ID}/pause`), 404, 'not_found');
      assertError(await t.api('POST', `/api/v1/jobs/${job.id}/pause`, { body: { reason: { text: 'x' } } }), 400, 'validation_failed', /reason/);
      assert.equal((await t.api('GET', '/api/v1/maintenance')).body.paused, false, 'nothing refused changed the state');
    });
  });
});
