/**
 * Schema fuzzing of the whole HTTP API with Schemathesis (from PyPI, installed on first use into a
 * venv cached under ~/.cache/vecron), against the OpenAPI document of a real running server, as
 * an admin (every route reachable). Fails on any 5xx. Seeded, so a failure reproduces.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_ONLY, flatJob } from '../api/support.ts';

// hypothesis is pinned too: newer releases broke hypothesis-jsonschema ("'many' object has no attribute 'more'").
const PACKAGES = ['schemathesis==3.39.16', 'hypothesis==6.115.0'];
const VENV = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vecron', 'schemathesis-venv');
const ST = join(VENV, 'bin', 'st');
/** Examples per operation: about 2 minutes on 2 busy cores for the ~40 operations. */
const MAX_EXAMPLES = Number(process.env.VECRON_FUZZ_EXAMPLES ?? 60);

function ensureSchemathesis(): void {
  const marker = join(VENV, 'vecron-packages.txt');
  if (existsSync(ST) && existsSync(marker) && readFileSync(marker, 'utf8') === PACKAGES.join('\n')) return;
  mkdirSync(join(VENV, '..'), { recursive: true });
  execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...PACKAGES], { stdio: 'inherit', timeout: 300_000 });
  writeFileSync(marker, PACKAGES.join('\n'));
}

describe('schema fuzzing (Schemathesis) finds no 5xx', { timeout: 420_000 }, () => {
  let t: TestApp;
  before(async () => {
    ensureSchemathesis();
    t = await startTestApp('pglite', API_ONLY);
    // Something to find, so id routes see existing rows too.
    const job = await t.api('POST', '/api/v1/jobs', { body: flatJob('fuzz-seed', { webhook: { secret: 'fuzz-secret-0123456789' } }) });
    assert.equal(job.status, 201, JSON.stringify(job.body));
  });
  after(async () => {
    await t?.close();
  });

  it('no operation answers 5xx to generated input', async () => {
    const args = [
      'run',
      `${t.url}/docs/json`,
      '--base-url',
      t.url,
      '--checks',
      'not_a_server_error,status_code_conformance,response_schema_conformance',
      '--header',
      `Authorization: Bearer ${t.adminToken}`,
      '--hypothesis-max-examples',
      String(MAX_EXAMPLES),
      '--hypothesis-seed',
      process.env.VECRON_FUZZ_SEED ?? '12',
      '--hypothesis-phases',
      'explicit,generate',
      '--hypothesis-suppress-health-check',
      'all',
      '--generation-allow-x00',
      'true',
      '--request-timeout',
      '20000',
      '--workers',
      '2',
      '--no-color',
      // The SSE stream never ends by design; it is covered by its own suite.
      '--exclude-path-regex',
      '/api/v1/events',
    ];
    const out: string[] = [];
    const code = await new Promise<number>((resolve) => {
      const child = spawn(ST, args, { env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' } });
      child.stdout.on('data', (d) => out.push(String(d)));
      child.stderr.on('data', (d) => out.push(String(d)));
      child.on('exit', (c) => resolve(c ?? 1));
    });
    const text = out.join('');
    // The summary ("N passed ... in S s") goes to the test log, for the record.
    console.log(
      text
        .split('\n')
        .filter((l) => /passed|failed|errored|SUMMARY|Performed checks|not_a_server_error/.test(l))
        .join('\n'),
    );
    assert.equal(code, 0, `schemathesis found failures:\n${text.slice(-20_000)}`);
    assert.match(text, /passed/, text.slice(-2000));
  });
});
