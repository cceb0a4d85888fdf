import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDatabase, type DbKind } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';

const SECRET = 'sk-live-9f8e7d6c5b4a';

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: variables reach runs, secrets stay masked`, () => {
    let t: TestApp;
    let server: TestServer;
    before(async () => {
      t = await startTestApp(kind, { VECRON_POLL_INTERVAL_MS: '100' });
      server = await startHttpServer((r, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ echoed_auth: r.headers.authorization, region: r.headers['x-region'] }));
      });
    });
    after(async () => {
      await t.close();
      await server.close();
    });

    it('a secret global variable and a job variable are used by a step; every answer masks the secret', async () => {
      assert.equal((await t.api('PUT', '/api/v1/variables/api_key', { body: { value: SECRET, secret: true } })).status, 201);
      assert.equal((await t.api('PUT', '/api/v1/variables/region', { body: { value: 'north' } })).status, 201);
      const job = await t.api('POST', '/api/v1/jobs', {
        body: {
          name: 'uses-secrets',
          variables: { region: 'south' },
          steps: [
            { id: 'call', type: 'http', config: { url: server.url, headers: { authorization: 'Bearer ${api_key}', 'x-region': '{{variables.region}}' } } },
          ],
        },
      });
      assert.equal(job.status, 201);
      // job-scoped stored variables override the document's
      assert.equal((await t.api('PUT', `/api/v1/jobs/${job.body.id}/variables/region`, { body: { value: 'central' } })).status, 201);
      const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
      const id = trig.body.execution_id;
      const done = await waitFor(async () => {
        const e = await t.api('GET', `/api/v1/executions/${id}`);
        return ['succeeded', 'failed', 'dead_lettered'].includes(e.body.status) ? e : null;
      }, 'execution');
      assert.equal(done.body.status, 'succeeded', JSON.stringify(done.body.error));
      assert.equal(server.seen.at(-1)!.headers.authorization, `Bearer ${SECRET}`, 'the step got the real secret');
      assert.equal(server.seen.at(-1)!.headers['x-region'], 'central');
      const text = JSON.stringify(done.body);
      assert.ok(!text.includes(SECRET), 'the execution answer never shows the secret');
      assert.equal(done.body.steps[0].output.body.echoed_auth, 'Bearer ***');
      assert.equal(done.body.context.variables.api_key, '***');
      const list = await t.api('GET', '/api/v1/variables');
      assert.ok(!JSON.stringify(list.body).includes(SECRET));
      const audit = await t.api('GET', '/api/v1/audit?limit=200');
      assert.ok(!JSON.stringify(audit.body).includes(SECRET));
    });
  });
});
