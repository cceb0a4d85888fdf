import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, MISSING_ID, assertError, flatJob } from './support.ts';
import { decryptSecret, loadSecretKey, secretKeyFor } from '../../src/secrets/crypto.ts';
import { loadRunVariables, setVariable } from '../../src/variables/repository.ts';

const SECRET = 'sup3r-s3cret-Value!';
const JOB_SECRET = 'job-only-secret-9f2c';

forEachDatabase((kind) => {
  describe(`${kind}: variables API`, () => {
    let t: TestApp;
    /** Every response body seen in this suite, to check that no secret ever leaves the server. */
    const seen: string[] = [];
    const api: TestApp['api'] = async (method, path, opts) => {
      const res = await t.api(method, path, opts);
      seen.push(JSON.stringify(res.body));
      return res;
    };

    before(async () => {
      t = await startTestApp(kind, API_ONLY);
    });
    after(async () => {
      await t?.close();
    });

    it('creates, replaces, reads and deletes global variables', async () => {
      let res = await api('PUT', '/api/v1/variables/region', { body: { value: 'ap-southeast-1', description: 'AWS region' } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.name, 'region');
      assert.equal(res.body.scope, 'global');
      assert.equal(res.body.job_id, null);
      assert.equal(res.body.secret, false);
      assert.equal(res.body.value, 'ap-southeast-1');
      assert.equal(res.body.description, 'AWS region');
      assert.equal(res.body.updated_by, 'test-admin');

      res = await api('PUT', '/api/v1/variables/region', { body: { value: { primary: 'hcm', zones: [1, 2] } } });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.value, { primary: 'hcm', zones: [1, 2] });
      assert.equal(res.body.description, 'AWS region', 'an omitted description is kept');

      res = await api('PUT', '/api/v1/variables/nothing', { body: { value: null } });
      assert.equal(res.status, 201);
      assert.equal(res.body.value, null);

      res = await api('GET', '/api/v1/variables');
      assert.equal(res.status, 200);
      assert.deepEqual(
        res.body.items.map((v: any) => v.name),
        ['nothing', 'region'],
      );
      assert.equal(res.body.total, 2);

      res = await api('GET', '/api/v1/variables/region');
      assert.deepEqual(res.body.value, { primary: 'hcm', zones: [1, 2] });

      assert.equal((await api('DELETE', '/api/v1/variables/nothing')).status, 204);
      assertError(await api('DELETE', '/api/v1/variables/nothing'), 404, 'not_found', "variable 'nothing'");
      assertError(await api('GET', '/api/v1/variables/nothing'), 404, 'not_found');
    });

    it('stores secret values encrypted and shows them only as ***', async () => {
      let res = await api('PUT', '/api/v1/variables/api_key', { body: { value: SECRET, secret: true } });
      assert.equal(res.status, 201);
      assert.deepEqual({ name: res.body.name, secret: res.body.secret, value: res.body.value }, { name: 'api_key', secret: true, value: '***' });

      res = await api('GET', '/api/v1/variables');
      const listed = res.body.items.find((v: any) => v.name === 'api_key');
      assert.equal(listed.value, '***');
      assert.equal((await api('GET', '/api/v1/variables/api_key')).body.value, '***');

      const { rows } = await t.app.db.query<any>("SELECT value, encrypted_value, secret FROM variables WHERE name = 'api_key'");
      assert.equal(rows[0].value, null, 'no plaintext column value');
      assert.ok(!rows[0].encrypted_value.includes(SECRET));
      assert.match(rows[0].encrypted_value, /^v1:/);
      assert.equal(decryptSecret(secretKeyFor(t.app.config), rows[0].encrypted_value), SECRET, 'the app key decrypts it');

      // updating the value without repeating secret: true keeps it secret
      res = await api('PUT', '/api/v1/variables/api_key', { body: { value: SECRET + '-2' } });
      assert.equal(res.status, 200);
      assert.equal(res.body.secret, true);
      assert.equal(res.body.value, '***');
      const again = await t.app.db.query<any>("SELECT value, encrypted_value FROM variables WHERE name = 'api_key'");
      assert.equal(again.rows[0].value, null);
      assert.equal(decryptSecret(secretKeyFor(t.app.config), again.rows[0].encrypted_value), SECRET + '-2');
      await api('PUT', '/api/v1/variables/api_key', { body: { value: SECRET, secret: true } });
    });

    it('validates names and secret values', async () => {
      // (names of 101..128 characters are valid but Fastify's default maxParamLength, 100, refuses them
      // with 414 before they reach the route; see the report)
      for (const bad of ['1abc', 'has-dash', 'a.b', '%C3%A9t%C3%A9', 'a%20b']) {
        assertError(await api('PUT', `/api/v1/variables/${bad}`, { body: { value: 1 } }), 400, 'validation_failed', 'must start with a letter or _');
      }
      assert.equal((await api('PUT', `/api/v1/variables/_${'x'.repeat(99)}`, { body: { value: 1 } })).status, 201);
      assertError(await api('GET', '/api/v1/variables/a.b'), 400, 'validation_failed');
      assertError(await api('PUT', '/api/v1/variables/num', { body: { value: 42, secret: true } }), 400, 'validation_failed', 'must be a string');
      assertError(await api('PUT', '/api/v1/variables/short', { body: { value: 'abc', secret: true } }), 400, 'validation_failed', 'at least 4 characters');
      assertError(await api('PUT', '/api/v1/variables/novalue', { body: { secret: false } }), 400, 'validation_failed', 'value');
      assertError(await api('PUT', '/api/v1/variables/extra', { body: { value: 1, colour: 'red' } }), 400, 'validation_failed', 'colour');
    });

    it('lets viewers read but not write, and needs a token', async () => {
      const viewer = await t.token('viewer', 'var-viewer');
      assert.equal((await api('GET', '/api/v1/variables', { token: viewer })).status, 200);
      assertError(await api('PUT', '/api/v1/variables/x', { token: viewer, body: { value: 1 } }), 403, 'forbidden', 'operator');
      assertError(await api('DELETE', '/api/v1/variables/region', { token: viewer }), 403, 'forbidden');
      assertError(await api('GET', '/api/v1/variables', { token: null }), 401, 'unauthorized');
      const operator = await t.token('operator', 'var-operator');
      assert.equal((await api('PUT', '/api/v1/variables/by_operator', { token: operator, body: { value: true } })).status, 201);
    });

    it('keeps per-job variables apart from global ones, and 404s for unknown jobs', async () => {
      const job = (await api('POST', '/api/v1/jobs', { body: flatJob('vars-job', { variables: { region: 'doc', from_doc: 1, overridden: 'doc' } }) })).body;
      let res = await api('PUT', `/api/v1/jobs/${job.id}/variables/overridden`, { body: { value: 'job' } });
      assert.equal(res.status, 201);
      assert.equal(res.body.scope, 'job');
      assert.equal(res.body.job_id, job.id);
      res = await api('PUT', `/api/v1/jobs/${job.id}/variables/api_key`, { body: { value: JOB_SECRET, secret: true, description: 'job key' } });
      assert.equal(res.status, 201);
      assert.equal(res.body.value, '***');

      res = await api('GET', `/api/v1/jobs/${job.id}/variables`);
      assert.deepEqual(
        res.body.items.map((v: any) => [v.name, v.value]),
        [
          ['api_key', '***'],
          ['overridden', 'job'],
        ],
      );
      res = await api('GET', '/api/v1/variables');
      assert.ok(!res.body.items.some((v: any) => v.name === 'overridden'), 'job variables are not global');
      assert.equal(res.body.items.find((v: any) => v.name === 'api_key').scope, 'global');

      for (const id of [MISSING_ID, 'not-a-uuid']) {
        assertError(await api('GET', `/api/v1/jobs/${id}/variables`), 404, 'not_found', 'job');
        assertError(await api('PUT', `/api/v1/jobs/${id}/variables/x`, { body: { value: 1 } }), 404, 'not_found', 'job');
        assertError(await api('DELETE', `/api/v1/jobs/${id}/variables/x`), 404, 'not_found', 'job');
      }

      // precedence: global < job document < job variables; secrets decrypted and listed for masking
      await api('PUT', '/api/v1/variables/only_global', { body: { value: 'g' } });
      const run = await loadRunVariables(t.app.db, secretKeyFor(t.app.config), job.id, job.variables);
      assert.equal(run.values.only_global, 'g');
      assert.equal(run.values.region, 'doc', 'the job document overrides a global variable');
      assert.equal(run.values.from_doc, 1);
      assert.equal(run.values.overridden, 'job', 'a job variable overrides the job document');
      assert.equal(run.values.api_key, JOB_SECRET, 'the job secret overrides the global one');
      assert.deepEqual(run.secrets.sort(), [JOB_SECRET, SECRET].sort(), 'every decrypted secret is listed');

      assert.equal((await api('DELETE', `/api/v1/jobs/${job.id}/variables/overridden`)).status, 204);
      assertError(await api('DELETE', `/api/v1/jobs/${job.id}/variables/overridden`), 404, 'not_found');
      assert.equal((await api('DELETE', `/api/v1/jobs/${job.id}`)).status, 204);
      const left = await t.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM variables WHERE job_id = $1', [job.id]);
      assert.equal(left.rows[0].n, 0, 'deleting the job deletes its variables');
    });

    it('handles a variable named __proto__ as an ordinary name', async () => {
      const job = (await api('POST', '/api/v1/jobs', { body: flatJob('proto-job') })).body;
      assert.equal((await api('PUT', '/api/v1/jobs/' + job.id + '/variables/__proto__', { body: { value: { polluted: true } } })).status, 201);
      const run = await loadRunVariables(t.app.db, secretKeyFor(t.app.config), job.id, {});
      assert.equal(Object.getPrototypeOf(run.values), Object.prototype);
      assert.deepEqual(Object.getOwnPropertyDescriptor(run.values, '__proto__')?.value, { polluted: true });
      assert.equal((run.values as any).polluted, undefined);
    });

    it('fails clearly when the key differs from the one that encrypted the secrets', async () => {
      const otherKey = loadSecretKey({ secretKey: 'another-key-another-key-another-key', dataDir: t.dataDir });
      const job = (await api('POST', '/api/v1/jobs', { body: flatJob('wrong-key-job') })).body;
      await assert.rejects(
        loadRunVariables(t.app.db, otherKey, job.id, {}),
        /global variable 'api_key': cannot decrypt secret: the key differs from the one used to encrypt it \(check VECRON_SECRET_KEY\)/,
      );
      // and setVariable with that key does not disturb the rest
      await setVariable(t.app.db, otherKey, { jobId: null, name: 'other_key_secret', value: 'xxxx-yyyy', secret: true, actor: null });
      assert.equal((await api('GET', '/api/v1/variables/other_key_secret')).body.value, '***');
      await api('DELETE', '/api/v1/variables/other_key_secret');
    });

    it('never puts a secret value in an API answer or in the audit log', async () => {
      const audit = await api('GET', '/api/v1/audit?limit=200');
      assert.equal(audit.status, 200);
      const sets = audit.body.items.filter((e: any) => e.action === 'variable.set');
      assert.ok(sets.length >= 5, 'variable.set is audited');
      const apiKeySet = sets.find((e: any) => e.resource_id === 'api_key' && e.details?.scope === 'global');
      assert.equal(apiKeySet.resource_type, 'variable');
      assert.equal(apiKeySet.outcome, 'success');
      assert.equal(apiKeySet.details.secret, true);
      const jobSet = sets.find((e: any) => e.resource_id === 'api_key' && e.details?.scope === 'job');
      assert.ok(jobSet.details.job_id);
      assert.ok(audit.body.items.some((e: any) => e.action === 'variable.delete' && e.resource_id === 'nothing'));
      const denied = audit.body.items.find((e: any) => e.action === 'variable.set' && e.outcome === 'denied');
      assert.ok(denied, 'refused writes are audited too');

      const { rows } = await t.app.db.query<{ t: string }>('SELECT row_to_json(a)::text AS t FROM audit_log a');
      for (const secret of [SECRET, SECRET + '-2', JOB_SECRET]) {
        for (const r of rows) assert.ok(!r.t.includes(secret), `audit row leaks a secret: ${r.t}`);
        for (const body of seen) assert.ok(!body.includes(secret), `API answer leaks a secret: ${body}`);
      }
      assert.ok(seen.length > 30);
    });
  });
});
