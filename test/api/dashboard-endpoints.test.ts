/**
 * The endpoints the dashboard added: schedule preview, session, job schemas, jobs overview.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, assertError, flatJob } from './support.ts';

describe('dashboard endpoints', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('pglite', API_ONLY);
  });
  after(async () => t?.close());

  describe('GET /api/v1/schedules/preview', () => {
    const preview = (q: Record<string, string | number>, token?: string | null) =>
      t.api(
        'GET',
        `/api/v1/schedules/preview?${new URLSearchParams(Object.entries(q).map(([k, v]): [string, string] => [k, String(v)]))}`,
        token === undefined ? {} : { token },
      );

    it('gives the next 10 cron fire times in the job zone, as UTC instants and wall-clock times', async () => {
      const r = await preview({ type: 'cron', expression: '0 30 6 ? * MON-FRI', timezone: 'Asia/Ho_Chi_Minh', after: '2026-12-03T20:00:00Z' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.timezone, 'Asia/Ho_Chi_Minh');
      assert.equal(r.body.times.length, 10);
      // 20:00 UTC on Thu 3 Dec is 03:00 on Fri 4 Dec in Ho Chi Minh City; 06:30 there is 23:30 UTC the day before.
      assert.deepEqual(r.body.times[0], { at: '2026-12-03T23:30:00.000Z', local: '2026-12-04T06:30:00+07:00' });
      assert.deepEqual(r.body.times[1], { at: '2026-12-06T23:30:00.000Z', local: '2026-12-07T06:30:00+07:00' }, 'skips the weekend');
      for (const x of r.body.times) assert.match(x.local, /T06:30:00\+07:00$/);
    });

    it('follows daylight saving time in the zone', async () => {
      const r = await preview({ type: 'cron', expression: '0 0 9 * * ?', timezone: 'Europe/Berlin', after: '2026-03-27T12:00:00Z', count: 3 });
      assert.equal(r.status, 200);
      assert.deepEqual(
        r.body.times.map((x: any) => x.local),
        ['2026-03-28T09:00:00+01:00', '2026-03-29T09:00:00+02:00', '2026-03-30T09:00:00+02:00'],
      );
      assert.deepEqual(
        r.body.times.map((x: any) => x.at),
        ['2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z', '2026-03-30T07:00:00.000Z'],
      );
    });

    it('previews fixed_rate and once; fixed_delay has no fire times ahead', async () => {
      const rate = await preview({ type: 'fixed_rate', interval_seconds: 90, after: '2026-01-01T00:00:00Z', count: 3 });
      assert.equal(rate.status, 200);
      assert.deepEqual(
        rate.body.times.map((x: any) => x.at),
        ['2026-01-01T00:01:30.000Z', '2026-01-01T00:03:00.000Z', '2026-01-01T00:04:30.000Z'],
      );
      assert.equal(rate.body.timezone, 'UTC');
      const once = await preview({ type: 'once', at: '2030-05-01T10:00:00+07:00' });
      assert.deepEqual(once.body.times, [{ at: '2030-05-01T03:00:00.000Z', local: '2030-05-01T03:00:00+00:00' }]);
      const past = await preview({ type: 'once', at: '2020-05-01T10:00:00Z' });
      assert.deepEqual(past.body.times, []);
      const delay = await preview({ type: 'fixed_delay', delay_seconds: 30 });
      assert.equal(delay.status, 200);
      assert.deepEqual(delay.body.times, []);
      assert.match(delay.body.note, /30 s after the previous one ends/);
    });

    it('reports a bad schedule at the parameter, with the message a save would give', async () => {
      const bad = await preview({ type: 'cron', expression: '0 9 * * *', timezone: 'Asia/Ho_Chi_Minh' });
      const err = assertError(bad, 400, 'validation_failed', /6 or 7 fields/);
      assert.equal(err.details.problems[0].path, 'expression');
      const zone = await preview({ type: 'cron', expression: '0 0 9 * * ?', timezone: 'Mars/Olympus' });
      assert.equal(assertError(zone, 400, 'validation_failed', /unknown time zone 'Mars\/Olympus'/).details.problems[0].path, 'timezone');
      const noZone = await preview({ type: 'cron', expression: '0 0 9 * * ?' });
      assert.equal(noZone.body.timezone, 'Asia/Ho_Chi_Minh', 'a cron schedule without a zone gets the default, as a saved job does');
      assertError(await preview({ type: 'hourly' }), 400, 'validation_failed', /type/);
      assertError(await t.api('GET', '/api/v1/schedules/preview'), 400, 'validation_failed', /type/);
      assertError(await preview({ type: 'fixed_rate', interval_seconds: 0 }), 400, 'validation_failed', /interval_seconds/);
      assertError(await preview({ type: 'fixed_rate', interval_seconds: 5, count: 1000 }), 400, 'validation_failed', /count/);
      assertError(await preview({ type: 'fixed_rate', interval_seconds: 5, after: 'yesterday' }), 400, 'validation_failed', /after/);
      assertError(await preview({ type: 'fixed_rate', interval_seconds: 5, bogus: 1 }), 400, 'validation_failed', /bogus/);
    });

    it('needs a token (a viewer is enough) and writes no audit row', async () => {
      assertError(await preview({ type: 'fixed_rate', interval_seconds: 5 }, null), 401, 'unauthorized');
      const viewer = await t.token('viewer', 'preview-viewer');
      const before = (await t.api('GET', '/api/v1/audit?limit=1')).body.total;
      const r = await preview({ type: 'fixed_rate', interval_seconds: 5, count: 2 }, viewer);
      assert.equal(r.status, 200);
      assert.equal(r.body.times.length, 2);
      assert.equal((await t.api('GET', '/api/v1/audit?limit=1')).body.total, before);
    });
  });

  it('GET /api/v1/session names the token and its role', async () => {
    const viewer = await t.token('viewer', 'session-viewer');
    const r = await t.api('GET', '/api/v1/session', { token: viewer });
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'session-viewer');
    assert.equal(r.body.role, 'viewer');
    assert.deepEqual(Object.keys(r.body).sort(), ['id', 'name', 'role']);
    assertError(await t.api('GET', '/api/v1/session', { token: 'nope' }), 401, 'unauthorized', /unknown or has been revoked/);
  });

  it('GET /api/v1/schemas/job gives the schema of every step type the validator uses', async () => {
    const r = await t.api('GET', '/api/v1/schemas/job');
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.step_types.map((s: any) => s.type),
      ['http', 'database', 'file', 'sftp', 'wasm'],
    );
    const wasm = r.body.step_types.find((s: any) => s.type === 'wasm');
    assert.deepEqual(wasm.config_schema.required, ['module_id', 'function_name']);
    assert.equal(wasm.config_schema.properties.fuel_limit.default, 1_000_000);
    assert.deepEqual(r.body.job.required, ['name', 'steps']);
  });

  it('GET /api/v1/overview/jobs: next fire time, last status and the filters', async () => {
    const cron = await t.api('POST', '/api/v1/jobs', {
      body: flatJob('ov-cron', { schedule: { type: 'cron', expression: '0 0 3 * * ?', timezone: 'Asia/Ho_Chi_Minh' } }),
    });
    assert.equal(cron.status, 201, JSON.stringify(cron.body));
    const manual = await t.api('POST', '/api/v1/jobs', { body: flatJob('ov-manual', { enabled: false }) });
    assert.equal(manual.status, 201);
    await t.api('POST', `/api/v1/jobs/${manual.body.id}/trigger`, { body: {} });

    const all = await t.api('GET', '/api/v1/overview/jobs?search=ov-');
    assert.equal(all.status, 200);
    assert.deepEqual(
      all.body.items.map((j: any) => j.name),
      ['ov-cron', 'ov-manual'],
    );
    const [c, m] = all.body.items;
    assert.match(c.next_fire_at, /T20:00:00\.000Z$/, '03:00 in Ho Chi Minh City is 20:00 UTC');
    assert.equal(c.last_status, null);
    assert.deepEqual(c.step_types, ['http']);
    assert.equal(m.next_fire_at, null);
    assert.equal(m.last_status, 'queued');

    const names = async (q: string) => (await t.api('GET', `/api/v1/overview/jobs?search=ov-&${q}`)).body.items.map((j: any) => j.name);
    assert.deepEqual(await names('enabled=false'), ['ov-manual']);
    assert.deepEqual(await names('schedule_type=cron'), ['ov-cron']);
    assert.deepEqual(await names('schedule_type=none'), ['ov-manual']);
    assert.deepEqual(await names('last_status=never'), ['ov-cron']);
    assert.deepEqual(await names('last_status=queued'), ['ov-manual']);
    assertError(await t.api('GET', '/api/v1/overview/jobs?last_status=bogus'), 400, 'validation_failed');
  });

  it('GET /api/v1/audit filters by time (since inclusive, until exclusive)', async () => {
    const before = new Date(Date.now() - 1000).toISOString();
    const made = await t.api('POST', '/api/v1/jobs', { body: flatJob('audit-window') });
    assert.equal(made.status, 201);
    const names = async (q: string) => (await t.api('GET', `/api/v1/audit?action=job.create&limit=200&${q}`)).body.items.map((r: any) => r.details?.name);
    assert.ok((await names(`since=${before}`)).includes('audit-window'));
    assert.ok(!(await names(`until=${before}`)).includes('audit-window'));
    assert.deepEqual(await names('since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z'), []);
    assertError(await t.api('GET', '/api/v1/audit?since=yesterday'), 400, 'validation_failed', /since/);
  });
});
