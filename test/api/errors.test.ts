import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, assertError, flatJob } from './support.ts';

/** Every problem listed in details.problems, as `path: message`. */
const problemList = (err: { details?: any }): { path: string; message: string }[] => {
  assert.ok(Array.isArray(err.details?.problems), `details.problems is a list: ${JSON.stringify(err)}`);
  return err.details.problems;
};

const problemAt = (err: { details?: any }, path: string) => {
  const p = problemList(err).find((x) => x.path === path);
  assert.ok(p, `a problem at '${path}': ${JSON.stringify(err.details.problems)}`);
  return p;
};

describe('API errors: every bad input gets a 4xx {error: {code, message}} naming the problem', () => {
  let t: TestApp;
  let jobId: string;

  before(async () => {
    t = await startTestApp('pglite', API_ONLY);
    const r = await t.api('POST', '/api/v1/jobs', { body: flatJob('errors-fixture') });
    assert.equal(r.status, 201);
    jobId = r.body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('malformed JSON is 400 invalid_json on every endpoint that takes a body', async () => {
    for (const [method, path] of [
      ['POST', '/api/v1/jobs'],
      ['PUT', `/api/v1/jobs/${jobId}`],
      ['POST', `/api/v1/jobs/${jobId}/trigger`],
      ['POST', '/api/v1/tokens'],
    ]) {
      const r = await t.api(method, path, { rawBody: '{"name": "x", ' });
      assertError(r, 400, 'invalid_json', /not valid JSON/);
    }
    const count = await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM executions');
    assert.equal(count.rows[0].n, 0, 'a bad trigger body queues nothing');
  });

  it('an unknown step type is 400 validation_failed with the problem at steps[0].type', async () => {
    const r = await t.api('POST', '/api/v1/jobs', { body: { name: 'bad-type', steps: [{ id: 'a', type: 'ftp', config: {} }] } });
    const err = assertError(r, 400, 'validation_failed', 'steps[0].type', "'ftp'");
    const p = problemAt(err, 'steps[0].type');
    assert.match(p.message, /unknown step type 'ftp'/);
    for (const known of ['http', 'database', 'file', 'sftp', 'wasm']) assert.ok(p.message.includes(known), `lists ${known}`);
    const n = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE name = 'bad-type'");
    assert.equal(n.rows[0].n, 0);
  });

  it('invalid cron expressions and unknown time zones are named', async () => {
    const withSchedule = (schedule: unknown) => t.api('POST', '/api/v1/jobs', { body: flatJob('bad-schedule', { schedule }) });

    const five = assertError(await withSchedule({ type: 'cron', expression: '*/5 * * * *' }), 400, 'validation_failed', 'schedule.expression');
    assert.match(problemAt(five, 'schedule.expression').message, /6 or 7 fields.*got 5/);

    const sixtyOne = assertError(await withSchedule({ type: 'cron', expression: '61 * * * * *' }), 400, 'validation_failed', '61');
    assert.match(problemAt(sixtyOne, 'schedule.expression').message, /seconds.*61|61.*seconds/);

    const tz = assertError(
      await withSchedule({ type: 'cron', expression: '0 0 * * * *', timezone: 'Mars/Olympus_Mons' }),
      400,
      'validation_failed',
      'Mars/Olympus_Mons',
    );
    assert.match(problemAt(tz, 'schedule.timezone').message, /unknown time zone 'Mars\/Olympus_Mons'/);
  });

  it('a document with several problems reports all of them at once', async () => {
    const r = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'many-problems',
        max_retries: 99,
        schedule: { type: 'cron', expression: '61 * * * * *', timezone: 'Nowhere/Land' },
        steps: [
          { id: 'a', type: 'ftp', config: {} },
          { id: 'b', type: 'http', config: { method: 'GET' } },
        ],
      },
    });
    const err = assertError(r, 400, 'validation_failed');
    const paths = problemList(err).map((p) => p.path);
    for (const path of ['max_retries', 'schedule.expression', 'schedule.timezone', 'steps[0].type', 'steps[1].config']) {
      assert.ok(paths.includes(path), `reports ${path}: ${JSON.stringify(paths)}`);
      assert.ok(err.message.includes(path), `the message names ${path}`);
    }
    assert.match(problemAt(err, 'steps[1].config').message, /'url'/);
    assert.match(problemAt(err, 'max_retries').message, /at most 10/);
  });

  it('a body that is not an object is 400 on POST and PUT', async () => {
    for (const [method, path] of [
      ['POST', '/api/v1/jobs'],
      ['PUT', `/api/v1/jobs/${jobId}`],
    ]) {
      for (const body of [[flatJob('in-an-array')], 'a job', 42]) {
        const r = await t.api(method, path, { body });
        assertError(r, 400, 'validation_failed', /object/);
      }
    }
    assertError(await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: [1, 2] }), 400, 'validation_failed', /object/);
    assertError(await t.api('POST', '/api/v1/tokens', { body: ['viewer'] }), 400, 'validation_failed', /object/);
    const job = await t.api('GET', `/api/v1/jobs/${jobId}`);
    assert.equal(job.body.version, 1, 'the job was not changed');
  });

  const sendAs = (contentType: string) =>
    Promise.all(
      [
        ['POST', '/api/v1/jobs'],
        ['PUT', `/api/v1/jobs/${jobId}`],
        ['POST', '/api/v1/tokens'],
      ].map(([method, path]) => t.api(method, path, { rawBody: JSON.stringify(flatJob('not-json')), headers: { 'content-type': contentType } })),
    );

  it('a body sent as application/xml is 415 unsupported_media_type', async () => {
    for (const r of await sendAs('application/xml')) assertError(r, 415, 'unsupported_media_type', 'application/json');
  });

  it('a body sent as text/plain is 415 unsupported_media_type (not parsed as a string)', async () => {
    for (const r of await sendAs('text/plain')) assertError(r, 415, 'unsupported_media_type', 'application/json');
  });

  it('bad query parameters are 400 naming the parameter, on every list endpoint', async () => {
    const lists = ['/api/v1/jobs', `/api/v1/jobs/${jobId}/executions`, '/api/v1/executions', '/api/v1/audit'];
    const cases: [string, string, RegExp][] = [
      ['limit=0', 'limit', />= 1|at least 1/],
      ['limit=abc', 'limit', /integer/],
      ['limit=201', 'limit', /<= 200|at most 200/],
      ['page=-1', 'page', />= 1|at least 1/],
      ['page=0', 'page', />= 1|at least 1/],
      ['page=1.5', 'page', /integer/],
      ['colour=blue', 'colour', /unknown/],
    ];
    for (const path of lists) {
      for (const [query, param, why] of cases) {
        const err = assertError(await t.api('GET', `${path}?${query}`), 400, 'validation_failed', param, why);
        const names = problemList(err).map((p) => p.path.split('.').pop());
        assert.deepEqual(names, [param], `${path}?${query}: ${JSON.stringify(err.details.problems)}`);
      }
    }
    assertError(await t.api('GET', '/api/v1/jobs?enabled=maybe'), 400, 'validation_failed', 'enabled', 'boolean');
    assertError(await t.api('GET', '/api/v1/audit?outcome=maybe'), 400, 'validation_failed', 'outcome', 'success');
    const both = assertError(await t.api('GET', '/api/v1/jobs?limit=0&page=0'), 400, 'validation_failed', 'limit', 'page');
    assert.equal(problemList(both).length, 2, 'both bad parameters are reported');
  });

  it('unknown routes and ids are 404 not_found naming them', async () => {
    assertError(await t.api('GET', '/api/v1/nothing-here'), 404, 'not_found', '/api/v1/nothing-here');
    assertError(await t.api('GET', '/no/such/page'), 404, 'not_found', '/no/such/page');
    assertError(await t.api('PATCH', `/api/v1/jobs/${jobId}`, { body: {} }), 404, 'not_found', 'PATCH');
    for (const [method, path] of [
      ['GET', `/api/v1/jobs/${MISSING_ID}`],
      ['PUT', `/api/v1/jobs/${MISSING_ID}`],
      ['DELETE', `/api/v1/jobs/${MISSING_ID}`],
      ['POST', `/api/v1/jobs/${MISSING_ID}/enable`],
      ['POST', `/api/v1/jobs/${MISSING_ID}/disable`],
      ['POST', `/api/v1/jobs/${MISSING_ID}/trigger`],
      ['GET', `/api/v1/jobs/${MISSING_ID}/executions`],
      ['GET', `/api/v1/executions/${MISSING_ID}`],
      ['DELETE', `/api/v1/tokens/${MISSING_ID}`],
      ['GET', '/api/v1/jobs/12345'],
      ['DELETE', '/api/v1/tokens/12345'],
    ]) {
      const r = await t.api(method, path, method === 'PUT' ? { body: flatJob('ghost') } : {});
      assertError(r, 404, 'not_found', path.includes(MISSING_ID) ? MISSING_ID : '12345');
    }
  });

  it('a bad token request names the bad fields', async () => {
    const err = assertError(await t.api('POST', '/api/v1/tokens', { body: { name: '', role: 'root' } }), 400, 'validation_failed', 'name', 'role');
    assert.match(problemAt(err, 'role').message, /viewer, operator, admin/);
    const missing = assertError(await t.api('POST', '/api/v1/tokens', { body: { name: 'x' } }), 400, 'validation_failed', "'role'");
    assert.equal(problemList(missing).length, 1);
    const extra = assertError(
      await t.api('POST', '/api/v1/tokens', { body: { name: 'x', role: 'viewer', expires: 'never' } }),
      400,
      'validation_failed',
      'expires',
    );
    assert.equal(problemList(extra)[0].path, 'expires');
  });
});

describe('API errors: request body size limit (VECRON_MAX_JSON_BYTES)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('pglite', { ...API_ONLY, VECRON_MAX_JSON_BYTES: '2048' });
  });
  after(async () => {
    await t?.close();
  });

  it('a body over the limit is 413 payload_too_large; one under it is accepted', async () => {
    const big = flatJob('big-body', { description: 'x'.repeat(3000) });
    assert.ok(JSON.stringify(big).length > 2048);
    assertError(await t.api('POST', '/api/v1/jobs', { body: big }), 413, 'payload_too_large', /larger than the limit of 2048 bytes \(VECRON_MAX_JSON_BYTES\)/);
    const n = await t.app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE name = 'big-body'");
    assert.equal(n.rows[0].n, 0);

    const small = flatJob('small-body', { description: 'x'.repeat(1500) });
    assert.ok(JSON.stringify(small).length < 2048);
    const ok = await t.api('POST', '/api/v1/jobs', { body: small });
    assert.equal(ok.status, 201, 'a body under the configured limit is accepted');
  });
});
