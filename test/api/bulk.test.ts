/**
 * Bulk operations (issue 18): cancel and retry by filter through the state module (each change
 * with its event on the live stream), bounded, reported per execution, with a dry run and one
 * audit entry; and the bulk trigger of several jobs, idempotent per job with Idempotency-Key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { makeJob } from '../helpers/jobs.ts';
import { openStream } from '../helpers/sse.ts';
import { API_ONLY, MISSING_ID, assertError } from './support.ts';
import type { JobRecord } from '../../src/jobs/repository.ts';
import { claimExecutions } from '../../src/state/claim.ts';
import { finishAttempt } from '../../src/state/finish.ts';

const MAX = 5;
const steps = [{ id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/a' } }];

forEachDatabase((kind) => {
  describe(`${kind}: bulk operations`, () => {
    let t: TestApp;
    let job: JobRecord;
    let otherJob: JobRecord;
    const queued: string[] = [];
    const failed: string[] = [];

    const statusOf = async (ids: string[]) =>
      Object.fromEntries(
        (await t.app.db.query<{ id: string; status: string }>('SELECT id, status FROM executions WHERE id = ANY($1::uuid[])', [ids])).rows.map((r) => [
          r.id,
          r.status,
        ]),
      );
    const bulk = (body: unknown, token?: string) => t.api('POST', '/api/v1/executions/bulk', { body, token });

    before(async () => {
      t = await startTestApp(kind, { ...API_ONLY, VECRON_BULK_MAX_EXECUTIONS: String(MAX) });
      job = await makeJob(t.app.db, { name: 'bulk-job', max_retries: 0, steps });
      otherJob = await makeJob(t.app.db, { name: 'bulk-other', max_retries: 0, steps });
      // Two executions that failed (claimed and finished as the worker does), then four queued ones.
      for (let i = 0; i < 2; i++) {
        await t.api('POST', `/api/v1/jobs/${job.id}/trigger`);
        const [c] = await claimExecutions(t.app.db, 'w1', 1, 60);
        await finishAttempt(t.app.db, c, 'w1', { status: 'failed', error: { code: 'http_status', message: 'HTTP 400', retryable: false, step_id: 'a' } }, 1);
        failed.push(c.id);
      }
      for (let i = 0; i < 4; i++) queued.push((await t.api('POST', `/api/v1/jobs/${job.id}/trigger`)).body.execution_id);
      await t.api('POST', `/api/v1/jobs/${otherJob.id}/trigger`);
    });
    after(async () => {
      await t?.close();
    });

    it('a dry run lists what a cancel would change, and changes nothing', async () => {
      const res = await bulk({ action: 'cancel', filter: { job_id: job.id }, dry_run: true });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.dry_run, true);
      assert.equal(res.body.matched, 4);
      assert.equal(res.body.truncated, false);
      assert.deepEqual(res.body.counts, { would_cancel: 4 });
      assert.deepEqual(
        res.body.items.map((i: any) => i.execution_id),
        queued,
        'oldest first, only the cancellable ones',
      );
      assert.deepEqual(new Set(Object.values(await statusOf(queued))), new Set(['queued']));
    });

    it('cancels by filter up to the limit, each with its event, says it is truncated, and audits once', async () => {
      const s = await openStream(t, `/api/v1/events?job_id=${job.id}`);
      try {
        await s.next(); // the retry hint
        const res = await bulk({ action: 'cancel', filter: { job_id: job.id, status: ['queued'] }, limit: 3 });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.matched, 4);
        assert.equal(res.body.truncated, true);
        assert.deepEqual(res.body.counts, { cancelled: 3 });
        assert.deepEqual(
          res.body.items.map((i: any) => [i.execution_id, i.outcome, i.status_before, i.status]),
          queued.slice(0, 3).map((id) => [id, 'cancelled', 'queued', 'cancelled']),
        );
        const events: string[] = [];
        while (events.filter((e) => e.startsWith('execution')).length < 3) {
          const f = await s.nextEvent(10_000);
          events.push(`${f.json.kind}:${f.json.execution_id}:${f.json.status}`);
        }
        assert.deepEqual(
          events.filter((e) => e.startsWith('execution')),
          queued.slice(0, 3).map((id) => `execution:${id}:cancelled`),
        );
      } finally {
        s.close();
      }
      const st = await statusOf(queued);
      assert.deepEqual(
        queued.map((id) => st[id]),
        ['cancelled', 'cancelled', 'cancelled', 'queued'],
      );
      const cancelled = await t.api('GET', `/api/v1/executions/${queued[0]}`);
      assert.match(cancelled.body.error.message, /cancelled by test-admin/);

      const audit = await t.app.db.query<{ details: any }>(`SELECT details FROM audit_log WHERE action = 'execution.bulk' ORDER BY id`);
      const last = audit.rows.at(-1)!;
      assert.equal(last.details.action, 'cancel');
      assert.equal(last.details.dry_run, false);
      assert.deepEqual(last.details.counts, { cancelled: 3 });
      assert.deepEqual(last.details.execution_ids, queued.slice(0, 3));
    });

    it('retries the failed ones by status; the dashboard selection (ids) reports each id', async () => {
      const res = await bulk({ action: 'retry', filter: { job_id: job.id, status: ['failed', 'dead_lettered'] } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.counts, { retried: 2 });
      assert.deepEqual(Object.values(await statusOf(failed)), ['queued', 'queued']);
      // A selection with one execution that can be cancelled, one already cancelled, one unknown.
      const sel = await bulk({ action: 'cancel', filter: { ids: [queued[3], queued[0], MISSING_ID] } });
      assert.equal(sel.status, 200, JSON.stringify(sel.body));
      const by = Object.fromEntries(sel.body.items.map((i: any) => [i.execution_id, i]));
      assert.equal(by[queued[3]].outcome, 'cancelled');
      assert.equal(by[queued[0]].outcome, 'skipped');
      assert.equal(by[queued[0]].status, 'cancelled');
      assert.match(by[queued[0]].reason, /cancel applies to queued and running/);
      assert.equal(by[MISSING_ID].outcome, 'not_found');
      assert.deepEqual(sel.body.counts, { cancelled: 1, skipped: 1, not_found: 1 });
    });

    it('filters by creation time and trigger type', async () => {
      const mid = new Date();
      await new Promise((r) => setTimeout(r, 20));
      const late = (await t.api('POST', `/api/v1/jobs/${otherJob.id}/trigger`)).body.execution_id;
      const res = await bulk({ action: 'cancel', filter: { job_id: otherJob.id, from: mid.toISOString(), trigger_type: ['manual'] }, dry_run: true });
      assert.deepEqual(
        res.body.items.map((i: any) => i.execution_id),
        [late],
      );
      const before = await bulk({ action: 'cancel', filter: { job_id: otherJob.id, to: mid.toISOString() }, dry_run: true });
      assert.equal(before.body.matched, 1);
      assert.notEqual(before.body.items[0].execution_id, late);
      const scheduled = await bulk({ action: 'cancel', filter: { trigger_type: ['schedule'] }, dry_run: true });
      assert.equal(scheduled.body.matched, 0);
    });

    it('bad requests are 400 with the path; viewers are refused', async () => {
      const path = (res: { status: number; body: any }) => assertError(res, 400, 'validation_failed').details.problems.map((p: any) => p.path);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: {} })), ['filter']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { status: ['queued', 'succeeded'] } })), ['filter.status[1]']);
      assert.deepEqual(path(await bulk({ action: 'retry', filter: { status: ['nope'] } })), ['filter.status[0]']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { job_id: job.id }, limit: MAX + 1 })), ['limit']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { ids: Array(MAX + 1).fill(MISSING_ID) } })), ['limit', 'filter.ids']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { ids: ['x'] } })), ['filter.ids[0]']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { job_id: 'x' } })), ['filter.job_id']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { from: 'yesterday' } })), ['filter.from']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { from: '2026-12-02T00:00:00Z', to: '2026-12-01T00:00:00Z' } })), ['filter.to']);
      assert.deepEqual(path(await bulk({ action: 'delete', filter: { job_id: job.id } })), ['action']);
      assert.deepEqual(path(await bulk({ action: 'cancel', filter: { color: 'red' } })), ['filter.color']);
      assert.deepEqual(path(await bulk({ action: 'cancel' })), ['']);
      assertError(await bulk({ action: 'cancel', filter: { job_id: job.id } }, await t.token('viewer', 'bulk-viewer')), 403, 'forbidden');
    });

    it('bulk trigger runs each job once, reports unknown ones, and is idempotent per job with a key', async () => {
      const body = { job_ids: [job.id, otherJob.id, job.id, MISSING_ID], payload: { batch: 7 } };
      const dry = await t.api('POST', '/api/v1/jobs/bulk-trigger', { body: { ...body, dry_run: true } });
      assert.equal(dry.status, 200, JSON.stringify(dry.body));
      assert.deepEqual(dry.body.counts, { would_trigger: 2, not_found: 1 });

      const count = async () => (await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM executions')).rows[0].n;
      const n0 = await count();
      const first = await t.api('POST', '/api/v1/jobs/bulk-trigger', { body, headers: { 'Idempotency-Key': 'nightly-2026-12-02' } });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.deepEqual(first.body.counts, { queued: 2, not_found: 1 });
      assert.equal(await count(), n0 + 2);
      const queuedIds = first.body.items.filter((i: any) => i.outcome === 'queued').map((i: any) => i.execution_id);
      const exec = await t.api('GET', `/api/v1/executions/${queuedIds[0]}`);
      assert.deepEqual(exec.body.trigger.payload, { batch: 7 });
      assert.equal(exec.body.trigger.type, 'manual');

      const again = await t.api('POST', '/api/v1/jobs/bulk-trigger', { body, headers: { 'Idempotency-Key': 'nightly-2026-12-02' } });
      assert.deepEqual(again.body.counts, { replayed: 2, not_found: 1 });
      assert.deepEqual(
        again.body.items.filter((i: any) => i.outcome === 'replayed').map((i: any) => i.execution_id),
        queuedIds,
      );
      assert.equal(await count(), n0 + 2);
      // The key is the single trigger's key too: the single route sees the same first execution.
      const single = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`, { body: { batch: 7 }, headers: { 'Idempotency-Key': 'nightly-2026-12-02' } });
      assert.equal(single.headers.get('idempotent-replayed'), 'true');
      assert.equal(single.body.execution_id, queuedIds[0]);
      // The same key with another payload: reported per job, nothing runs.
      const reused = await t.api('POST', '/api/v1/jobs/bulk-trigger', {
        body: { job_ids: [job.id, otherJob.id], payload: { batch: 8 } },
        headers: { 'Idempotency-Key': 'nightly-2026-12-02' },
      });
      assert.equal(reused.status, 200, JSON.stringify(reused.body));
      assert.deepEqual(reused.body.counts, { idempotency_key_reused: 2 });
      assert.equal(reused.body.items[0].execution_id, queuedIds[0]);
      assert.match(reused.body.items[0].message, /different request/);
      assert.equal(await count(), n0 + 2);

      const bad = assertError(await t.api('POST', '/api/v1/jobs/bulk-trigger', { body: { job_ids: Array(MAX + 1).fill(job.id) } }), 400, 'validation_failed');
      assert.equal(bad.details.problems[0].path, 'job_ids');
      assertError(await t.api('POST', '/api/v1/jobs/bulk-trigger', { body: { job_ids: ['nope'] } }), 400, 'validation_failed', /job_ids\[0\]/);
    });
  });
});
