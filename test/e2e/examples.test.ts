/**
 * Every examples/<name>/run.sh, run as a user runs it: once against a running server ($VECRON_URL,
 * $VECRON_TOKEN), once more there (the job is then updated by name, the module kept), and once with
 * no server given (it starts its own). Each brings its mock API and database on loopback itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CUSTOMER_TIERS } from '../fixtures/customer-tiers.ts';
import { settings } from '../../src/config/index.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const EXAMPLES = readdirSync(join(ROOT, 'examples'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(ROOT, 'examples', d.name, 'job.json')))
  .map((d) => d.name)
  .sort();

function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const ours = new Set(Object.values(settings).map((s) => s.env));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!ours.has(k) && !k.startsWith('VECRON_') && k !== 'NODE_ENV') env[k] = v;
  return { ...env, VECRON_LOG_LEVEL: 'warn', ...extra };
}

async function runScript(name: string, env: Record<string, string>): Promise<any> {
  const { stdout } = await run('bash', [join(ROOT, 'examples', name, 'run.sh'), '--json'], { env: userEnv(env), timeout: 170_000 });
  const line = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{"example"'))
    .at(-1);
  assert.ok(line, `no result line in: ${stdout}`);
  return JSON.parse(line);
}

/** What each example's run must show. */
const CHECKS: Record<string, (r: any) => void> = {
  'customer-analysis': (r) => {
    assert.deepEqual(
      r.steps.map((s: any) => s.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    assert.deepEqual(
      r.rows,
      CUSTOMER_TIERS.customers.map((c) => ({ customer_id: c.id, name: c.name, revenue: c.revenue, tier: c.tier })),
    );
  },
  'customer-analysis-plugin': (r) => {
    // one step did the fetch, the tiers and the insert; a platinum customer routed to the VIP notice
    assert.deepEqual(
      r.steps.map((s: any) => [s.id, s.status]),
      [
        ['analyse', 'succeeded'],
        ['notify_vip', 'succeeded'],
      ],
    );
    assert.deepEqual(
      r.rows,
      CUSTOMER_TIERS.customers.map((c) => ({ customer_id: c.id, name: c.name, revenue: c.revenue, tier: c.tier })),
    );
    assert.deepEqual(r.received, [{ method: 'POST', url: '/vip', body: { execution: r.execution_id, tiers: { platinum: 1, gold: 1, silver: 1, bronze: 1 } } }]);
  },
  'low-stock-routing': (r) => {
    assert.deepEqual(
      r.steps.map((s: any) => [s.id, s.status]),
      [
        ['check_inventory', 'succeeded'],
        ['route', 'succeeded'],
        ['send_low_stock_alert', 'succeeded'],
        ['continue_normal_flow', 'skipped'],
      ],
    );
    assert.deepEqual(r.received, [
      { method: 'POST', url: '/alerts', body: { sku: 'SKU-LOW', priority: 'high', message: 'Stock level 42 below threshold 100' } },
    ]);
  },
  'order-validation': (r) => {
    assert.deepEqual(
      r.steps.map((s: any) => s.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    assert.deepEqual(r.received, [{ method: 'POST', url: '/shipments', body: { order: 'o-1', execution: r.execution_id } }]);
  },
};

describe('examples/*/run.sh', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('pglite', { VECRON_POLL_INTERVAL_MS: '200' });
  });
  after(async () => t?.close());

  it('every example has a run.sh and a check here', () => {
    assert.deepEqual(EXAMPLES, Object.keys(CHECKS).sort());
    for (const name of EXAMPLES) assert.ok(existsSync(join(ROOT, 'examples', name, 'run.sh')), name);
  });

  for (const name of Object.keys(CHECKS)) {
    it(`${name}: runs against a given server, creating the job disabled`, { timeout: 180_000 }, async () => {
      const r = await runScript(name, { VECRON_URL: t.url, VECRON_TOKEN: t.adminToken });
      assert.equal(r.status, 'succeeded', JSON.stringify(r));
      CHECKS[name](r);
      const job = await t.api('GET', `/api/v1/jobs/${r.job_id}`);
      assert.equal(job.body.enabled, false, 'example jobs are created disabled');
      assert.equal((await t.api('GET', `/api/v1/executions?job_id=${r.job_id}`)).body.total, 1, 'only the manual run, no scheduled one');
    });
  }

  it('a second run on the same server updates the job of that name and keeps the uploaded module', { timeout: 180_000 }, async () => {
    const before = await t.api('GET', '/api/v1/jobs?name=order-validation');
    const r = await runScript('order-validation', { VECRON_URL: t.url, VECRON_TOKEN: t.adminToken });
    assert.equal(r.status, 'succeeded', JSON.stringify(r));
    assert.equal(r.job_id, before.body.items[0].id);
    assert.equal((await t.api('GET', `/api/v1/jobs/${r.job_id}`)).body.version, before.body.items[0].version + 1);
  });

  it('with no server given, a script starts its own and stops it', { timeout: 180_000 }, async () => {
    const r = await runScript('low-stock-routing', {});
    assert.equal(r.status, 'succeeded', JSON.stringify(r));
    CHECKS['low-stock-routing'](r);
  });
});
