/**
 * The dashboard's concurrency and rate limits (issue 18) in a real browser: the job builder's
 * fields (a problem the server finds shown at its field), the limits on the job page, and on the
 * execution page the reason a queued execution waits, until it runs.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import { assertAccessible, browserUnavailable, ensureDashboardBuilt, launchBrowser, openPage, settle, signIn, type WatchedPage } from './support.ts';

const skip = browserUnavailable();

describe('dashboard: concurrency and rate limits', { skip: skip ?? false }, () => {
  let t: TestApp;
  let target: TestServer;
  let browser: Browser;
  let w: WatchedPage;
  let page: Page;
  let jobId: string;
  const held: ServerResponse[] = [];
  let hold = true;

  before(async () => {
    ensureDashboardBuilt();
    target = await startHttpServer((_req, res) => {
      if (hold) held.push(res);
      else res.end('{}');
    });
    t = await startTestApp('pglite', { VECRON_WORKER_CONCURRENCY: '2', VECRON_POLL_INTERVAL_MS: '200' });
    browser = await launchBrowser();
    w = await openPage(browser);
    page = w.page;
    await signIn(page, t.url, t.adminToken);
  });
  after(async () => {
    for (const r of held) r.end('{}');
    await w?.close();
    await browser?.close();
    await t?.close();
    await target?.close();
  });

  it('builds a job with a concurrency key and a rate limit; a key without a limit is refused at its field', async () => {
    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByRole('link', { name: 'New job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    await page.getByLabel('Name *').fill('per-customer');
    await page.getByRole('button', { name: '+ http' }).click();
    await page.locator('li[data-step-id="http_1"]').getByLabel('url *').fill(`${target.url}/sync`);
    const key = page.getByLabel('Concurrency key');
    await key.fill('customer-{{trigger.payload.customer}}');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('save-error').waitFor();
    assert.equal(await key.getAttribute('aria-invalid'), 'true');
    const described = (await key.getAttribute('aria-describedby'))!.split(' ').pop();
    assert.match(await page.locator(`[id="${described}"]`).innerText(), /no effect on its own/);

    await page.getByLabel('Running at once per key').fill('1');
    await page.getByLabel('Starts per interval').fill('100');
    await page.getByLabel('Interval (seconds)').fill('60');
    await page.getByLabel('Counted per').selectOption('key');
    await settle(page);
    await assertAccessible(page, 'builder with limits');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'per-customer', level: 1 }).waitFor();
    jobId = /\/jobs\/([0-9a-f-]{36})$/.exec(page.url())![1];
    const saved = (await t.api('GET', `/api/v1/jobs/${jobId}`)).body;
    assert.equal(saved.concurrency_key, 'customer-{{trigger.payload.customer}}');
    assert.equal(saved.concurrency_limit, 1);
    assert.deepEqual(saved.rate_limit, { limit: 100, interval_seconds: 60, per: 'key' });
    assert.match(
      await page.getByTestId('job-limits').innerText(),
      /1 running per key customer-\{\{trigger\.payload\.customer\}\}.*100 starts per 60 s \(key value\)/,
    );
  });

  it('shows why a queued execution waits, and that it runs once the slot frees', async () => {
    const first = (await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: { customer: '42' } })).body.execution_id;
    await waitFor(async () => held.length === 1, 'the first run to be held');
    const second = (await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: { customer: '42' } })).body.execution_id;
    await page.goto(`${t.url}/executions/${second}`);
    const note = page.getByTestId('waiting');
    await note.waitFor();
    assert.equal(await note.getAttribute('data-code'), 'concurrency_limit');
    assert.match(await note.innerText(), /1 of 1 executions with key customer-42 are running/);
    assert.match(await page.getByTestId('limits').innerText(), /1 running per key customer-42/);
    await settle(page);
    await assertAccessible(page, 'execution waiting for a slot');

    hold = false;
    held.splice(0).forEach((r) => r.end('{}'));
    await page.locator('h1 .badge[data-status="succeeded"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('waiting').count(), 0);
    assert.equal((await t.api('GET', `/api/v1/executions/${first}`)).body.status, 'succeeded');
  });
});
