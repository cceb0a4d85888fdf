/**
 * The single-file wasm-cli (Node SEA, scripts/build-wasm-cli-sea.mjs) runs without the repository:
 * copied alone into an empty folder, it prints its version, creates a project from its embedded
 * templates and SDK, builds and tests it (the runtime's worker comes out of the executable) and
 * inspects a module. Built with the CLI's test template embedded; the build is cached under
 * ~/.cache/vecron/wasm-cli-sea by the hash of its inputs (injecting rewrites a ~95 MB binary).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FIXTURE_HOME, ROOT, type CliRun } from './run-cli.ts';

const run = promisify(execFile);
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;

function exe(bin: string, args: string[], cwd: string): Promise<CliRun> {
  return new Promise((resolve) => {
    // No WASM_CLI_HOME, no NODE_OPTIONS: nothing may point it back at the repository.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? homedir() };
    const child = spawn(bin, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the single-file wasm-cli executable', () => {
  let dir = '';
  let bin = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasm-cli-sea-'));
    const built = join(dir, 'build-out', 'wasm-cli');
    await run(
      process.execPath,
      [join(ROOT, 'scripts/build-wasm-cli-sea.mjs'), '--out', built, '--cache', join(homedir(), '.cache/vecron/wasm-cli-sea'), '--resources', FIXTURE_HOME],
      { cwd: ROOT, timeout: 300_000 },
    );
    bin = join(dir, 'wasm-cli');
    copyFileSync(built, bin);
    rmSync(join(dir, 'build-out'), { recursive: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is one executable file that prints its version', { timeout: 60_000 }, async () => {
    assert.ok(statSync(bin).mode & 0o100);
    const r = await exe(bin, ['--version'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);
    assert.equal(r.stderr, '', 'no SEA warning');
  });

  it('init from its embedded template, then build and test, in a folder away from the repository', { timeout: 180_000 }, async () => {
    const init = await exe(bin, ['init', 'sea-mod', '--lang', 'c'], dir);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /created sea-mod\/ \(c, SDK in sea-mod\/vecron-sdk\)/);
    const missing = await exe(bin, ['init', 'other', '--lang', 'go'], dir);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /there is no go template \(templates\/go\) in this executable .*; templates present: c/);
    const project = join(dir, 'sea-mod');
    const build = await exe(bin, ['build'], project);
    assert.equal(build.code, 0, build.stderr);
    assert.match(build.stdout, /^OK sea-mod@0\.1\.0$/m);
    const test = await exe(bin, ['test'], project);
    assert.equal(test.code, 0, test.stdout + test.stderr);
    assert.match(test.stdout, /2 case\(s\): 2 passed, 0 failed/);
    const inspect = await exe(bin, ['inspect', join(project, 'build/sea_mod.wasm')], dir);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /^ABI: ok, the server would run process \(form A\)$/m);
  });
});
