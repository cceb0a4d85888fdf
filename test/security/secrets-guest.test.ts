/**
 * Secrets never reach the guest (docs/security.md): a wasm step's default input (the job context)
 * and `get_context("")` carry every secret variable as `***`, whatever the module does with it.
 * The probe module answers the bytes it was given as a JSON array of numbers, an encoding that no
 * output masking recognises, so these tests see exactly what the guest saw.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { forEachDatabase, type DbKind } from '../helpers/db.ts';
import { waitFor } from '../helpers/http-server.ts';

const probe = readFileSync(new URL('../../fixtures/wasm/secret-probe/secret-probe.wasm', import.meta.url));
const SECRET = 'pa55-w0rd-only-the-host-knows';
const decode = (bytes: number[]) => Buffer.from(bytes).toString('utf8');

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: secrets never reach the guest`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(kind);
      const form = new FormData();
      form.set('file', new Blob([probe]), 'secret-probe.wasm');
      form.set('name', 'secret-probe');
      form.set('version', '1.0.0');
      form.set('author', 'security-tests');
      const up = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
      assert.equal(up.status, 201, await up.text());
      for (const [name, value, secret] of [
        ['db_password', SECRET, true],
        ['region', 'vn-south', false],
      ] as const) {
        const r = await t.api('PUT', `/api/v1/variables/${name}`, { body: { value, secret } });
        assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
      }
    });
    after(async () => {
      await t?.close();
    });

    it('the default input, a templated input and get_context("") show a secret variable as *** and a plain one as it is', async () => {
      const wasm = (id: string, fn: string) => ({ id, type: 'wasm', config: { module_id: 'secret-probe@1.0.0', function_name: fn } });
      const job = await t.api('POST', '/api/v1/jobs', {
        body: {
          name: `secret-probe-${kind}`,
          steps: [
            wasm('input', 'input_bytes'),
            wasm('context', 'context_bytes'),
            // A job that templates the secret into the module's input explicitly: still `***`.
            {
              ...wasm('templated', 'input_bytes'),
              config: {
                ...wasm('t', 'input_bytes').config,
                input: { variables: { db_password: '{{variables.db_password}}', region: '{{variables.region}}' } },
              },
            },
          ],
        },
      });
      assert.equal(job.status, 201, JSON.stringify(job.body));
      const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`, { body: {} });
      assert.equal(trig.status, 202, JSON.stringify(trig.body));
      const e = await waitFor(async () => {
        const r = await t.api('GET', `/api/v1/executions/${trig.body.execution_id}`);
        return ['succeeded', 'failed', 'dead_lettered'].includes(r.body.status) ? r.body : null;
      }, 'the probe execution to finish');
      assert.equal(e.status, 'succeeded', JSON.stringify(e.steps));
      for (const id of ['input', 'context', 'templated']) {
        const seen = JSON.parse(decode(e.steps.find((s: any) => s.id === id).output));
        assert.equal(seen.variables.db_password, '***', `step ${id}: ${JSON.stringify(seen.variables)}`);
        assert.equal(seen.variables.region, 'vn-south');
        assert.ok(!JSON.stringify(seen).includes(SECRET), `step ${id} saw the secret`);
      }
    });
  });
});
