/**
 * The dashboard's maintenance page in a real browser: pause all firing (the banner shows on every
 * page, with the reason), resume; pause a job from its page and see it listed; retention's
 * periods, the jobs with their own, and a run on demand. A viewer sees the state without the switches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertAccessible,
  browserUnavailable,
  ensureDashboardBuilt,
  launchBrowser,
  openPage,
  screenshot,
  settle,
  signIn,
  type WatchedPage,
} from './support.ts';

const skip = browserUnavailable();

describe('dashboard: maintenance mode and retention', { skip: skip ?? false }, () => {
  let t: TestApp;
  let browser: Browser;
  let w: WatchedPage;
  let page: Page;
  let jobId: string;

  before(async () => {
    ensureDashboardBuilt();
    t = await startTestApp('pglite', { VECRON_ROLES: 'api' });
    const job = await t.api('POST', '/api/v1/jobs', {
      body: { name: 'nightly-statements', retention_days: 365, steps: [{ id: 'a', type: 'http', config: { url: 'https://ping.example/' } }] },
    });
    jobId = job.body.id;
    browser = await launchBrowser();
    w = await openPage(browser);
    page = w.page;
    await signIn(page, t.url, t.adminToken, '/maintenance');
  });
  after(async () => {
    await w?.close();
    await browser?.close();
    await t?.close();
  });

  it('pauses all firing with a reason: the banner shows on every page; resume removes it', async () => {
    await page.getByRole('heading', { name: 'Maintenance and retention' }).waitFor();
    await settle(page);
    await assertAccessible(page, 'the maintenance page');
    await page.getByLabel('Reason (optional)').first().fill('core banking upgrade');
    await page.getByRole('button', { name: 'Pause all firing' }).click();
    await page.getByTestId('maintenance-banner').waitFor();
    assert.match(await page.getByTestId('maintenance-banner').innerText(), /firing is paused cluster-wide.*core banking upgrade/s);
    const state = await t.api('GET', '/api/v1/maintenance');
    assert.deepEqual([state.body.paused, state.body.reason, state.body.paused_by], [true, 'core banking upgrade', 'test-admin']);
    await screenshot(page, 'maintenance-paused');
    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    await page.getByTestId('maintenance-banner').waitFor();
    await assertAccessible(page, 'the jobs page with the maintenance banner');
    await page.getByTestId('maintenance-banner').getByRole('link', { name: 'Manage' }).click();
    await page.getByRole('button', { name: 'Resume firing' }).first().click();
    await page.getByTestId('maintenance-banner').waitFor({ state: 'detached' });
    assert.equal((await t.api('GET', '/api/v1/maintenance')).body.paused, false);
  });

  it('pauses a job from its page (with its retention period shown); the maintenance page lists it and resumes it', async () => {
    await page.goto(`${t.url}/jobs/${jobId}`);
    await page.getByTestId('job-operations').waitFor();
    await settle(page);
    assert.match(await page.getByTestId('job-operations').innerText(), /365 days/);
    await page.getByTestId('job-operations').getByLabel('Reason (optional)').fill('partner bank offline');
    await page.getByRole('button', { name: 'Pause firing' }).click();
    await page
      .getByTestId('job-firing')
      .getByText(/Paused since .* by test-admin — partner bank offline/)
      .waitFor();
    assert.equal((await t.api('GET', `/api/v1/jobs/${jobId}/pause`)).body.paused, true);
    await page.getByRole('link', { name: 'Maintenance' }).click();
    const list = page.getByTestId('paused-jobs');
    await list.getByText('nightly-statements').waitFor();
    await list.getByRole('button', { name: 'Resume firing' }).click();
    await page.getByText('No job is paused.').waitFor();
    assert.equal((await t.api('GET', `/api/v1/jobs/${jobId}/pause`)).body.paused, false);
  });

  it('shows the retention periods and the jobs with their own, and prunes on demand', async () => {
    await page.goto(`${t.url}/maintenance`);
    const settings = page.getByTestId('retention-settings');
    await settings.waitFor();
    assert.match(await settings.innerText(), /90 days[\s\S]*2557 days/);
    await page.getByRole('link', { name: 'nightly-statements' }).waitFor();
    await page.getByRole('button', { name: 'Prune now' }).click();
    assert.match(await page.getByTestId('retention-result').innerText(), /executions 0/);
    await page
      .getByTestId('retention-last-run')
      .getByText(/executions 0/)
      .waitFor();
    assert.deepEqual(w.errors, []);
  });

  it('a viewer sees the state but no switch', async () => {
    const viewer = await openPage(browser);
    try {
      await signIn(viewer.page, t.url, await t.token('viewer'), '/maintenance');
      await viewer.page.getByRole('heading', { name: 'Maintenance and retention' }).waitFor();
      await settle(viewer.page);
      assert.equal(await viewer.page.getByRole('button', { name: 'Pause all firing' }).count(), 0);
      assert.equal(await viewer.page.getByRole('button', { name: 'Prune now' }).count(), 0);
      assert.match(await viewer.page.getByTestId('cluster-firing').innerText(), /Firing normally/);
    } finally {
      await viewer.close();
    }
  });
});
