/**
 * Dashboard in a real browser: selecting several executions on the executions page and cancelling
 * or retrying them in one bulk call (issue 18); viewers get no selection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { makeJob } from '../helpers/jobs.ts';
import { API_ONLY } from '../api/support.ts';
import { claimExecutions } from '../../src/state/claim.ts';
import { finishAttempt } from '../../src/state/finish.ts';
import { assertAccessible, browserUnavailable, ensureDashboardBuilt, launchBrowser, openPage, screenshot, settle, signIn } from './support.ts';

// Browser globals inside page.evaluate / waitForFunction callbacks (this file compiles without the DOM lib).
declare const document: any;

const skip = browserUnavailable();

describe('dashboard bulk cancel and retry', { skip: skip ?? false }, () => {
  let t: TestApp;
  let browser: Browser;
  let failedId: string;
  const queued: string[] = [];
  before(async () => {
    ensureDashboardBuilt();
    t = await startTestApp('pglite', API_ONLY);
    browser = await launchBrowser();
    const job = await makeJob(t.app.db, { name: 'bulk-ui', max_retries: 0, steps: [{ id: 'a', type: 'http', config: { url: 'http://127.0.0.1:9/a' } }] });
    await t.api('POST', `/api/v1/jobs/${job.id}/trigger`);
    const [c] = await claimExecutions(t.app.db, 'w1', 1, 60);
    await finishAttempt(t.app.db, c, 'w1', { status: 'failed', error: { code: 'http_status', message: 'HTTP 400', retryable: false, step_id: 'a' } }, 1);
    failedId = c.id;
    for (let i = 0; i < 3; i++) queued.push((await t.api('POST', `/api/v1/jobs/${job.id}/trigger`)).body.execution_id);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  const statusOf = async (id: string) => (await t.api('GET', `/api/v1/executions/${id}`)).body.status;

  it('selects all on the page and cancels: the queued ones are cancelled, the failed one skipped', async () => {
    const w = await openPage(browser);
    const { page } = w;
    await signIn(page, t.url, t.adminToken, '/executions');
    await page.locator('tr[data-execution]').nth(3).waitFor();
    await settle(page);
    assert.equal(await page.getByTestId('bulk-bar').count(), 0, 'no bulk bar before a selection');
    await page.getByLabel('Select all executions on this page').check();
    assert.equal(await page.getByTestId('bulk-bar').getByRole('status').innerText(), '4 selected');
    await assertAccessible(page, 'executions with a selection');
    await screenshot(page, '40-executions-bulk-selection');
    await page.getByRole('button', { name: 'Cancel selected' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Cancel 4 executions?').waitFor();
    await dialog.getByRole('button', { name: 'Cancel selected' }).click();
    assert.equal(await page.getByTestId('bulk-result').innerText(), '3 changed, 1 skipped, 0 not found.');
    for (const id of queued) {
      await page.locator(`tr[data-execution="${id}"][data-status="cancelled"]`).waitFor();
      assert.equal(await statusOf(id), 'cancelled');
    }
    assert.equal(await statusOf(failedId), 'failed');
    assert.equal(await page.getByTestId('bulk-bar').count(), 0, 'the selection is cleared');
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('selects one failed execution and retries it', async () => {
    const w = await openPage(browser);
    const { page } = w;
    await signIn(page, t.url, t.adminToken, '/executions');
    await page.getByLabel(`Select execution ${failedId.slice(0, 8)}`).check();
    await page.getByRole('button', { name: 'Retry selected' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Retry selected' }).click();
    assert.equal(await page.getByTestId('bulk-result').innerText(), '1 changed, 0 skipped, 0 not found.');
    await page.locator(`tr[data-execution="${failedId}"][data-status="queued"]`).waitFor();
    assert.equal(await statusOf(failedId), 'queued');
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('in Vietnamese, and a viewer sees no selection', async () => {
    const w = await openPage(browser, { locale: 'vi-VN' });
    const { page } = w;
    await signIn(page, t.url, await t.token('viewer', 'bulk-viewer'), '/executions');
    await page.locator('tr[data-execution]').first().waitFor();
    await settle(page);
    assert.equal(await page.locator('tr[data-execution] input[type="checkbox"]').count(), 0);
    assert.equal(await page.evaluate(() => document.querySelectorAll('thead input[type="checkbox"]').length), 0);
    await w.close();

    const a = await openPage(browser, { locale: 'vi-VN' });
    await signIn(a.page, t.url, t.adminToken, '/executions');
    await a.page.getByLabel('Chọn tất cả lần chạy trên trang này').check();
    assert.equal(await a.page.getByTestId('bulk-bar').getByRole('status').innerText(), 'Đã chọn 4');
    await a.page.getByRole('button', { name: 'Hủy các lần đã chọn' }).waitFor();
    assert.deepEqual(a.errors, []);
    await a.close();
  });
});
