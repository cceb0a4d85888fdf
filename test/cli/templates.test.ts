/**
 * Every template, the way an author uses it (issue 16's "done when"): for each folder under
 * templates/ (and the CLI's own test template) whose toolchain is installed here:
 *   init -> build (twice: the same bytes) -> test (its cases pass) -> upload to a running server
 *   with the seed's flags -> a job that runs it on a schedule (a cron with seconds; one run) ->
 *   download --id --output (identical bytes).
 * A template whose toolchain is missing fails when VECRON_REQUIRE_TOOLCHAINS=1 (CI) and is
 * reported (never silently passed over) otherwise. A new template is tested by adding its folder.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { json, startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import { loadProject } from '../../src/cli/wasm/project.ts';
import { buildEnv, missingTools } from '../../src/cli/wasm/toolchain.ts';
import { FIXTURE_HOME, ROOT, wasmCli } from './run-cli.ts';

interface Template {
  label: string;
  lang: string;
  /** WASM_CLI_HOME for init (undefined: the package's own templates/). */
  home?: string;
}

const templatesDir = join(ROOT, 'templates');
const TEMPLATES: Template[] = [
  ...(existsSync(templatesDir) ? readdirSync(templatesDir).filter((d) => statSync(join(templatesDir, d)).isDirectory()) : [])
    .sort()
    .map((lang) => ({ label: lang, lang })),
  { label: 'the CLI test template (c)', lang: 'c', home: FIXTURE_HOME },
];
const REQUIRE = process.env.VECRON_REQUIRE_TOOLCHAINS === '1';

const routeIds = (out: unknown): string[] => {
  const o = (out ?? {}) as { next_step?: unknown; next_steps?: unknown };
  if (typeof o.next_step === 'string') return [o.next_step];
  return Array.isArray(o.next_steps) ? (o.next_steps as string[]) : [];
};

/** A template's own word that its toolchain cannot be installed on this machine (template.json). */
function templateUnavailableHere(lang: string): string | undefined {
  const file = new URL(`../../templates/${lang}/template.json`, import.meta.url);
  if (!existsSync(file)) return undefined;
  const v = (JSON.parse(readFileSync(file, 'utf8')) as { toolchain_unavailable_here?: unknown }).toolchain_unavailable_here;
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

describe('every template: init, build, test, upload, a scheduled job, download', () => {
  let t: TestApp;
  let hook: TestServer;
  let dir = '';
  const missing: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasm-cli-templates-'));
    hook = await startHttpServer((_r, res) => json(res, 200, { ok: true }));
    t = await startTestApp('pglite', { VECRON_POLL_INTERVAL_MS: '200' });
  });
  after(async () => {
    await t?.close();
    await hook?.close();
    rmSync(dir, { recursive: true, force: true });
    if (missing.length) process.stderr.write(`templates not tested, toolchain missing here: ${missing.join('; ')}\n`);
  });

  for (const [i, tpl] of TEMPLATES.entries()) {
    it(`${tpl.label}`, { timeout: 600_000 }, async (ctx) => {
      const name = `tpl-${tpl.lang}-${i}`;
      const project = join(dir, name);
      const env = tpl.home ? { WASM_CLI_HOME: tpl.home } : { WASM_CLI_HOME: undefined };
      const init = await wasmCli(['init', name, '--lang', tpl.lang], { cwd: dir, env });
      assert.equal(init.code, 0, init.stderr);
      const { manifest } = loadProject(existsSync(join(project, 'vecron.json')) ? join(project, 'vecron.json') : join(project, 'vecron.toml'));
      assert.ok(manifest.build, `${tpl.label}: the manifest has a build section`);
      const absent = missingTools(manifest.build!.requires, project, buildEnv(project));
      if (absent.length) {
        const what = `${tpl.label}: ${absent.map((r) => `${r.tool} (${r.install})`).join(', ')}`;
        missing.push(what);
        // A template may say that its toolchain cannot be installed on this machine (TinyGo): then CI
        // holds only its message to the install hint; VECRON_REQUIRE_<LANG>=1 still requires it.
        const unavailable = tpl.home ? undefined : templateUnavailableHere(tpl.lang);
        const requireThis = process.env[`VECRON_REQUIRE_${tpl.lang.toUpperCase()}`] === '1';
        if (unavailable && !requireThis) {
          assert.ok(
            absent.every((r) => r.install && r.install.length > 0),
            `${tpl.label}: a missing tool names how to install it`,
          );
          ctx.diagnostic(`not built here: ${unavailable}`);
          return;
        }
        if (REQUIRE || requireThis) assert.fail(`VECRON_REQUIRE_TOOLCHAINS=1 and the toolchain of ${what} is missing`);
        ctx.diagnostic(`not run: toolchain missing: ${what}`);
        return;
      }
      const cli = (args: string[]) => wasmCli(args, { cwd: project, env });

      const b1 = await cli(['build', '--json']);
      assert.equal(b1.code, 0, `build: ${b1.stderr}`);
      const first = JSON.parse(b1.stdout);
      const bytes = readFileSync(first.path);
      const b2 = await cli(['build', '--json']);
      assert.equal(b2.code, 0, b2.stderr);
      assert.equal(JSON.parse(b2.stdout).sha256, first.sha256, 'reproducible: the same bytes twice');

      const tested = await cli(['test']);
      assert.equal(tested.code, 0, `test: ${tested.stdout}${tested.stderr}`);
      assert.match(tested.stdout, /case\(s\): (\d+) passed, 0 failed/);

      const up = await cli(['upload', '--url', t.url, '--token', t.adminToken, '--file', first.path, '--name', name, '--version', '1.0.0', '--json']);
      assert.equal(up.code, 0, `upload: ${up.stderr}`);
      const module = JSON.parse(up.stdout);
      assert.equal(module.version, '1.0.0');
      if (manifest.permissions.length) assert.equal(module.permissions.length, manifest.permissions.length, "the manifest's permissions are set");
      const listed = await cli(['list', '--url', t.url, '--token', t.adminToken, '--search', name]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`^${name}@1\\.0\\.0\\s+${module.id}`, 'm'));

      const input = JSON.parse(readFileSync(join(project, 'test-input.json'), 'utf8'));
      const expected = JSON.parse(readFileSync(join(project, 'expected-output.json'), 'utf8'));
      const targets = routeIds(expected);
      const job = await t.api('POST', '/api/v1/jobs', {
        body: {
          name: `job-${name}`,
          schedule: { type: 'cron', expression: '* * * * * ?', timezone: 'Asia/Ho_Chi_Minh' },
          steps: [
            {
              id: 'module',
              type: 'wasm',
              config: {
                module_id: `${name}@1.0.0`,
                function_name: first.entry.name,
                input,
                fuel_limit: manifest.limits.fuel ?? 1_000_000,
                timeout_seconds: manifest.limits.timeout_seconds ?? 30,
              },
            },
            ...targets.map((id) => ({ id, type: 'http', config: { method: 'POST', url: `${hook.url}/${id}` } })),
          ],
        },
      });
      assert.equal(job.status, 201, JSON.stringify(job.body));
      const scheduled = await waitFor(
        async () => {
          const r = await t.api('GET', `/api/v1/executions?job_id=${job.body.id}&limit=10`);
          return r.body.items.find((e: any) => e.trigger_type === 'schedule');
        },
        `a scheduled run of ${name}`,
        30_000,
      );
      await t.api('POST', `/api/v1/jobs/${job.body.id}/disable`);
      const done = await waitFor(
        async () => {
          const r = await t.api('GET', `/api/v1/executions/${scheduled.id}`);
          return ['succeeded', 'failed', 'dead_lettered', 'cancelled'].includes(r.body.status) ? r.body : null;
        },
        `execution ${scheduled.id}`,
        60_000,
      );
      assert.equal(done.status, 'succeeded', JSON.stringify(done.error ?? done.steps));
      assert.deepEqual(done.steps.find((s: any) => s.id === 'module').output, expected, 'the job step answers what expected-output.json says');
      for (const id of targets)
        assert.ok(
          hook.seen.some((r) => r.url === `/${id}`),
          `the route to ${id} was taken`,
        );

      const out = join(dir, `${name}-downloaded.wasm`);
      const dl = await cli(['download', '--url', t.url, '--token', t.adminToken, '--id', module.id, '--output', out]);
      assert.equal(dl.code, 0, dl.stderr);
      assert.ok(readFileSync(out).equals(bytes), 'download gives the identical bytes');
    });
  }
});
