/**
 * Every transition of src/state, driven on a real database, shows up on the live stream
 * (/api/v1/events, a real HTTP server) with its events in order. The operator's cancel and retry
 * go through the HTTP API; the worker's and scheduler's transitions are called as the worker and
 * scheduler call them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDatabase, type DbKind } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { makeJob, silentLogger } from '../helpers/jobs.ts';
import { openStream, type Stream } from '../helpers/sse.ts';
import { API_ONLY, assertError } from '../api/support.ts';
import type { JobRecord } from '../../src/jobs/repository.ts';
import { enqueueExecution } from '../../src/state/enqueue.ts';
import { claimExecutions, type ClaimedExecution } from '../../src/state/claim.ts';
import { finishAttempt, handBack, recordSuccesses } from '../../src/state/finish.ts';
import { reapExpiredLeases } from '../../src/state/reap.ts';
import { failStep, skipSteps, startStep, startSteps, succeedStep } from '../../src/state/steps.ts';
import { SKIP_REASONS } from '../../src/state/statuses.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';

const manual = () => ({ trigger: { type: 'manual' as const, time: new Date().toISOString(), user: 'test' } });
const steps3 = [
  { id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/a' } },
  { id: 'b', type: 'http', config: { url: 'http://127.0.0.1:9/b' } },
  { id: 'c', type: 'http', config: { url: 'http://127.0.0.1:9/c' } },
];

/** Reads `expected.length` events and compares them as `kind:step:status[reason]`; ids must be the seqs, increasing. */
async function expectEvents(s: Stream, expected: string[], lastSeq = 0): Promise<number> {
  const got: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const f = await s.nextEvent(10_000);
    assert.equal(f.event, f.json.kind);
    assert.equal(f.id, String(f.json.seq), 'the SSE id is the event sequence number');
    assert.ok(f.json.seq > lastSeq, `ids increase: ${f.json.seq} after ${lastSeq}`);
    lastSeq = f.json.seq;
    got.push(`${f.json.kind}:${f.json.step_id ?? ''}:${f.json.status}${f.json.reason ? `[${f.json.reason}]` : ''}`);
  }
  assert.deepEqual(got, expected);
  return lastSeq;
}

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: every transition publishes its events, in order, on the live stream`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(kind, API_ONLY);
    });
    after(async () => {
      await t?.close();
    });

    /** A job, a stream filtered on it, and its first execution queued through the API. */
    async function setup(doc: Record<string, unknown> = {}): Promise<{ job: JobRecord; s: Stream; id: string }> {
      const job = await makeJob(t.app.db, { steps: steps3, ...doc });
      const s = await openStream(t, `/api/v1/events?job_id=${job.id}`);
      assert.equal((await s.next()).retry, '3000');
      const res = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`);
      assert.equal(res.status, 202);
      return { job, s, id: res.body.execution_id };
    }
    const claim = async (workerId: string, leaseSeconds = 60): Promise<ClaimedExecution> => {
      const [c] = await claimExecutions(t.app.db, workerId, 1, leaseSeconds);
      assert.ok(c, 'claimed');
      return c;
    };
    const owner = (c: ClaimedExecution, workerId: string) => ({ executionId: c.id, jobId: c.job_id, workerId });
    const ref = (id: string, position: number) => ({ id, position, type: 'http' });

    it('enqueue, claim, step start/succeed/fail, fail (later steps skipped), operator retry, succeed', async () => {
      const { s, id } = await setup({ max_retries: 0 });
      try {
        let seq = await expectEvents(s, ['execution::queued']);
        const c = await claim('w1');
        assert.equal(c.id, id);
        seq = await expectEvents(s, ['execution::running', 'step:a:running'], seq);
        assert.ok(await succeedStep(t.app.db, owner(c, 'w1'), 'a', new Date(), '{"ok":true}', null));
        assert.ok(await startStep(t.app.db, owner(c, 'w1'), ref('b', 1), new Date(), c.attempt, '{"variables":{}}'));
        assert.ok(await failStep(t.app.db, owner(c, 'w1'), 'b', new Date(), { code: 'http_status', message: 'HTTP 400' }, null));
        seq = await expectEvents(s, ['step:a:succeeded', 'step:b:running', 'step:b:failed'], seq);
        const r = await finishAttempt(
          t.app.db,
          c,
          'w1',
          { status: 'failed', error: { code: 'http_status', message: 'HTTP 400', retryable: false, step_id: 'b' } },
          1,
        );
        assert.deepEqual(r, { status: 'failed', owned: true });
        seq = await expectEvents(s, [`step:c:skipped[${SKIP_REASONS.afterFailure}]`, 'execution::failed'], seq);

        const view = (await t.api('GET', `/api/v1/executions/${id}`)).body;
        assert.deepEqual(
          view.steps.map((x: any) => [x.id, x.status, x.reason]),
          [
            ['a', 'succeeded', null],
            ['b', 'failed', null],
            ['c', 'skipped', 'an earlier step failed'],
          ],
        );

        // operator retry, through the API: queued again, resumed at the failed step
        const retry = await t.api('POST', `/api/v1/executions/${id}/retry`);
        assert.equal(retry.status, 202);
        seq = await expectEvents(s, ['execution::queued[retried by test-admin]'], seq);
        assertError(await t.api('POST', `/api/v1/executions/${id}/retry`), 409, 'conflict', 'is queued');

        const c2 = await claim('w2');
        assert.equal(c2.first_step_id, null, 'a resumed execution starts where its route says: the engine starts the step');
        assert.ok(await startStep(t.app.db, owner(c2, 'w2'), ref('b', 1), new Date(), c2.attempt, null));
        assert.ok(await succeedStep(t.app.db, owner(c2, 'w2'), 'b', new Date(), '{}', null));
        assert.ok(await startStep(t.app.db, owner(c2, 'w2'), ref('c', 2), new Date(), c2.attempt, null));
        assert.deepEqual(
          await recordSuccesses(t.app.db, 'w2', [{ executionId: c2.id, lastStep: { stepId: 'c', completedAt: new Date(), outputJson: '{}' } }]),
          [true],
        );
        await expectEvents(s, ['execution::running', 'step:b:running', 'step:b:succeeded', 'step:c:running', 'step:c:succeeded', 'execution::succeeded'], seq);
      } finally {
        s.close();
      }
    });

    it('retry_later and dead_letter by the worker', async () => {
      const { s } = await setup({ max_retries: 1, steps: steps3.slice(0, 2) });
      try {
        let seq = await expectEvents(s, ['execution::queued']);
        const err = { code: 'http_status', message: 'HTTP 503', retryable: true, step_id: 'a' };
        const c = await claim('w1');
        assert.ok(await failStep(t.app.db, owner(c, 'w1'), 'a', new Date(), err, null));
        const r = await finishAttempt(t.app.db, c, 'w1', { status: 'failed', error: err }, 0);
        assert.equal(r.status, 'queued');
        seq = await expectEvents(s, ['execution::running', 'step:a:running', 'step:a:failed', 'execution::queued'], seq);

        const c2 = await claim('w1');
        assert.ok(await failStep(t.app.db, owner(c2, 'w1'), 'a', new Date(), err, null));
        const r2 = await finishAttempt(t.app.db, c2, 'w1', { status: 'failed', error: err }, 0);
        assert.equal(r2.status, 'dead_lettered');
        await expectEvents(
          s,
          ['execution::running', 'step:a:running', 'step:a:failed', `step:b:skipped[${SKIP_REASONS.afterFailure}]`, 'execution::dead_lettered'],
          seq,
        );
      } finally {
        s.close();
      }
    });

    it('cancel of a queued and of a running execution, through the API', async () => {
      const { job, s, id } = await setup();
      try {
        let seq = await expectEvents(s, ['execution::queued']);
        const cancelled = await t.api('POST', `/api/v1/executions/${id}/cancel`);
        assert.equal(cancelled.status, 200);
        assert.equal(cancelled.body.status, 'cancelled');
        seq = await expectEvents(
          s,
          [
            'step:a:skipped[the execution was cancelled]',
            'step:b:skipped[the execution was cancelled]',
            'step:c:skipped[the execution was cancelled]',
            'execution::cancelled',
          ],
          seq,
        );
        assertError(await t.api('POST', `/api/v1/executions/${id}/cancel`), 409, 'conflict', 'already cancelled');

        const running = (await enqueueExecution(t.app.db, job, manual()))!;
        const c = await claim('w1');
        assert.equal(c.id, running);
        seq = await expectEvents(s, ['execution::queued', 'execution::running', 'step:a:running'], seq);
        assert.equal((await t.api('POST', `/api/v1/executions/${running}/cancel`)).status, 200);
        seq = await expectEvents(
          s,
          ['step:a:failed', 'step:b:skipped[the execution was cancelled]', 'step:c:skipped[the execution was cancelled]', 'execution::cancelled'],
          seq,
        );
        // the worker that ran it can no longer write anything
        assert.equal(await succeedStep(t.app.db, owner(c, 'w1'), 'a', new Date(), '{}', null), false);
        assert.deepEqual(await recordSuccesses(t.app.db, 'w1', [{ executionId: running }]), [false]);
        const view = (await t.api('GET', `/api/v1/executions/${running}`)).body;
        assert.equal(view.status, 'cancelled');
        assert.equal(view.steps[0].error.code, 'cancelled');
      } finally {
        s.close();
      }
    });

    it('the reaper: a lost lease goes back to the queue, and on the last attempt is dead-lettered', async () => {
      const { s, id } = await setup({ max_retries: 1 });
      try {
        let seq = await expectEvents(s, ['execution::queued']);
        await claim('w-gone', 0); // a lease of 0 s: expired at once, as if the worker had died
        seq = await expectEvents(s, ['execution::running', 'step:a:running'], seq);
        const reaped = await reapExpiredLeases(t.app.db);
        assert.deepEqual(
          reaped.map((r) => [r.id, r.status, r.locked_by]),
          [[id, 'queued', 'w-gone']],
        );
        seq = await expectEvents(s, ['step:a:pending', 'execution::queued'], seq);

        await claim('w-gone-too', 0);
        seq = await expectEvents(s, ['execution::running', 'step:a:running'], seq);
        assert.deepEqual(
          (await reapExpiredLeases(t.app.db)).map((r) => r.status),
          ['dead_lettered'],
        );
        await expectEvents(
          s,
          ['step:a:failed', `step:b:skipped[${SKIP_REASONS.afterFailure}]`, `step:c:skipped[${SKIP_REASONS.afterFailure}]`, 'execution::dead_lettered'],
          seq,
        );
        const view = (await t.api('GET', `/api/v1/executions/${id}`)).body;
        assert.equal(view.error.code, 'lease_expired');
        assert.equal(view.steps[0].error.code, 'lease_expired');
      } finally {
        s.close();
      }
    });

    it('hand back at shutdown, and steps off the route skipped', async () => {
      const { s } = await setup();
      try {
        let seq = await expectEvents(s, ['execution::queued']);
        const c = await claim('w1');
        assert.ok(await handBack(t.app.db, c.id, 'w1'));
        seq = await expectEvents(
          s,
          ['execution::running', 'step:a:running', 'step:a:pending', 'execution::queued[handed back by a worker shutting down]'],
          seq,
        );
        const c2 = await claim('w2');
        assert.equal(c2.attempt, 1, 'a hand-back does not count the attempt');
        assert.ok(await skipSteps(t.app.db, owner(c2, 'w2'), [ref('b', 1), ref('c', 2)], SKIP_REASONS.offRoute));
        await expectEvents(
          s,
          ['execution::running', 'step:a:running', 'step:b:skipped[not on the route taken]', 'step:c:skipped[not on the route taken]'],
          seq,
        );
      } finally {
        s.close();
      }
    });

    it('step starts in one batch (the group commit): each owned one started with its event and context; a lost one unwritten', async () => {
      const { s, job } = await setup();
      try {
        let seq = await expectEvents(s, ['execution::queued']);
        const first = await claim('w1');
        assert.equal((await t.api('POST', `/api/v1/jobs/${job.id}/trigger`)).status, 202);
        seq = await expectEvents(s, ['execution::running', 'step:a:running', 'execution::queued'], seq);
        const second = await claim('w2');
        seq = await expectEvents(s, ['execution::running', 'step:a:running'], seq);
        assert.ok(await succeedStep(t.app.db, owner(first, 'w1'), 'a', new Date(), '{}', null));
        assert.ok(await succeedStep(t.app.db, owner(second, 'w2'), 'a', new Date(), '{}', null));
        seq = await expectEvents(s, ['step:a:succeeded', 'step:a:succeeded'], seq);
        const startedAt = new Date(Date.now() - 5);
        // As worker w1: its own execution's step b starts; w2's is not w1's to start.
        const applied = await startSteps(t.app.db, 'w1', [
          { owner: owner(first, 'w1'), step: ref('b', 1), startedAt, attempt: first.attempt, contextJson: '{"set_context":{"k":1}}' },
          { owner: owner(second, 'w1'), step: ref('b', 1), startedAt, attempt: second.attempt, contextJson: '{"set_context":{"k":2}}' },
        ]);
        assert.deepEqual(applied, [true, false]);
        await expectEvents(s, ['step:b:running'], seq);
        const rows = async (id: string) =>
          (await t.app.db.query<any>(`SELECT step_id, status, started_at FROM step_runs WHERE execution_id = $1 ORDER BY position`, [id])).rows;
        const mine = await rows(first.id);
        assert.deepEqual(
          mine.map((r: any) => `${r.step_id}:${r.status}`),
          ['a:succeeded', 'b:running'],
        );
        assert.equal(new Date(mine[1].started_at).getTime(), startedAt.getTime(), 'the start time is the one the worker took');
        assert.deepEqual(
          (await rows(second.id)).map((r: any) => `${r.step_id}:${r.status}`),
          ['a:succeeded'],
        );
        const ctx = async (id: string) => (await t.app.db.query<any>('SELECT context FROM executions WHERE id = $1', [id])).rows[0].context;
        assert.deepEqual(await ctx(first.id), { set_context: { k: 1 } });
        assert.notDeepEqual(await ctx(second.id), { set_context: { k: 2 } });
      } finally {
        s.close();
      }
    });

    it('skip: overlap_policy skip and a misfire under misfire_policy skip are visible skipped executions', async () => {
      const job = await makeJob(t.app.db, {
        steps: steps3.slice(0, 1),
        misfire_policy: 'skip',
        overlap_policy: 'skip',
        // a one-time job whose instant is two hours past: its single fire time is a misfire
        schedule: { type: 'once', at: new Date(Date.now() - 2 * 3600_000).toISOString() },
      });
      const s = await openStream(t, `/api/v1/events?job_id=${job.id}`);
      try {
        assert.equal((await s.next()).retry, '3000');
        await enqueueExecution(t.app.db, job, { ...manual(), skip: { code: 'overlap_skipped', message: 'not run: the previous execution was still going' } });
        let seq = await expectEvents(s, ['execution::skipped[overlap_skipped]']);

        assert.equal(t.app.config.misfireThresholdSeconds, 60, "the default misfire threshold is Quartz's 60 s");
        const scheduler = new Scheduler(t.app.db, { intervalMs: 1000, misfireThresholdMs: t.app.config.misfireThresholdSeconds * 1000 }, silentLogger);
        await scheduler.round();
        seq = await expectEvents(s, ['execution::skipped[misfire]'], seq);
        const list = (await t.api('GET', `/api/v1/jobs/${job.id}/executions?status=skipped`)).body;
        const misfire = list.items.find((e: any) => e.error?.code === 'misfire');
        assert.ok(misfire, 'listed as skipped');
        assert.match(misfire.error.message, /misfire_policy skip/);
        assert.equal(misfire.trigger_type, 'schedule');
      } finally {
        s.close();
      }
    });
  });
});
