/**
 * The dashboard end to end in a real browser against a real vecron (API, scheduler and worker):
 * upload a module by drag-and-drop, build a job with http and WASM steps (server validation shown at
 * the field, drag-and-drop reordering, JSON view in sync, template completion), run it and watch the
 * execution turn green live, edit the module's permissions, see the audit rows, tokens and secrets,
 * switch language. axe-core checks every page; screenshots of every page are written.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startHttpServer, type TestServer } from '../helpers/http-server.ts';
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

// Browser globals inside page.evaluate / waitForFunction callbacks (this file compiles without the DOM lib).
declare const window: any, document: any, sessionStorage: any, atob: (s: string) => string, DataTransfer: any, File: any;

const skip = browserUnavailable();
const ECHO = readFileSync(new URL('../../fixtures/wasm/echo/echo.wasm', import.meta.url));
const HOST_ABI = readFileSync(new URL('../../fixtures/wasm/host-abi/host-abi.wasm', import.meta.url));

/** Drops a file on an element the way a browser does after a drag from the desktop. */
async function dropFile(page: Page, selector: string, name: string, bytes: Buffer): Promise<void> {
  const dt = await page.evaluateHandle(
    ({ b64, name }) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], name, { type: 'application/wasm' }));
      return transfer;
    },
    { b64: bytes.toString('base64'), name },
  );
  await page.dispatchEvent(selector, 'dragover', { dataTransfer: dt });
  await page.dispatchEvent(selector, 'drop', { dataTransfer: dt });
}

describe('dashboard end to end', { skip: skip ?? false }, () => {
  let t: TestApp;
  let target: TestServer;
  let browser: Browser;
  let w: WatchedPage;
  let page: Page;
  let jobId: string;

  before(async () => {
    ensureDashboardBuilt();
    target = await startHttpServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
    t = await startTestApp('pglite', { VECRON_WORKER_CONCURRENCY: '2', VECRON_POLL_INTERVAL_MS: '200' });
    assert.equal((await t.api('PUT', '/api/v1/variables/API_BASE', { body: { value: target.url } })).status, 201);
    browser = await launchBrowser();
    w = await openPage(browser);
    page = w.page;
    await signIn(page, t.url, t.adminToken);
  });
  // A failed step leaves the page as it was: keep a picture of it beside the others.
  afterEach(async (ctx) => {
    if ((ctx as any).passed === false && w.errors.length) console.error('browser errors:', w.errors);
    if ((ctx as any).passed === false || process.env.VECRON_SCREENSHOT_ALL)
      await screenshot(page, `FAILED-${ctx.name.slice(0, 40).replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
  });
  after(async () => {
    await w?.close();
    await browser?.close();
    await t?.close();
    await target?.close();
  });

  it('uploads a module by drag-and-drop, with its details', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'WASM modules' }).click();
    await page.getByRole('heading', { name: 'Upload a module' }).waitFor();
    await dropFile(page, '[data-testid=dropzone]', 'echo.wasm', ECHO);
    await page.getByTestId('dropzone').getByText('echo.wasm').waitFor();
    assert.equal(await page.getByLabel('Name *').inputValue(), 'echo', 'the name comes from the file');
    await page.getByLabel('Author *').fill('e2e');
    await page.getByLabel('Description').fill('returns its input');
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Module echo@1.0.0 uploaded.' }).waitFor();
    await page.locator('tr[data-module="echo@1.0.0"]').waitFor();
    const stored = await t.api('GET', '/api/v1/wasm/modules/echo@1.0.0');
    assert.equal(stored.status, 200);
    assert.equal(stored.body.author, 'e2e');
    assert.equal(Number(stored.body.size_bytes), ECHO.length);
    await settle(page);
    await assertAccessible(page, 'modules');
    await screenshot(page, '06-modules');
  });

  it('builds a job with an http and a WASM step: server errors at their field, drag-and-drop, JSON view, template completion', async () => {
    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByRole('link', { name: 'New job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    await page.getByLabel('Name *').fill('e2e-pipeline');
    await page.getByLabel('Job variables (JSON object)').fill('{"region": "south"}');

    // A WASM step first, then an http step; then drag the http step above the WASM step.
    await page.getByRole('button', { name: '+ wasm' }).click();
    const wasmCard = page.locator('li[data-step-id="wasm_1"]');
    await wasmCard.getByLabel('Module *').selectOption('echo@1.0.0');
    const fn = wasmCard.getByLabel('Function *');
    await page.waitForFunction(() => document.querySelectorAll('li[data-step-id="wasm_1"] select')[1]?.querySelectorAll('option').length > 1);
    assert.deepEqual(
      (await fn.locator('option').allInnerTexts()).map((s) => s.split('(')[0]),
      ['— choose —', 'echo', 'echo_copy', 'echo_cstr'],
    );
    await fn.selectOption('echo');
    await wasmCard.getByTestId('wasm-permissions').getByText('none (deny by default)').waitFor();
    await wasmCard.getByLabel('fuel_limit').fill('5000000');
    await page.getByRole('button', { name: '+ http' }).click();
    const httpCard = page.locator('li[data-step-id="http_2"]');
    await httpCard.getByLabel('url *').fill('{{variables.API_BASE}}/customers');
    await page.getByTestId('drag-http_2').dragTo(wasmCard);
    await page.waitForFunction(() => document.querySelector('.step-cards > li:first-child')?.getAttribute('data-step-id') === 'http_2');

    // A third step: its body completes the ids of the earlier steps.
    await page.getByRole('button', { name: '+ http' }).click();
    const post = page.locator('li[data-step-id="http_3"]');
    await post.getByLabel('method').selectOption('POST');
    await post.getByLabel('url *').fill('{{variables.API_BASE}}/result');
    const body = post.getByLabel('body_text');
    await body.click();
    await body.pressSequentially('{"tiers": {{steps.');
    const options = post.getByRole('listbox', { name: 'Template suggestions' }).getByRole('option');
    assert.deepEqual(await options.allInnerTexts(), ['steps.http_2.output', 'steps.wasm_1.output'], 'earlier steps, in order');
    await body.press('ArrowDown');
    await body.press('Enter');
    await body.pressSequentially('}');
    assert.equal(await body.inputValue(), '{"tiers": {{steps.wasm_1.output}}}');

    // A schedule the server refuses: the problem is shown at its field.
    await page.getByLabel('Schedule type').selectOption('cron');
    await page.getByLabel('Cron expression').fill('0 9 * * *');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('save-error').waitFor();
    const cron = page.getByLabel('Cron expression');
    assert.equal(await cron.getAttribute('aria-invalid'), 'true');
    const described = await cron.getAttribute('aria-describedby');
    assert.match(await page.locator(`[id="${described!.split(' ').pop()}"]`).innerText(), /6 or 7 fields/);
    await settle(page);
    await assertAccessible(page, 'builder with errors');
    await screenshot(page, '07-builder-errors');

    await cron.fill('0 0 9 ? * MON-FRI');
    await page.getByLabel('Time zone').fill('Asia/Ho_Chi_Minh');
    await page.getByTestId('fire-preview').locator('tbody tr').nth(9).waitFor();
    assert.equal(await cron.getAttribute('aria-invalid'), null, 'the error goes once the field changes');
    assert.equal(await page.getByTestId('save-error').count(), 0, 'and so does the summary');

    // The JSON view shows the same document (steps in the dragged order); edits there reach the form.
    await page.getByRole('tab', { name: 'JSON' }).click();
    const json = JSON.parse(await page.locator('#job-json').inputValue());
    assert.deepEqual(
      json.steps.map((s: any) => s.id),
      ['http_2', 'wasm_1', 'http_3'],
    );
    assert.deepEqual(json.steps[1].config, { module_id: 'echo@1.0.0', function_name: 'echo', fuel_limit: 5_000_000 });
    assert.equal(json.schedule.expression, '0 0 9 ? * MON-FRI');
    json.description = 'built in the browser';
    await page.locator('#job-json').fill(JSON.stringify(json, null, 2));
    await screenshot(page, '08-builder-json');
    await page.getByRole('tab', { name: 'Form' }).click();
    assert.equal(await page.getByLabel('Description').inputValue(), 'built in the browser');
    await settle(page);
    await assertAccessible(page, 'builder');
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, '09-builder');

    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'e2e-pipeline', level: 1 }).waitFor();
    jobId = /\/jobs\/([0-9a-f-]{36})$/.exec(page.url())![1];
    const saved = await t.api('GET', `/api/v1/jobs/${jobId}`);
    assert.deepEqual(
      saved.body.steps.map((s: any) => [s.id, s.type]),
      [
        ['http_2', 'http'],
        ['wasm_1', 'wasm'],
        ['http_3', 'http'],
      ],
    );
    assert.equal(saved.body.steps[2].config.body_text, '{"tiers": {{steps.wasm_1.output}}}');
    assert.equal(saved.body.description, 'built in the browser');
  });

  it('runs the job and shows the execution turn green live', async () => {
    await page.getByRole('button', { name: 'Run now' }).click();
    const link = page.getByRole('status').getByRole('link');
    await link.waitFor();
    // The dashboard's trigger carries an Idempotency-Key (a resent request queues one execution).
    const triggers = await t.api('GET', '/api/v1/audit?action=job.trigger&outcome=success&limit=5');
    assert.match(String(triggers.body.items[0]?.details?.idempotency_key), /^dashboard-[0-9a-f-]{36}$/);
    await link.click();
    await page.getByRole('heading', { name: /Execution/, level: 1 }).waitFor();
    await page.locator('h1 .badge[data-status="succeeded"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('live').count(), 0, 'the page itself follows the events');
    for (const id of ['http_2', 'wasm_1', 'http_3']) await page.locator(`.timeline li[data-step="${id}"][data-status="succeeded"]`).waitFor();
    assert.equal(await page.getByTestId('route').innerText(), 'http_2 → wasm_1 → http_3');
    await page.getByTestId('wasm-logs').locator('tbody tr').first().waitFor();
    assert.match(await page.getByTestId('wasm-logs').innerText(), /echo@1\.0\.0/);
    assert.ok(
      target.seen.some((r) => r.method === 'POST' && r.url === '/result' && r.body.startsWith('{"tiers": {')),
      'the last step posted the WASM output',
    );
    await settle(page);
    await assertAccessible(page, 'execution');
    await screenshot(page, '10-execution');
    await page.getByRole('link', { name: 'Executions' }).first().click();
    await page.getByTestId('live').filter({ hasText: 'live' }).waitFor();
    await page.locator('[data-testid=executions] tr[data-status="succeeded"]').first().waitFor();
    await settle(page);
    await assertAccessible(page, 'executions');
    await screenshot(page, '11-executions');
  });

  it('lists executions live: a new run appears and turns green without a reload', async () => {
    await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: {} });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=executions] tbody tr').length === 2);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=executions] tr[data-status="succeeded"]').length === 2, null, { timeout: 30_000 });
  });

  it("shows each WASM run's host calls on the execution page: served, denied with the permission, request and answer", async () => {
    const form = new FormData();
    form.set('file', new Blob([HOST_ABI]), 'host-abi.wasm');
    form.set('name', 'host-abi');
    form.set('version', '1.0.0');
    form.set('author', 'tests');
    const up = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
    assert.equal(up.status, 201, await up.clone().text());
    // No permission at all: time is served (it needs none), http_request is refused with http:read.
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'host-calls-shown',
        schedule: null,
        steps: [
          { id: 'clock', type: 'wasm', config: { module_id: 'host-abi@1.0.0', function_name: 'time', input: { op: 'now', tz: 'Asia/Ho_Chi_Minh' } } },
          {
            id: 'fetch',
            type: 'wasm',
            config: { module_id: 'host-abi@1.0.0', function_name: 'http_request', input: { method: 'GET', url: `${target.url}/secret` } },
          },
        ],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const run = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`, { body: {} });
    assert.equal(run.status, 202, JSON.stringify(run.body));
    await page.goto(`${t.url}/executions/${run.body.execution_id}`);
    await page.locator('h1 .badge[data-status="succeeded"]').waitFor({ timeout: 30_000 });
    const calls = page.getByTestId('host-calls');
    await calls.nth(1).waitFor({ state: 'attached' });
    const clock = calls.nth(0);
    // A run whose calls all succeeded keeps them folded; a refused call unfolds its run's list.
    await clock.locator('xpath=ancestor::details[1]/summary').click();
    assert.match(await clock.locator('tbody tr').first().innerText(), /time[\s\S]*now Asia\/Ho_Chi_Minh[\s\S]*ok/);
    const denied = page.locator('[data-testid=host-calls] tr[data-outcome="permission_denied"]');
    await denied.waitFor();
    const text = await denied.innerText();
    assert.match(text, /http_request/);
    assert.match(text, /http:read/);
    assert.match(text, /\/secret/, 'the refused call shows its target');
    assert.ok(!target.seen.some((r) => r.url === '/secret'), 'the refused request made no connection');
    await denied.getByText('Request and response').click();
    await page.getByText('permission_denied', { exact: false }).first().waitFor();
    await settle(page);
    await assertAccessible(page, 'execution-host-calls');
    await page.getByRole('heading', { name: 'WASM runs' }).scrollIntoViewIfNeeded();
    await screenshot(page, '10b-execution-host-calls', { keepScroll: true });
  });

  it("edits a module's permissions; deleting it names the job that uses it", async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'WASM modules' }).click();
    await page.getByRole('link', { name: 'echo' }).click();
    await page.getByRole('heading', { name: 'echo@1.0.0' }).waitFor();
    assert.match(await page.getByTestId('module-stats').innerText(), /Runs\s*2/);
    await page.getByTestId('runs-chart').locator('canvas').waitFor();
    assert.match(await page.getByTestId('module-exports').innerText(), /function echo\(i32, i32\) → i64/);
    await page.getByRole('button', { name: 'Add a permission' }).click();
    await page.getByLabel('Permission', { exact: true }).selectOption('http:write');
    await page.getByLabel('Resource pattern').fill('https://api.example.com/**');
    await page.getByRole('button', { name: 'Save permissions' }).click();
    await page.getByRole('status').filter({ hasText: 'Permissions saved.' }).waitFor();
    const m = await t.api('GET', '/api/v1/wasm/modules/echo@1.0.0');
    assert.deepEqual(
      m.body.permissions.map((p: any) => [p.type, p.resource_pattern]),
      [['http:write', 'https://api.example.com/**']],
    );
    await settle(page);
    await assertAccessible(page, 'module');
    await screenshot(page, '12-module');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'WASM modules' }).click();
    await page.getByRole('button', { name: 'Delete echo@1.0.0' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByTestId('used-by').waitFor();
    assert.match(await dialog.innerText(), /1 job\(s\) use it[\s\S]*e2e-pipeline \(wasm_1\)/);
    assert.equal(await dialog.getByRole('button', { name: 'Delete' }).isDisabled(), true);
    await screenshot(page, '13-module-delete');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  it('creates a token shown once, revokes it; a secret variable is never shown again', async () => {
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Name *').fill('ci-reader');
    await page.getByLabel('Role').selectOption('viewer');
    await page.getByRole('button', { name: 'Create token' }).click();
    const value = await page.getByTestId('new-token').innerText();
    assert.equal((await t.api('GET', '/api/v1/session', { token: value })).body.name, 'ci-reader');
    await settle(page);
    await assertAccessible(page, 'tokens');
    await screenshot(page, '14-tokens');
    await page.getByRole('button', { name: 'Revoke ci-reader' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.locator('tr[data-token="ci-reader"]').getByText('revoked').waitFor();
    assert.equal((await t.api('GET', '/api/v1/session', { token: value })).status, 401);

    await page.getByRole('link', { name: 'Variables' }).click();
    await page.getByLabel('Name *').fill('PARTNER_KEY');
    await page.getByLabel('Secret', { exact: true }).check();
    await page.getByLabel('Value *').fill('s3cr3t-value-123');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Variable PARTNER_KEY saved.' }).waitFor();
    await page.locator('tr[data-variable="PARTNER_KEY"]').waitFor();
    assert.equal(await page.getByLabel('Value *').inputValue(), '', 'the form forgets the secret');
    assert.ok(!(await page.content()).includes('s3cr3t-value-123'), 'the secret is nowhere in the page');
    await page.getByRole('button', { name: 'Edit PARTNER_KEY' }).click();
    assert.equal(await page.getByLabel('Value *').inputValue(), '', 'editing a secret starts empty');
    assert.ok(!(await page.content()).includes('s3cr3t-value-123'));
    await settle(page);
    await assertAccessible(page, 'variables');
    await screenshot(page, '15-variables');
  });

  it('shows the audit rows of all that, filtered, and switches language', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    const rows = page.locator('[data-testid=audit] tbody tr');
    await rows.first().waitFor();
    const actions = await page.locator('[data-testid=audit] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action')));
    for (const a of ['wasm.module.upload', 'job.create', 'job.trigger', 'wasm.module.permissions.replace', 'token.create', 'token.revoke', 'variable.set']) {
      assert.ok(actions.includes(a), `audit row ${a} in ${actions.join(', ')}`);
    }
    assert.ok(actions.filter((a) => a === 'job.create').length >= 1);
    assert.ok(
      actions.includes('job.create') && (await page.locator('tr[data-action="job.create"][data-outcome="failure"]').count()) === 1,
      'the refused save is audited as a failure',
    );
    await page.getByLabel('Action').fill('wasm.module.permissions.replace');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=audit] tbody tr').length === 1);
    await page.getByLabel('Action').fill('');
    await page.getByLabel('Outcome').selectOption('failure');
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid=audit] tbody tr')].every((tr) => tr.getAttribute('data-outcome') === 'failure'),
    );
    await page.getByLabel('Outcome').selectOption('');
    await page.getByLabel('Actor').fill('nobody-here');
    await page.getByText('No audit entries match.').waitFor();
    await page.getByLabel('Actor').fill('test-admin');
    await page.getByLabel('From').fill('2000-01-01T00:00');
    await page.getByLabel('Until').fill('2001-01-01T00:00');
    await page.getByText('No audit entries match.').waitFor();
    await page.getByLabel('Until').fill('');
    await rows.first().waitFor();
    await settle(page);
    await assertAccessible(page, 'audit');
    await screenshot(page, '16-audit');

    await page.getByLabel('Language').selectOption('vi');
    await page.getByRole('heading', { name: 'Nhật ký kiểm toán', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Công việc' }).click();
    await page.getByRole('link', { name: 'e2e-pipeline' }).click();
    await page.getByRole('heading', { name: '10 lần chạy kế tiếp' }).waitFor();
    await settle(page);
    await assertAccessible(page, 'job page (vi)');
    await screenshot(page, '17-job-vi');
    await page.getByLabel('Ngôn ngữ').selectOption('en');
    assert.deepEqual(w.errors, [], 'no console errors in the whole run');
  });

  it('a viewer sees modules and executions without upload, delete, retry or cancel', async () => {
    const viewer = await t.token('viewer', 'e2e-viewer');
    const v = await openPage(browser);
    await signIn(v.page, t.url, viewer, '/modules');
    await v.page.locator('tr[data-module="echo@1.0.0"]').waitFor();
    assert.equal(await v.page.getByRole('heading', { name: 'Upload a module' }).count(), 0);
    assert.equal(await v.page.getByRole('button', { name: /^Delete/ }).count(), 0);
    assert.equal(await v.page.getByRole('button', { name: 'Download echo@1.0.0' }).count(), 1);
    await v.page.getByRole('link', { name: 'echo' }).click();
    await v.page.getByRole('heading', { name: 'Permissions' }).waitFor();
    assert.equal(await v.page.getByRole('button', { name: 'Save permissions' }).count(), 0);
    await v.page.goto(`${t.url}/jobs/new`);
    await v.page.getByText('Building jobs needs the operator role.').waitFor();
    assert.deepEqual(v.errors, []);
    await v.close();
  });
});
