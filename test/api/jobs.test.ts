import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, SEED_CANONICAL_STEPS, UUID_RE, assertError, flatJob, seedJob, uploadSeedModule } from './support.ts';

forEachDatabase((kind) => {
  describe(`${kind}: jobs API`, () => {
    let t: TestApp;
    let operator: string;

    before(async () => {
      t = await startTestApp(kind, API_ONLY);
      operator = await t.token('operator', 'ops-bot');
      await uploadSeedModule(t);
    });
    after(async () => {
      await t?.close();
    });

    const create = async (body: unknown, token?: string) => {
      const r = await t.api('POST', '/api/v1/jobs', { body, token });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    };
    const row = async (id: string) =>
      (await t.app.db.query<any>('SELECT name, description, definition, enabled, version, created_by, updated_by FROM jobs WHERE id = $1', [id])).rows[0];
    const names = (r: { body: any }) => r.body.items.map((j: any) => j.name);

    it('POST /api/v1/jobs answers 201 with the canonical job, defaults applied, and stores it', async () => {
      const r = await t.api('POST', '/api/v1/jobs', { body: flatJob('minimal') });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const { id, created_at, updated_at, ...rest } = r.body;
      assert.match(id, UUID_RE);
      assert.ok(!Number.isNaN(Date.parse(created_at)) && created_at === updated_at, 'timestamps are ISO and equal on create');
      assert.deepEqual(rest, {
        name: 'minimal',
        description: null,
        schedule: null,
        steps: [{ id: 'ping', name: 'ping', type: 'http', config: { method: 'GET', url: 'https://ping.example/health' } }],
        variables: {},
        timeout_seconds: 3600,
        max_retries: 3,
        retry_backoff_seconds: 5,
        enabled: true,
        misfire_policy: 'fire_once',
        overlap_policy: 'allow',
        webhook: null,
        concurrency_key: null,
        concurrency_limit: null,
        rate_limit: null,
        version: 1,
        created_by: 'test-admin',
        updated_by: 'test-admin',
      });
      const stored = await row(id);
      assert.equal(stored.name, 'minimal');
      assert.equal(stored.enabled, true);
      assert.equal(stored.version, 1);
      const { id: _i, created_at: _c, updated_at: _u, version: _v, created_by: _cb, updated_by: _ub, ...definition } = r.body;
      assert.deepEqual(stored.definition, definition, 'the stored definition is the canonical document');
    });

    it('accepts the seed-shape example and stores it in canonical form', async () => {
      const job = await create(
        { ...seedJob('seed-shape'), description: 'from the design study', schedule: { type: 'cron', expression: '0  30 6 * * ?' } },
        operator,
      );
      assert.deepEqual(job.steps, SEED_CANONICAL_STEPS);
      assert.deepEqual(job.schedule, { type: 'cron', expression: '0 30 6 * * ?', timezone: 'Asia/Ho_Chi_Minh' });
      assert.equal(job.description, 'from the design study');
      assert.equal(job.created_by, 'ops-bot');
      const stored = await row(job.id);
      assert.deepEqual(stored.definition.steps, SEED_CANONICAL_STEPS);
      assert.deepEqual(stored.definition.variables, { api_token: 'secret-token', db_url: 'postgres://analytics.example/db' });
      assert.equal(stored.description, 'from the design study');
      assert.ok(!JSON.stringify(stored.definition).includes('step_type'), 'no seed-shape key is stored');
      const got = await t.api('GET', `/api/v1/jobs/${job.id}`);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, job, 'GET returns what POST returned');
    });

    it('POST with a name that exists answers 409 conflict naming it, and stores nothing', async () => {
      const first = await create(flatJob('taken-name'));
      const r = await t.api('POST', '/api/v1/jobs', { body: flatJob('taken-name', { description: 'second' }) });
      assertError(r, 409, 'conflict', "'taken-name'", 'already exists', first.id);
      assert.equal(r.body.error.details.existing_job_id, first.id);
      const n = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE name = 'taken-name'");
      assert.equal(n.rows[0].n, 1);
    });

    it('POST with a template naming a missing step is 400 at the path where it is written', async () => {
      const body = {
        name: 'bad-template-ref',
        steps: [
          { id: 'a', type: 'http', config: { url: 'https://api.example.com/a' } },
          { id: 'b', type: 'http', config: { url: 'https://api.example.com/{{steps.nope.output.x}}' } },
        ],
      };
      const e = assertError(await t.api('POST', '/api/v1/jobs', { body }), 400, 'validation_failed');
      assert.deepEqual(e.details.problems, [
        { path: 'steps[1].config.url', message: "template {{steps.nope.output.x}} names no step 'nope' (steps before it: a)" },
      ]);
    });

    it('GET /api/v1/jobs?name= finds a job by its exact name (no prefix, no case folding)', async () => {
      const job = await create(flatJob('by-name-exact'));
      await create(flatJob('by-name-exact-2'));
      const hit = await t.api('GET', '/api/v1/jobs?name=by-name-exact');
      assert.equal(hit.status, 200);
      assert.deepEqual(
        hit.body.items.map((j: { id: string }) => j.id),
        [job.id],
      );
      assert.equal(hit.body.total, 1);
      for (const miss of ['by-name', 'BY-NAME-EXACT', 'by-name-exac%25']) {
        const r = await t.api('GET', `/api/v1/jobs?name=${miss}`);
        assert.equal(r.status, 200, miss);
        assert.deepEqual(r.body.items, [], miss);
      }
      assert.equal((await t.api('GET', '/api/v1/jobs?name=')).status, 400);
    });

    it('GET /api/v1/jobs paginates (page, limit, total) in name order', async () => {
      for (const s of ['e', 'c', 'a', 'd', 'b']) await create(flatJob(`pg-list-${s}`));
      const p2 = await t.api('GET', '/api/v1/jobs?search=pg-list-&limit=2&page=2');
      assert.equal(p2.status, 200);
      assert.deepEqual({ ...p2.body, items: names(p2) }, { items: ['pg-list-c', 'pg-list-d'], total: 5, page: 2, limit: 2 });
      const p3 = await t.api('GET', '/api/v1/jobs?search=pg-list-&limit=2&page=3');
      assert.deepEqual({ ...p3.body, items: names(p3) }, { items: ['pg-list-e'], total: 5, page: 3, limit: 2 });
      const beyond = await t.api('GET', '/api/v1/jobs?search=pg-list-&limit=2&page=9');
      assert.deepEqual({ ...beyond.body, items: names(beyond) }, { items: [], total: 5, page: 9, limit: 2 });
      const defaults = await t.api('GET', '/api/v1/jobs?search=pg-list-');
      assert.equal(defaults.body.page, 1);
      assert.equal(defaults.body.limit, 20);
      assert.deepEqual(names(defaults), ['pg-list-a', 'pg-list-b', 'pg-list-c', 'pg-list-d', 'pg-list-e']);
      const all = await t.api('GET', '/api/v1/jobs?limit=200');
      const count = await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs');
      assert.equal(all.body.total, count.rows[0].n, 'total without a filter counts every job');
      assert.equal(all.body.items.length, count.rows[0].n);
    });

    it('search matches name and description, case-insensitively, with % and _ taken literally', async () => {
      await create(flatJob('disk-100%-alert'));
      await create(flatJob('disk-1000-alert'));
      await create(flatJob('srch_a_b'));
      await create(flatJob('srch_axb'));
      await create(flatJob('srch-described', { description: 'Reconcile the NEEDLE ledger' }));
      const q = async (s: string) => names(await t.api('GET', `/api/v1/jobs?search=${encodeURIComponent(s)}`));
      assert.deepEqual(await q('100%'), ['disk-100%-alert'], '% is not a wildcard');
      assert.deepEqual(await q('a_b'), ['srch_a_b'], '_ is not a wildcard');
      assert.deepEqual(await q('needle'), ['srch-described'], 'matches the description');
      assert.deepEqual(await q('SRCH_A'), ['srch_a_b', 'srch_axb'], 'name match ignores case');
      assert.deepEqual(await q('no-such-thing-anywhere'), []);
    });

    it('the enabled filter returns only enabled or only disabled jobs', async () => {
      await create(flatJob('flt-on'));
      await create(flatJob('flt-off', { enabled: false }));
      const on = await t.api('GET', '/api/v1/jobs?search=flt-&enabled=true');
      assert.deepEqual(names(on), ['flt-on']);
      assert.equal(on.body.total, 1);
      const off = await t.api('GET', '/api/v1/jobs?search=flt-&enabled=false');
      assert.deepEqual(names(off), ['flt-off']);
      assert.equal(off.body.items[0].enabled, false);
    });

    it('GET /api/v1/jobs/:id: 200, unknown id 404 not_found, malformed id 404', async () => {
      const job = await create(flatJob('get-me'));
      const r = await t.api('GET', `/api/v1/jobs/${job.id}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, job);
      assertError(await t.api('GET', `/api/v1/jobs/${MISSING_ID}`), 404, 'not_found', MISSING_ID);
      assertError(await t.api('GET', '/api/v1/jobs/not-a-uuid'), 404, 'not_found', 'not-a-uuid');
    });

    it('PUT replaces the definition and increments the version; a taken name is 409', async () => {
      const job = await create(flatJob('put-me'));
      const r = await t.api('PUT', `/api/v1/jobs/${job.id}`, {
        token: operator,
        body: { ...seedJob('put-me-renamed'), description: 'edited', max_retries: 5 },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.id, job.id);
      assert.equal(r.body.version, 2);
      assert.equal(r.body.name, 'put-me-renamed');
      assert.equal(r.body.description, 'edited');
      assert.equal(r.body.max_retries, 5);
      assert.deepEqual(r.body.steps, SEED_CANONICAL_STEPS);
      assert.equal(r.body.created_at, job.created_at);
      assert.ok(Date.parse(r.body.updated_at) >= Date.parse(job.updated_at));
      assert.equal(r.body.created_by, 'test-admin');
      assert.equal(r.body.updated_by, 'ops-bot');
      const stored = await row(job.id);
      assert.equal(stored.version, 2);
      assert.equal(stored.name, 'put-me-renamed');
      assert.equal(stored.definition.max_retries, 5);

      await create(flatJob('put-other'));
      const clash = await t.api('PUT', `/api/v1/jobs/${job.id}`, { body: flatJob('put-other') });
      assertError(clash, 409, 'conflict', "'put-other'");
      const after = await row(job.id);
      assert.equal(after.version, 2, 'a refused update changes nothing');
      assert.equal(after.name, 'put-me-renamed');

      assertError(await t.api('PUT', `/api/v1/jobs/${MISSING_ID}`, { body: flatJob('ghost') }), 404, 'not_found', MISSING_ID);
      assertError(await t.api('PUT', '/api/v1/jobs/not-a-uuid', { body: flatJob('ghost') }), 404, 'not_found');
    });

    it('a job as GET returns it can be PUT back unchanged (version goes up by one)', async () => {
      const job = await create(seedJob('round-trip'));
      const got = await t.api('GET', `/api/v1/jobs/${job.id}`);
      const r = await t.api('PUT', `/api/v1/jobs/${job.id}`, { body: got.body });
      assert.equal(r.status, 200, `PUT of the GET result: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.version, 2);
      assert.deepEqual(r.body.steps, job.steps);
    });

    it('disable and enable switch the flag in the row and the definition, bumping the version', async () => {
      const job = await create(flatJob('switch-me'));
      const off = await t.api('POST', `/api/v1/jobs/${job.id}/disable`, { token: operator });
      assert.equal(off.status, 200, JSON.stringify(off.body));
      assert.equal(off.body.enabled, false);
      assert.equal(off.body.version, 2);
      assert.equal(off.body.updated_by, 'ops-bot');
      let stored = await row(job.id);
      assert.equal(stored.enabled, false);
      assert.equal(stored.definition.enabled, false);
      assert.equal((await t.api('GET', `/api/v1/jobs/${job.id}`)).body.enabled, false);

      const on = await t.api('POST', `/api/v1/jobs/${job.id}/enable`, { token: operator });
      assert.equal(on.status, 200);
      assert.equal(on.body.enabled, true);
      assert.equal(on.body.version, 3);
      stored = await row(job.id);
      assert.equal(stored.enabled, true);
      assert.equal(stored.definition.enabled, true);

      assertError(await t.api('POST', `/api/v1/jobs/${MISSING_ID}/disable`), 404, 'not_found', MISSING_ID);
      assertError(await t.api('POST', `/api/v1/jobs/${MISSING_ID}/enable`), 404, 'not_found', MISSING_ID);
    });

    it('DELETE answers 204, then the job is 404 and gone with its executions', async () => {
      const job = await create(flatJob('delete-me'));
      const trig = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`);
      assert.equal(trig.status, 202);
      const r = await t.api('DELETE', `/api/v1/jobs/${job.id}`, { token: operator });
      assert.equal(r.status, 204);
      assert.equal(r.body, null, 'no body');
      assertError(await t.api('GET', `/api/v1/jobs/${job.id}`), 404, 'not_found', job.id);
      assert.equal(await row(job.id), undefined);
      const ex = await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM executions WHERE job_id = $1', [job.id]);
      assert.equal(ex.rows[0].n, 0, 'executions are deleted with the job');
      assertError(await t.api('GET', `/api/v1/executions/${trig.body.execution_id}`), 404, 'not_found');
      assertError(await t.api('DELETE', `/api/v1/jobs/${job.id}`), 404, 'not_found', job.id);
    });

    it('trigger queues an execution: 202, visible with status queued, manual trigger by the token, one pending step per job step', async () => {
      const job = await create(seedJob('trigger-me'));
      const r = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`, { token: operator, body: { batch: 7 } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.match(r.body.execution_id, UUID_RE);
      assert.deepEqual(r.body, { execution_id: r.body.execution_id, job_id: job.id, status: 'queued' });

      const ex = await t.api('GET', `/api/v1/executions/${r.body.execution_id}`);
      assert.equal(ex.status, 200, JSON.stringify(ex.body));
      assert.equal(ex.body.id, r.body.execution_id);
      assert.equal(ex.body.job_id, job.id);
      assert.equal(ex.body.job_name, 'trigger-me');
      assert.equal(ex.body.job_version, 1);
      assert.equal(ex.body.status, 'queued');
      assert.equal(ex.body.trigger_type, 'manual');
      assert.equal(ex.body.trigger.type, 'manual');
      assert.equal(ex.body.trigger.user, 'ops-bot');
      assert.deepEqual(ex.body.trigger.payload, { batch: 7 });
      assert.equal(ex.body.max_attempts, job.max_retries + 1);
      assert.equal(ex.body.started_at, null);
      assert.equal(ex.body.finished_at, null);
      assert.deepEqual(
        ex.body.steps.map((s: any) => ({
          id: s.id,
          position: s.position,
          type: s.type,
          status: s.status,
          attempt: s.attempt,
          output: s.output,
          error: s.error,
        })),
        [
          { id: 'fetch_customers', position: 0, type: 'http', status: 'pending', attempt: 0, output: null, error: null },
          { id: 'transform', position: 1, type: 'wasm', status: 'pending', attempt: 0, output: null, error: null },
          { id: 'save_to_db', position: 2, type: 'database', status: 'pending', attempt: 0, output: null, error: null },
        ],
      );
      const stored = await t.app.db.query<any>('SELECT status, job_snapshot FROM executions WHERE id = $1', [r.body.execution_id]);
      assert.equal(stored.rows[0].status, 'queued');
      assert.deepEqual(stored.rows[0].job_snapshot.steps, SEED_CANONICAL_STEPS, 'the execution keeps a snapshot of the job');

      // no body: empty payload; disabled jobs can still be run by hand
      await t.api('POST', `/api/v1/jobs/${job.id}/disable`);
      const r2 = await t.api('POST', `/api/v1/jobs/${job.id}/trigger`);
      assert.equal(r2.status, 202, JSON.stringify(r2.body));
      const ex2 = await t.api('GET', `/api/v1/executions/${r2.body.execution_id}`);
      assert.deepEqual(ex2.body.trigger.payload, {});
      assert.equal(ex2.body.trigger.user, 'test-admin');
      assert.equal(ex2.body.job_version, 2, 'the execution records the version it ran');

      assertError(await t.api('POST', `/api/v1/jobs/${MISSING_ID}/trigger`), 404, 'not_found', MISSING_ID);
      assertError(await t.api('GET', `/api/v1/executions/${MISSING_ID}`), 404, 'not_found', MISSING_ID);
      assertError(await t.api('GET', '/api/v1/executions/not-a-uuid'), 404, 'not_found');
    });

    it('lists executions per job and across jobs, filtered by status; an unknown status is 400 naming it', async () => {
      const job = await create(flatJob('exec-list'));
      const other = await create(flatJob('exec-list-other'));
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await t.api('POST', `/api/v1/jobs/${job.id}/trigger`)).body.execution_id);
      const otherId = (await t.api('POST', `/api/v1/jobs/${other.id}/trigger`)).body.execution_id;
      await t.app.db.query("UPDATE executions SET status = 'failed' WHERE id = $1", [ids[0]]);
      await t.app.db.query("UPDATE executions SET status = 'succeeded' WHERE id = $1", [ids[1]]);

      const mine = await t.api('GET', `/api/v1/jobs/${job.id}/executions`);
      assert.equal(mine.status, 200);
      assert.equal(mine.body.total, 3);
      assert.deepEqual(
        mine.body.items.map((e: any) => e.id),
        [ids[2], ids[1], ids[0]],
        'newest first, this job only',
      );
      assert.ok(mine.body.items.every((e: any) => e.job_id === job.id && e.job_name === 'exec-list'));

      const page2 = await t.api('GET', `/api/v1/jobs/${job.id}/executions?limit=1&page=2`);
      assert.deepEqual({ ...page2.body, items: page2.body.items.map((e: any) => e.id) }, { items: [ids[1]], total: 3, page: 2, limit: 1 });

      const qf = await t.api('GET', `/api/v1/jobs/${job.id}/executions?status=queued,failed`);
      assert.equal(qf.body.total, 2);
      assert.deepEqual(
        qf.body.items.map((e: any) => e.id),
        [ids[2], ids[0]],
      );

      const across = await t.api('GET', '/api/v1/executions?status=queued,failed&limit=200');
      assert.equal(across.status, 200);
      const acrossIds = across.body.items.map((e: any) => e.id);
      assert.ok(
        across.body.items.every((e: any) => e.status === 'queued' || e.status === 'failed'),
        'only queued or failed',
      );
      for (const id of [ids[0], ids[2], otherId]) assert.ok(acrossIds.includes(id), `includes ${id}`);
      assert.ok(!acrossIds.includes(ids[1]), 'the succeeded one is filtered out');
      const count = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM executions WHERE status IN ('queued', 'failed')");
      assert.equal(across.body.total, count.rows[0].n);

      const byJob = await t.api('GET', `/api/v1/executions?job_id=${other.id}`);
      assert.deepEqual(
        byJob.body.items.map((e: any) => e.id),
        [otherId],
      );
      const succeeded = await t.api('GET', `/api/v1/executions?status=succeeded&job_id=${job.id}`);
      assert.deepEqual(
        succeeded.body.items.map((e: any) => e.id),
        [ids[1]],
      );

      assertError(await t.api('GET', '/api/v1/executions?status=queued,bogus'), 400, 'validation_failed', "'bogus'", 'queued');
      assertError(await t.api('GET', `/api/v1/jobs/${job.id}/executions?status=finished`), 400, 'validation_failed', "'finished'");
      assertError(await t.api('GET', `/api/v1/jobs/${MISSING_ID}/executions`), 404, 'not_found', MISSING_ID);
    });
  });
});
