/**
 * wasm-cli's command line: the seed's flags, the CLI's own version only for `wasm-cli --version`
 * (or -V) alone, and exit 2 with a message for unknown flags and missing values.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, wasmCli } from './run-cli.ts';

const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
const noServer = { VECRON_URL: undefined, VECRON_TOKEN: undefined };

describe('wasm-cli flags', () => {
  it('--version and -V alone print the CLI version and exit 0', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await wasmCli([flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), VERSION);
    }
  });

  it("upload's --version is the module version: it never prints the CLI version and exits 0 (the seed's bug)", async () => {
    const r = await wasmCli(['upload', '--file', join(ROOT, 'fixtures/wasm/echo/echo.wasm'), '--name', 'x', '--version', '1.0.0'], { env: noServer });
    assert.notEqual(r.stdout.trim(), VERSION);
    assert.equal(r.code, 1, 'without a token the upload is refused, not reported as done');
    assert.match(r.stderr, /no API token: pass --token or set VECRON_TOKEN/);
  });

  it('unknown flags, missing values and bad values exit 2 with a message', async () => {
    const cases: [string[], RegExp][] = [
      [['upload', '--file', 'm.wasm', '--name', 'x', '--version'], /option '--version <version>' argument missing/],
      [['upload', '--bogus'], /unknown option '--bogus'/],
      [['list', '--url'], /option '--url <url>' argument missing/],
      [['list', '--limit', 'many'], /--limit must be a positive whole number/],
      [['download'], /which module\? wasm-cli download --id <module-id> --output module\.wasm/],
      [['download', 'a@1.0.0', '--id', 'b@1.0.0'], /two modules named/],
      [['upload', '--file', 'm.wasm'], /upload needs --name and --version/],
      [['init', 'x'], /required option '-l, --lang <language>' not specified/],
      [['init', 'x', '--lang', 'cobol'], /--lang must be one of rust, go, tinygo, assemblyscript, c, cpp, js, python; got "cobol"/],
      [['test', join(ROOT, 'fixtures/wasm/echo/echo.wasm'), '--allow', 'http:fly=x'], /--allow http:fly=x: .*type: must be one of http:read/],
      [['test', join(ROOT, 'fixtures/wasm/echo/echo.wasm'), '--datasource', 'pg'], /--datasource takes NAME=URL, got "pg"/],
      [['test', join(ROOT, 'fixtures/wasm/echo/echo.wasm'), '--datasource', 'pg=localhost'], /--datasource pg: "localhost" is not a URL/],
      [['test', join(ROOT, 'fixtures/wasm/echo/echo.wasm'), '--files', '/nonexistent-dir'], /--files \/nonexistent-dir: not a folder/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const r = await wasmCli(args, { env: noServer, cwd: '/' });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
  });

  it('VECRON_URL and VECRON_TOKEN are still read; --url wins over VECRON_URL', async () => {
    const r = await wasmCli(['list', '--url', 'http://127.0.0.1:9'], { env: { VECRON_URL: 'http://127.0.0.1:1', VECRON_TOKEN: 't' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach http:\/\/127\.0\.0\.1:9 /);
    const e = await wasmCli(['list'], { env: { VECRON_URL: 'http://127.0.0.1:1', VECRON_TOKEN: 't' } });
    assert.match(e.stderr, /cannot reach http:\/\/127\.0\.0\.1:1 /);
  });

  it('help lists every command', async () => {
    const r = await wasmCli(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['init', 'build', 'test', 'inspect', 'upload', 'list', 'download', 'keygen', 'sign']) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, 'm'));
  });
});
