/**
 * Dashboard in a real browser, part 1: sign-in (admin, viewer, a bad and a revoked token), role-aware
 * controls, languages, the jobs list and a job page with its fire-time preview.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, flatJob } from '../api/support.ts';
import { assertAccessible, browserUnavailable, ensureDashboardBuilt, launchBrowser, openPage, screenshot, settle, signIn } from './support.ts';

// Browser globals inside page.evaluate / waitForFunction callbacks (this file compiles without the DOM lib).
declare const window: any, document: any, sessionStorage: any, atob: (s: string) => string, DataTransfer: any, File: any;

const skip = browserUnavailable();

describe('dashboard shell and jobs', { skip: skip ?? false }, () => {
  let t: TestApp;
  let browser: Browser;
  let jobId: string;
  before(async () => {
    ensureDashboardBuilt();
    t = await startTestApp('pglite', API_ONLY);
    browser = await launchBrowser();
    const created = await t.api('POST', '/api/v1/jobs', {
      body: flatJob('daily-settlement', {
        description: 'Fetch settlement totals every morning',
        schedule: { type: 'cron', expression: '0 30 6 ? * MON-FRI', timezone: 'Asia/Ho_Chi_Minh' },
      }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    jobId = created.body.id;
    await t.api('POST', '/api/v1/jobs', { body: flatJob('manual-report', { enabled: false }) });
    await t.api('POST', '/api/v1/jobs', { body: flatJob('every-minute', { schedule: { type: 'fixed_rate', interval_seconds: 60 } }) });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('refuses a wrong token at sign-in and shows why', async () => {
    const w = await openPage(browser);
    await w.page.goto(`${t.url}/jobs`);
    await w.page.waitForURL(/\/sign-in\?next=%2Fjobs$/);
    await w.page.getByLabel('API token').fill('not-a-token');
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await w.page.getByRole('alert').filter({ hasText: 'unknown or has been revoked' }).waitFor();
    await settle(w.page);
    await assertAccessible(w.page, 'sign-in');
    await screenshot(w.page, '01-sign-in');
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('signs in as admin: jobs list with next fire times, filters, enable/disable and run now', async () => {
    const w = await openPage(browser);
    await signIn(w.page, t.url, t.adminToken);
    const { page } = w;
    assert.equal(await page.getByTestId('principal').innerText(), 'test-admin admin');
    const row = page.locator('tr[data-job="daily-settlement"]');
    await row.waitFor();
    // Next fire: 06:30 in the job's zone, and the browser's zone (Berlin) beside it.
    const next = await row.locator('.firetime').innerText();
    assert.match(next, /6:30:00 AM/, next);
    assert.match(next, /12:30:00 AM \(Europe\/Berlin\)/, next);
    assert.equal(await page.locator('tbody tr').count(), 3);
    await page.getByLabel('Schedule type').selectOption('cron');
    await page.locator('tbody tr').first().waitFor();
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
    await page.getByLabel('Schedule type').selectOption('');
    await page.getByLabel('Search').fill('manual');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1 && document.querySelector('tr[data-job="manual-report"]'));
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Enabled', { exact: true }).selectOption('false');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1 && document.querySelector('tr[data-job="manual-report"]'));
    await page.getByLabel('Enabled', { exact: true }).selectOption('');
    await page.locator('tbody tr').nth(2).waitFor();
    await settle(page);
    await assertAccessible(page, 'jobs list');
    await screenshot(page, '02-jobs');

    // enable/disable through the switch
    await page.getByRole('switch', { name: 'Schedule of every-minute enabled' }).click();
    await page.waitForFunction(() => !(document.querySelector('tr[data-job="every-minute"] [role=switch]') as any).checked);
    const stored = await t.api('GET', '/api/v1/jobs?search=every-minute');
    assert.equal(stored.body.items[0].enabled, false);
    // run now
    await page.getByRole('button', { name: 'Run now: manual-report' }).click();
    await page.getByRole('status').filter({ hasText: 'An execution of manual-report is queued.' }).waitFor();
    await page.locator('tr[data-job="manual-report"] .badge[data-status="queued"]').waitFor();
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('shows a job page with its definition, next 10 fire times and webhook settings', async () => {
    const w = await openPage(browser);
    await signIn(w.page, t.url, t.adminToken, `/jobs/${jobId}`);
    const { page } = w;
    await page.getByRole('heading', { name: 'daily-settlement', level: 1 }).waitFor();
    const rows = page.getByTestId('fire-preview').locator('tbody tr');
    await rows.nth(9).waitFor();
    assert.equal(await rows.count(), 10);
    for (const text of await rows.allInnerTexts()) {
      assert.match(text, /(Mon|Tue|Wed|Thu|Fri), \w{3} \d+, 2026, 6:30:00 AM/, text);
      assert.doesNotMatch(text, /(Sat|Sun)/);
    }
    await page.getByRole('heading', { name: 'Webhook' }).waitFor();
    assert.match(await page.locator('section', { hasText: 'Trigger URL' }).innerText(), new RegExp(`/api/v1/webhooks/${jobId}`));
    await page.getByRole('button', { name: 'Generate a new secret' }).click();
    assert.match(await page.getByTestId('webhook-secret').innerText(), /^[0-9a-f]{64}$/);
    await settle(page);
    await assertAccessible(page, 'job page');
    await screenshot(page, '03-job');
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('a viewer sees no edit or run controls', async () => {
    const viewer = await t.token('viewer', 'ops-viewer');
    const w = await openPage(browser);
    await signIn(w.page, t.url, viewer);
    const { page } = w;
    await page.locator('tr[data-job="daily-settlement"]').waitFor();
    assert.equal(await page.getByTestId('principal').innerText(), 'ops-viewer viewer');
    assert.equal(await page.getByRole('button', { name: /^Run now/ }).count(), 0);
    assert.equal(await page.getByRole('switch').count(), 0);
    assert.equal(await page.getByRole('link', { name: 'New job' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Tokens' }).count(), 0, 'tokens are for admins');
    await page.getByRole('link', { name: 'daily-settlement' }).click();
    await page.getByTestId('fire-preview').waitFor();
    for (const name of ['Run now', 'Edit', 'Delete', 'Disable', 'Generate a new secret']) {
      assert.equal(await page.getByRole('button', { name }).or(page.getByRole('link', { name })).count(), 0, name);
    }
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('returns to sign-in with the reason when the token stops working', async () => {
    const token = await t.token('operator', 'soon-revoked');
    const w = await openPage(browser);
    await signIn(w.page, t.url, token);
    const { page } = w;
    await page.locator('tr[data-job="daily-settlement"]').waitFor();
    const list = await t.api('GET', '/api/v1/tokens');
    const id = list.body.items.find((x: any) => x.name === 'soon-revoked').id;
    assert.equal((await t.api('DELETE', `/api/v1/tokens/${id}`)).status, 200);
    await page.getByRole('link', { name: 'Executions' }).click();
    await page.getByTestId('signin-reason').waitFor();
    assert.match(await page.getByTestId('signin-reason').innerText(), /signed out: the API token is unknown or has been revoked/);
    assert.match(page.url(), /\/sign-in\?next=%2Fexecutions$/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('vecron.token')), null, 'the token is forgotten');
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('follows the browser language (Vietnamese), is switchable, and formats dates in the locale', async () => {
    const w = await openPage(browser, { locale: 'vi-VN', timezoneId: 'Asia/Ho_Chi_Minh' });
    const { page } = w;
    await page.goto(`${t.url}/jobs`);
    await page.getByRole('button', { name: 'Đăng nhập' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'vi');
    await signIn(page, t.url, t.adminToken);
    await page.getByRole('heading', { name: 'Công việc', level: 1 }).waitFor();
    const next = await page.locator('tr[data-job="daily-settlement"] .firetime').innerText();
    assert.match(next, /06:30:00/, next);
    assert.doesNotMatch(next, /AM|PM/, 'Vietnamese dates use the 24-hour clock');
    assert.doesNotMatch(next, /Europe/, 'the browser is in the job zone: one time only');
    await settle(page);
    await assertAccessible(page, 'jobs list (vi)');
    await screenshot(page, '04-jobs-vi');
    await page.getByLabel('Ngôn ngữ').selectOption('en');
    await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    await page.reload();
    await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
    assert.deepEqual(w.errors, []);
    await w.close();
  });

  it('works at phone width', async () => {
    const w = await openPage(browser, { viewport: { width: 390, height: 844 } });
    await signIn(w.page, t.url, t.adminToken);
    await w.page.locator('tr[data-job="daily-settlement"]').waitFor();
    await settle(w.page);
    await assertAccessible(w.page, 'jobs list (phone)');
    await screenshot(w.page, '05-jobs-390');
    const overflow = await w.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page does not scroll sideways (${overflow} px too wide)`);
    assert.deepEqual(w.errors, []);
    await w.close();
  });
});
