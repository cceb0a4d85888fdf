/**
 * Replay and the shadow test in the dashboard (issue 20), in a real browser against a real vecron:
 * the "replay" button of a WASM run on the execution page (the server replays the recorded run:
 * "Reproduced"), and the shadow test card on the module page (pick the job, its step, N and the
 * version, or upload a file as a new version: the totals and one row per run with its diff), in
 * English and Vietnamese. axe-core checks both pages; screenshots 10c and 18 are written.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { json, startHttpServer, type TestServer } from '../helpers/http-server.ts';
import { createJob, customersOf, expectedDiff, fixturePath, fixture, runAll, upload } from '../replay/shadow-support.ts';
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

// Browser globals inside page.waitForFunction callbacks (this file compiles without the DOM lib).
declare const document: any;

const skip = browserUnavailable();
const RUNS = 4;

describe('dashboard: replay a WASM run, shadow-test a new version', { skip: skip ?? false }, () => {
  let t: TestApp;
  let target: TestServer;
  let browser: Browser;
  let w: WatchedPage;
  let page: Page;
  let job: any;
  let ids: string[];

  before(async () => {
    ensureDashboardBuilt();
    target = await startHttpServer((req, res) => {
      const run = Number(new URL(req.url, 'http://x').searchParams.get('run'));
      json(res, 200, { data: { customers: customersOf(run) } });
    });
    t = await startTestApp('pglite', { VECRON_WORKER_CONCURRENCY: '2', VECRON_POLL_INTERVAL_MS: '100' });
    await upload(t, fixture('customer-tiers/customer-tiers.wasm'), 'customer-tiers', '1.0.0');
    await upload(t, fixture('customer-tiers/customer-tiers-gold-40000.wasm'), 'customer-tiers', '1.1.0');
    job = await createJob(t, {
      name: 'customer-analysis',
      max_retries: 0,
      steps: [
        { id: 'fetch_customers', type: 'http', config: { url: `${target.url}/customers?run={{trigger.payload.run}}` } },
        {
          id: 'transform',
          type: 'wasm',
          config: {
            module_id: 'customer-tiers@1.0.0',
            function_name: 'transform_data',
            fuel_limit: 5_000_000,
            input: { steps: { fetch_customers: { output: '{{steps.fetch_customers.output.body}}' } } },
          },
        },
      ],
    });
    ids = await runAll(
      t,
      job.id,
      Array.from({ length: RUNS }, (_, i) => ({ run: i })),
    );
    browser = await launchBrowser();
    w = await openPage(browser);
    page = w.page;
    await signIn(page, t.url, t.adminToken);
  });
  afterEach(async (ctx) => {
    if ((ctx as any).passed === false && w?.errors.length) console.error('browser errors:', w.errors);
    if ((ctx as any).passed === false) await screenshot(page, `FAILED-${ctx.name.slice(0, 40).replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
  });
  after(async () => {
    await w?.close();
    await browser?.close();
    await t?.close();
    await target?.close();
  });

  it('the replay button of a WASM run replays it on the server: reproduced', async () => {
    await page.goto(`${t.url}/executions/${ids[1]}`);
    await page.getByTestId('wasm-logs').waitFor();
    await page.getByRole('button', { name: 'Replay transform (attempt 1)' }).click();
    const result = page.getByTestId('replay-result');
    await result.waitFor();
    assert.equal(await result.getAttribute('data-status'), 'reproduced');
    assert.match(await result.innerText(), /^Reproduced: same output, same fuel \([\d,]+\) and the same 0 host call\(s\)/);
    await settle(page);
    await assertAccessible(page, 'execution with a replay');
    await page.getByTestId('replay').scrollIntoViewIfNeeded();
    await screenshot(page, '10c-execution-replay', { keepScroll: true });
    assert.deepEqual(w.errors, []);
  });

  it('the shadow test card: job, step, N and version; totals and the changed runs with their diff', async () => {
    await page.goto(`${t.url}/modules/customer-tiers@1.0.0`);
    const card = page.getByTestId('shadow-test');
    await card.waitFor();
    // The job that runs this module is offered first, and its wasm step.
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=shadow-test] select')[0]?.querySelectorAll('option').length > 0);
    assert.equal(await card.getByLabel('Job').inputValue(), job.id);
    assert.equal(await card.getByLabel('WASM step').inputValue(), 'transform');
    await card.getByLabel('Runs').fill(String(RUNS));
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid=shadow-test] option')].some((o: any) => o.textContent === 'customer-tiers@1.1.0'),
    );
    await card.getByLabel('Version to test').selectOption({ label: 'customer-tiers@1.1.0' });
    await card.getByRole('button', { name: 'Run shadow test' }).click();
    await card.getByTestId('shadow-report').waitFor();
    const count = async (o: string) => Number(await card.locator(`[data-testid=shadow-totals] li[data-outcome=${o}] strong`).innerText());
    assert.equal(await count('different_output'), 2);
    assert.equal(await count('same_output'), 2);
    assert.equal(await count('diverged'), 0);
    const changed = card.locator('[data-testid=shadow-runs] tr[data-outcome=different_output]');
    assert.equal(await changed.count(), 2);
    assert.deepEqual((await changed.evaluateAll((rows: any[]) => rows.map((r) => r.getAttribute('data-execution')))).sort(), [ids[0], ids[3]].sort());
    const row3 = card.locator(`[data-testid=shadow-runs] tr[data-execution="${ids[3]}"]`);
    assert.deepEqual(await row3.getByTestId('shadow-diff').locator('li').allInnerTexts(), expectedDiff(3));
    await settle(page);
    await assertAccessible(page, 'module with a shadow report');
    await card.scrollIntoViewIfNeeded();
    await screenshot(page, '18-module-shadow', { keepScroll: true });
    assert.deepEqual(w.errors, []);
  });

  it('uploading a file as a new version and testing it; a count above VECRON_WASM_SHADOW_MAX_RUNS is shown at its field', async () => {
    await page.goto(`${t.url}/modules/customer-tiers@1.0.0`);
    const card = page.getByTestId('shadow-test');
    await card.waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=shadow-test] select')[1]?.querySelectorAll('option').length > 0);
    await card.getByLabel('Runs').fill('201');
    await card.getByRole('button', { name: 'Run shadow test' }).click();
    await card
      .getByRole('alert')
      .filter({ hasText: /must be <= 200/ })
      .first()
      .waitFor();
    await card.getByLabel('Runs').fill(String(RUNS));
    await card.getByLabel('Version to test').selectOption({ label: 'Upload a file as a new version…' });
    await card.getByLabel('Module file (.wasm)').setInputFiles(fixturePath('customer-tiers/customer-tiers-gold-40000.wasm'));
    await card.getByLabel('New version').fill('1.2.0');
    await card.getByRole('button', { name: 'Run shadow test' }).click();
    await card.getByTestId('shadow-report').waitFor();
    assert.equal(Number(await card.locator('[data-testid=shadow-totals] li[data-outcome=different_output] strong').innerText()), 2);
    const stored = await t.api('GET', '/api/v1/wasm/modules/customer-tiers@1.2.0');
    assert.equal(stored.status, 200, 'the file was uploaded as customer-tiers@1.2.0');
    assert.equal(await card.getByLabel('Version to test').inputValue(), stored.body.id);
    assert.deepEqual(w.errors, []);
  });

  it('in Vietnamese', async () => {
    const vi = await openPage(browser, { locale: 'vi-VN' });
    try {
      await signIn(vi.page, t.url, t.adminToken, `/executions/${ids[0]}`);
      await vi.page.getByRole('button', { name: 'Chạy lại transform (lần thử 1)' }).click();
      await vi.page.getByTestId('replay-result').filter({ hasText: 'Tái hiện đúng:' }).waitFor();
      await vi.page.goto(`${t.url}/modules/customer-tiers@1.0.0`);
      await vi.page.getByRole('heading', { name: 'Kiểm thử bóng (shadow test)' }).waitFor();
      await vi.page.getByRole('button', { name: 'Chạy kiểm thử bóng' }).waitFor();
      assert.deepEqual(vi.errors, []);
    } finally {
      await vi.close();
    }
  });
});
