/**
 * A run's log lines and host-call record, stored with its row (migration 011) and shown, masked, by
 * GET /api/v1/wasm/executions/{id}/logs: a real app, a real job, the host-abi guest.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { forEachDatabase, type DbKind } from '../helpers/db.ts';
import { waitFor } from '../helpers/http-server.ts';

const wasm = readFileSync(new URL('../../fixtures/wasm/host-abi/host-abi.wasm', import.meta.url));
const SECRET = 'sk-live-7f3a9c0e5b2d4816';

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: the host-call record through the API`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(kind, { VECRON_POLL_INTERVAL_MS: '200' });
      const v = await t.api('PUT', '/api/v1/variables/host_key', { body: { value: SECRET, secret: true } });
      assert.ok(v.status === 200 || v.status === 201, JSON.stringify(v.body));
      const form = new FormData();
      form.set('file', new Blob([wasm]), 'host-abi.wasm');
      form.set('name', 'host-abi');
      form.set('version', '1.0.0');
      form.set('author', 'tests');
      const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
      assert.equal(res.status, 201, await res.text());
    });
    after(() => t?.close());

    it('stores the log lines and host calls of a run, masked, and shows them', async () => {
      const job = await t.api('POST', '/api/v1/jobs', {
        body: {
          name: `host-record-${kind}`,
          steps: [
            {
              id: 'call',
              type: 'wasm',
              config: { module_id: 'host-abi@1.0.0', function_name: 'log_and_call', input: { op: 'now', key: '{{variables.host_key}}' } },
            },
          ],
        },
      });
      assert.equal(job.status, 201, JSON.stringify(job.body));
      const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`, { body: {} });
      assert.equal(trig.status, 202, JSON.stringify(trig.body));
      const id = trig.body.execution_id;
      // Generous: one short run, but a loaded CI machine with PGlite can take tens of seconds to pick it up.
      await waitFor(
        async () => {
          const r = await t.api('GET', `/api/v1/executions/${id}`);
          return ['succeeded', 'failed', 'dead_lettered'].includes(r.body.status) ? r.body : null;
        },
        `execution ${id}`,
        120_000,
      );

      const r = await t.api('GET', `/api/v1/wasm/executions/${id}/logs`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const [run] = r.body.logs;
      assert.equal(run.function_name, 'log_and_call');
      // The module logged its input: stored, with the secret masked.
      assert.equal(run.logs.length, 1);
      assert.equal(run.logs[0].level, 'info');
      assert.match(run.logs[0].message, /"op":"now"/);
      assert.ok(!run.logs[0].message.includes(SECRET), run.logs[0].message);
      assert.match(run.logs[0].message, /\*\*\*/);
      // One host call, recorded with every field; its request masked.
      assert.equal(run.host_calls.length, 1);
      const c = run.host_calls[0];
      assert.equal(c.seq, 0);
      assert.equal(c.function, 'time');
      assert.ok(['worker', 'host'].includes(c.served));
      assert.equal(typeof c.outcome, 'string');
      // The guest never got the secret (its templated input carries it as ***, main's 97f6b2c): the request it sent is that size.
      assert.equal(c.bytes_in, Buffer.byteLength(JSON.stringify({ op: 'now', key: '***' })));
      assert.ok(c.bytes_out > 0);
      assert.ok(c.duration_us >= 0);
      assert.ok(Date.parse(c.at) > 0);
      assert.deepEqual(c.request, { op: 'now', key: '***' });
      assert.ok(c.response !== null && typeof c.response === 'object');
      assert.equal(run.host_calls_dropped, 0);
      assert.ok(!JSON.stringify(r.body).includes(SECRET), 'the secret appears nowhere in the answer');

      // A module's list of runs leaves the record out (the execution's logs show it).
      const list = await t.api('GET', `/api/v1/wasm/modules/host-abi@1.0.0/logs`);
      assert.equal(list.status, 200, JSON.stringify(list.body));
      assert.equal(list.body.total, 1);
      assert.equal(list.body.items[0].host_calls, undefined);
    });
  });
});
