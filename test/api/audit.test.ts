import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, assertError, flatJob, waitFor } from './support.ts';

interface AuditRow {
  id: number;
  actor_id: string | null;
  actor_name: string | null;
  actor_role: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string;
  status_code: number | null;
  details: any;
  ip: string | null;
  request_id: string | null;
}

forEachDatabase((kind) => {
  describe(`${kind}: audit log`, () => {
    let t: TestApp;
    let operator: string;
    let operatorId: string;
    let viewer: string;

    before(async () => {
      t = await startTestApp(kind, API_ONLY);
      operator = await t.token('operator', 'audit-op');
      viewer = await t.token('viewer', 'audit-viewer');
      operatorId = (await t.app.db.query<{ id: string }>("SELECT id FROM api_tokens WHERE name = 'audit-op'")).rows[0].id;
    });
    after(async () => {
      await t?.close();
    });

    const rows = async (where = 'true', params: unknown[] = []) =>
      (await t.app.db.query<AuditRow>(`SELECT * FROM audit_log WHERE ${where} ORDER BY id`, params)).rows;
    const count = async () => (await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log')).rows[0].n;
    /** The row of `action` on `resourceId`, waiting for it: the entry is written as the response completes. */
    const entry = async (action: string, resourceId: string | null, outcome = 'success'): Promise<AuditRow> => {
      const where = `action = $1 AND outcome = $2 AND ${resourceId === null ? 'resource_id IS NULL AND $3::text IS NULL' : 'resource_id = $3'}`;
      const found = await waitFor(async () => (await rows(where, [action, outcome, resourceId]))[0], `audit row ${action} ${resourceId} ${outcome}`);
      assert.equal((await rows(where, [action, outcome, resourceId])).length, 1, `exactly one ${action} ${outcome} row for ${resourceId}`);
      return found;
    };

    it('every mutating call writes one success row with actor, role, action, resource and status', async () => {
      const c = await t.api('POST', '/api/v1/jobs', { token: operator, body: flatJob('audited') });
      assert.equal(c.status, 201);
      const id = c.body.id;
      const create = await entry('job.create', id);
      assert.deepEqual(
        { id: create.actor_id, name: create.actor_name, role: create.actor_role, type: create.resource_type, status: create.status_code },
        { id: operatorId, name: 'audit-op', role: 'operator', type: 'job', status: 201 },
      );
      assert.deepEqual(create.details, { name: 'audited' });
      assert.equal(create.ip, '127.0.0.1');
      assert.ok(create.request_id, 'the request id is recorded');

      assert.equal((await t.api('PUT', `/api/v1/jobs/${id}`, { token: operator, body: flatJob('audited', { description: 'v2' }) })).status, 200);
      const update = await entry('job.update', id);
      assert.equal(update.status_code, 200);
      assert.deepEqual(update.details, { name: 'audited', version: 2 });

      assert.equal((await t.api('POST', `/api/v1/jobs/${id}/disable`, { token: operator })).status, 200);
      assert.equal((await t.api('POST', `/api/v1/jobs/${id}/enable`, { token: operator })).status, 200);
      const trig = await t.api('POST', `/api/v1/jobs/${id}/trigger`, { token: operator });
      assert.equal(trig.status, 202);
      const trigger = await entry('job.trigger', id);
      assert.equal(trigger.status_code, 202);
      assert.deepEqual(trigger.details, { execution_id: trig.body.execution_id });
      assert.equal((await t.api('DELETE', `/api/v1/jobs/${id}`, { token: operator })).status, 204);
      const del = await entry('job.delete', id);
      assert.equal(del.status_code, 204);

      await entry('job.disable', id);
      await entry('job.enable', id);
      const forJob = await rows('resource_id = $1', [id]);
      assert.deepEqual(
        forJob.map((r) => [r.action, r.outcome, r.actor_name, r.actor_role]).sort(),
        [
          ['job.create', 'success', 'audit-op', 'operator'],
          ['job.delete', 'success', 'audit-op', 'operator'],
          ['job.disable', 'success', 'audit-op', 'operator'],
          ['job.enable', 'success', 'audit-op', 'operator'],
          ['job.trigger', 'success', 'audit-op', 'operator'],
          ['job.update', 'success', 'audit-op', 'operator'],
        ],
        'one row per call',
      );

      const tok = await t.api('POST', '/api/v1/tokens', { body: { name: 'audited-token', role: 'viewer' } });
      assert.equal(tok.status, 201);
      const tokCreate = await entry('token.create', tok.body.id);
      assert.deepEqual([tokCreate.actor_name, tokCreate.actor_role, tokCreate.resource_type, tokCreate.status_code], ['test-admin', 'admin', 'token', 201]);
      assert.deepEqual(tokCreate.details, { name: 'audited-token', role: 'viewer' });
      assert.ok(!JSON.stringify(tokCreate).includes(tok.body.token), 'the token value is not written to the audit log');
      assert.equal((await t.api('DELETE', `/api/v1/tokens/${tok.body.id}`)).status, 200);
      const revoke = await entry('token.revoke', tok.body.id);
      assert.deepEqual([revoke.actor_name, revoke.actor_role, revoke.resource_type], ['test-admin', 'admin', 'token']);
    });

    it('refused calls are written with outcome denied: 403 with the caller, 401 as anonymous', async () => {
      const job = await t.api('POST', '/api/v1/jobs', { body: flatJob('audit-denied') });
      const id = job.body.id;
      await entry('job.create', id);

      assertError(await t.api('POST', `/api/v1/jobs/${id}/trigger`, { token: viewer }), 403, 'forbidden');
      const forbidden = await entry('job.trigger', id, 'denied');
      assert.deepEqual([forbidden.actor_name, forbidden.actor_role, forbidden.status_code, forbidden.resource_type], ['audit-viewer', 'viewer', 403, 'job']);

      assertError(await t.api('DELETE', `/api/v1/jobs/${id}`, { token: null }), 401, 'unauthorized');
      const anonymous = await entry('job.delete', id, 'denied');
      assert.deepEqual([anonymous.actor_id, anonymous.actor_name, anonymous.actor_role, anonymous.status_code], [null, 'anonymous', null, 401]);

      assertError(
        await t.api('POST', '/api/v1/tokens', { token: 'vcr_not-a-real-token-at-all-0000000000', body: { name: 'x', role: 'admin' } }),
        401,
        'unauthorized',
      );
      const badToken = await waitFor(async () => (await rows("action = 'token.create' AND outcome = 'denied'"))[0], 'denied token.create');
      assert.deepEqual([badToken.actor_name, badToken.status_code], ['anonymous', 401]);

      const executions = await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM executions WHERE job_id = $1', [id]);
      assert.equal(executions.rows[0].n, 0, 'the refused trigger queued nothing');
      assert.equal((await t.api('GET', `/api/v1/jobs/${id}`)).status, 200, 'the refused delete deleted nothing');
    });

    it('failed calls are written with outcome failure and their status', async () => {
      const before = await count();
      const bad = await t.api('POST', '/api/v1/jobs', { token: operator, body: { name: 'audit-invalid', steps: [{ id: 'a', type: 'ftp' }] } });
      assertError(bad, 400, 'validation_failed');
      const failure = await waitFor(async () => (await rows("action = 'job.create' AND outcome = 'failure' AND actor_name = 'audit-op'"))[0], 'failure row');
      assert.deepEqual([failure.status_code, failure.actor_role, failure.resource_id], [400, 'operator', null]);

      assertError(await t.api('POST', `/api/v1/jobs/${MISSING_ID}/trigger`, { token: operator }), 404, 'not_found');
      const missing = await entry('job.trigger', MISSING_ID, 'failure');
      assert.equal(missing.status_code, 404);
      await waitFor(async () => (await count()) === before + 2, 'two new rows');
    });

    it('GET /api/v1/audit filters by action and outcome and paginates, newest first', async () => {
      for (let i = 0; i < 3; i++) {
        assert.equal((await t.api('POST', '/api/v1/jobs', { token: operator, body: flatJob(`audit-page-${i}`) })).status, 201);
      }
      await waitFor(async () => (await rows("action = 'job.create' AND details->>'name' = 'audit-page-2'"))[0], 'the last create');
      const expected = (await rows("action = 'job.create' AND outcome = 'success'")).reverse();

      const all = await t.api('GET', '/api/v1/audit?action=job.create&outcome=success&limit=200', { token: viewer });
      assert.equal(all.status, 200);
      assert.equal(all.body.total, expected.length);
      assert.deepEqual(
        all.body.items.map((r: any) => r.id),
        expected.map((r) => Number(r.id)),
      );
      assert.ok(all.body.items.every((r: any) => r.action === 'job.create' && r.outcome === 'success'));
      const top = all.body.items[0];
      assert.equal(top.actor.name, 'audit-op');
      assert.equal(top.actor.role, 'operator');
      assert.equal(top.resource_type, 'job');
      assert.ok(!Number.isNaN(Date.parse(top.at)));

      const p2 = await t.api('GET', '/api/v1/audit?action=job.create&outcome=success&limit=2&page=2');
      assert.deepEqual(
        { total: p2.body.total, page: p2.body.page, limit: p2.body.limit, ids: p2.body.items.map((r: any) => r.id) },
        { total: expected.length, page: 2, limit: 2, ids: expected.slice(2, 4).map((r) => Number(r.id)) },
      );

      const denied = await t.api('GET', '/api/v1/audit?outcome=denied');
      const deniedCount = (await rows("outcome = 'denied'")).length;
      assert.ok(deniedCount >= 3);
      assert.equal(denied.body.total, deniedCount);
      assert.ok(denied.body.items.every((r: any) => r.outcome === 'denied'));

      const byActor = await t.api('GET', '/api/v1/audit?actor=audit-viewer');
      assert.ok(byActor.body.total >= 1);
      assert.ok(byActor.body.items.every((r: any) => r.actor.name === 'audit-viewer'));

      const none = await t.api('GET', '/api/v1/audit?action=no.such.action');
      assert.deepEqual(none.body, { items: [], total: 0, page: 1, limit: 20 });
    });

    // Refused anonymous calls are counted in one row per action, source and minute (details.count).
    const auditedCalls = async () =>
      (
        await t.app.db.query<{ n: number }>(
          "SELECT coalesce(sum(CASE WHEN aggregate_key IS NULL THEN 1 ELSE (details ->> 'count')::int END), 0)::int AS n FROM audit_log",
        )
      ).rows[0].n;

    it('every mutating route of the OpenAPI document is audited, even for an anonymous caller (aggregated per source and minute)', async () => {
      const spec = (await t.api('GET', '/docs/json', { token: null })).body;
      const calls: [string, string][] = [];
      for (const [path, ops] of Object.entries<Record<string, unknown>>(spec.paths)) {
        for (const method of Object.keys(ops)) {
          if (['post', 'put', 'patch', 'delete'].includes(method)) calls.push([method.toUpperCase(), path.replace(/\{[^}]+\}/g, MISSING_ID)]);
        }
      }
      assert.ok(calls.length >= 9, `the document lists the mutating routes: ${JSON.stringify(calls)}`);
      for (const [method, path] of calls) {
        const before = await auditedCalls();
        const r = await t.api(method, path, { token: null, body: {} });
        assert.ok(r.status >= 400 && r.status < 500, `${method} ${path} without a token is refused: ${r.status}`);
        await waitFor(async () => (await auditedCalls()) === before + 1, `one audited call for ${method} ${path} (answered ${r.status})`, 5_000);
        const outcome = r.status === 401 || r.status === 403 ? 'denied' : 'failure';
        const hit = (await rows()).find(
          (x: any) => x.status_code === r.status && x.outcome === outcome && x.actor_name === 'anonymous' && (x.details as any)?.aggregated,
        );
        assert.ok(hit, `${method} ${path}: an aggregated row with status ${r.status}`);
      }
    });

    // Needs a second connection that holds a lock while the app runs: PostgreSQL only (PGlite has one).
    if (kind === 'postgres') {
      it('the audit row is written before the response is sent (a client never sees an unaudited success)', async () => {
        const job = await t.api('POST', '/api/v1/jobs', { body: flatJob('audit-before-response') });
        await entry('job.create', job.body.id);
        const locker = new pg.Client({ connectionString: (t.app.db as unknown as { url: string }).url });
        await locker.connect();
        let released = false;
        try {
          await locker.query('BEGIN');
          await locker.query('LOCK TABLE audit_log IN EXCLUSIVE MODE'); // blocks INSERTs, not reads
          let answered = false;
          const pending = t.api('POST', `/api/v1/jobs/${job.body.id}/disable`).then((r) => ((answered = true), r));
          // wait until the app's audit INSERT is blocked on the lock
          await waitFor(
            async () =>
              (
                await t.app.db.query(
                  "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO audit_log%'",
                )
              ).rows.length > 0,
            'the audit INSERT waiting for the lock',
          );
          const answeredBeforeAudit = answered;
          await locker.query('COMMIT');
          released = true;
          const r = await pending;
          assert.equal(r.status, 200);
          assert.equal(answeredBeforeAudit, false, 'the client had its answer while the audit row was still unwritten');
          const now = await rows("action = 'job.disable' AND resource_id = $1", [job.body.id]);
          assert.equal(now.length, 1, 'the row is there as soon as the response is');
        } finally {
          if (!released) await locker.query('ROLLBACK').catch(() => {});
          await locker.end();
        }
      });
    }

    it('read-only calls write nothing', async () => {
      const job = await t.api('POST', '/api/v1/jobs', { body: flatJob('audit-readonly') });
      const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
      await entry('job.trigger', job.body.id);
      const before = await rows();

      for (const path of [
        '/api/v1/jobs',
        `/api/v1/jobs/${job.body.id}`,
        `/api/v1/jobs/${job.body.id}/executions`,
        '/api/v1/executions',
        `/api/v1/executions/${trig.body.execution_id}`,
        '/api/v1/audit',
        '/api/v1/tokens',
        '/health',
        '/metrics',
        '/docs/json',
      ]) {
        assert.equal((await t.api('GET', path)).status, 200, path);
      }
      assert.equal((await t.api('GET', `/api/v1/jobs/${MISSING_ID}`)).status, 404);
      assert.equal((await t.api('GET', '/api/v1/jobs', { token: viewer })).status, 200);

      // a fence: once this call's row is there, the reads' rows would be too
      assert.equal((await t.api('POST', `/api/v1/jobs/${job.body.id}/disable`)).status, 200);
      await entry('job.disable', job.body.id);
      const after = await rows();
      assert.equal(after.length, before.length + 1, `only the fence was written: ${JSON.stringify(after.slice(before.length))}`);
      assert.equal(after[after.length - 1].action, 'job.disable');
    });
  });
});
