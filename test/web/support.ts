/**
 * Browser tests of the dashboard: Debian's chromium driven by playwright-core, against a real
 * vecron (startTestApp) serving web/dist. Not a test file itself.
 *
 * Without /usr/bin/chromium the suites skip with a message, unless VECRON_REQUIRE_BROWSER=1
 * (set by .ci/run, which installs chromium): then they fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core';

// Browser globals inside page.evaluate / waitForFunction callbacks (this file compiles without the DOM lib).
declare const window: any, document: any, sessionStorage: any, atob: (s: string) => string, DataTransfer: any, File: any;

const root = new URL('../../', import.meta.url).pathname;
export const CHROMIUM = process.env.VECRON_CHROMIUM ?? '/usr/bin/chromium';
/** Where the suites write their screenshots (docs/dashboard/ holds a reviewed copy). */
export const SCREENSHOT_DIR = process.env.VECRON_SCREENSHOT_DIR ?? join(root, 'web/screenshots');

/** Why browser suites cannot run here, or null. Throws when a browser is required. */
export function browserUnavailable(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const why = `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) to run the dashboard tests`;
  if (process.env.VECRON_REQUIRE_BROWSER === '1') throw new Error(why);
  console.warn(`[test/web] skipped: ${why}`);
  return why;
}

function newestMtime(dir: string): number {
  let m = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    m = Math.max(m, s.isDirectory() ? newestMtime(p) : s.mtimeMs);
  }
  return m;
}

/**
 * Builds web/dist when it is missing or older than web/src (npm install builds it; edits do not).
 * Test files run in parallel processes: one builds (under a lock directory), the others wait for it.
 */
export function ensureDashboardBuilt(): void {
  const index = join(root, 'web/dist/index.html');
  const fresh = () =>
    existsSync(index) && statSync(index).mtimeMs >= Math.max(newestMtime(join(root, 'web/src')), statSync(join(root, 'web/index.html')).mtimeMs);
  if (fresh()) return;
  const lock = join(root, 'web/.build-lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`waited 120 s for another process building the dashboard (remove ${lock} if none is)`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    if (fresh()) return;
    const r = spawnSync(process.execPath, [join(root, 'scripts/build-web.mjs')], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building the dashboard failed:\n${r.stdout}\n${r.stderr}`);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions seen so far (tests assert it stays empty). */
  errors: string[];
  close(): Promise<void>;
}

/**
 * A fresh context (own session storage) and page. Failed requests the test causes on purpose
 * (a 4xx the UI shows) log "Failed to load resource" in Chromium; those are listed in `expected`.
 */
export async function openPage(
  browser: Browser,
  opts: { viewport?: { width: number; height: number }; locale?: string; timezoneId?: string; expectedHttpErrors?: number[] } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    locale: opts.locale ?? 'en-US',
    timezoneId: opts.timezoneId ?? 'Europe/Berlin',
    // The dashboard's CSP forbids inline scripts; axe-core is injected as one.
    bypassCSP: true,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  const expected = new Set(opts.expectedHttpErrors ?? [400, 401, 403, 404, 409]);
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() !== 'error') return;
    const status = /status of (\d{3})/.exec(m.text());
    if (status && expected.has(Number(status[1]))) return;
    errors.push(`console.error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return { page, context, errors, close: () => context.close() };
}

export async function signIn(page: Page, baseUrl: string, token: string, path = '/jobs'): Promise<void> {
  await page.goto(`${baseUrl}${path}`);
  await page.getByLabel(/API token/).fill(token);
  await page.getByRole('button', { name: /^(Sign in|Đăng nhập)$/ }).click();
  await page.getByTestId('principal').waitFor();
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe-core on the page; fails on any serious or critical violation, naming the nodes. */
export async function assertAccessible(page: Page, what: string): Promise<void> {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => {
    const r = await (window as any).axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v: any) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n: any) => n.target.join(' ')) }));
  });
  const bad = result.filter((v: any) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe: serious accessibility violations on ${what}:\n${JSON.stringify(bad, null, 2)}`);
}

/** A 1280x800 (or the page's viewport) picture of the top of the page, unless `keepScroll`. */
export async function screenshot(page: Page, name: string, opts: { keepScroll?: boolean } = {}): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  if (!opts.keepScroll) await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: false });
}

/** Waits until no "Loading…" is shown and fonts are in, so that screenshots and axe see the finished page.
 * (Not networkidle: the live pages keep an event stream open.) */
export async function settle(page: Page): Promise<void> {
  await page.waitForFunction(() => !/Loading…|Đang tải…/.test(document.body.innerText));
  await page.evaluate(() => document.fonts.ready);
}
