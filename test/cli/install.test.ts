/**
 * The CLIs from outside the repository: bin/*.js find tsx, the sources and the package's tsconfig
 * relative to themselves, and a global install (`npm install -g --prefix <tmp> <repo>`, what
 * `npm install -g .` / `npm link` do) gives working `vecron` and `wasm-cli` commands, also through
 * `npx` from any folder.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;

describe('the CLIs from another folder', () => {
  let elsewhere = '';
  let prefix = '';
  before(() => {
    elsewhere = mkdtempSync(join(tmpdir(), 'vecron-cwd-'));
    prefix = mkdtempSync(join(tmpdir(), 'vecron-prefix-'));
    // A project of the user's whose tsconfig would redirect our imports if tsx read it from the cwd.
    writeFileSync(join(elsewhere, 'tsconfig.json'), JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { commander: ['./evil.mjs'] } } }));
    writeFileSync(join(elsewhere, 'evil.mjs'), 'throw new Error("the tsconfig of the working directory was used");\n');
    writeFileSync(join(elsewhere, 'package.json'), JSON.stringify({ name: 'someone-else', version: '9.9.9', type: 'module' }));
  });
  after(() => {
    rmSync(elsewhere, { recursive: true, force: true });
    rmSync(prefix, { recursive: true, force: true });
  });

  it("node <repo>/bin/vecron.js and bin/wasm-cli.js run from another cwd, with that folder's tsconfig ignored", async () => {
    for (const bin of ['vecron', 'wasm-cli']) {
      const { stdout } = await run(process.execPath, [join(ROOT, 'bin', `${bin}.js`), '--version'], { cwd: elsewhere });
      assert.equal(stdout.trim(), VERSION, bin);
    }
    const help = await run(process.execPath, [join(ROOT, 'bin', 'wasm-cli.js'), '--help'], { cwd: elsewhere });
    assert.match(help.stdout, /upload/);
  });

  it('npm install -g --prefix <tmp> <repo> installs vecron and wasm-cli commands that work from anywhere (also via npx)', { timeout: 300_000 }, async () => {
    const env = { ...process.env, NPM_CONFIG_PREFIX: prefix, npm_config_prefix: prefix, NPM_CONFIG_UPDATE_NOTIFIER: 'false' };
    await run('npm', ['install', '-g', '--no-audit', '--no-fund', ROOT], { cwd: elsewhere, env });
    for (const bin of ['vecron', 'wasm-cli']) {
      const { stdout } = await run(join(prefix, 'bin', bin), ['--version'], { cwd: elsewhere, env });
      assert.equal(stdout.trim(), VERSION, bin);
      // --no-install: npx must find the global command, never ask the registry for a package of that name
      const viaNpx = await run('npx', ['--no-install', bin, '--version'], { cwd: elsewhere, env });
      assert.equal(viaNpx.stdout.trim(), VERSION, `npx ${bin}`);
    }
    const cfg = await run(join(prefix, 'bin', 'vecron'), ['config'], { cwd: elsewhere, env: { ...env, VECRON_DATA_DIR: join(elsewhere, 'data') } });
    assert.match(cfg.stdout, /VECRON_DATA_DIR/);
    // The installed wasm-cli: its commands, and the package's own templates for init.
    const wasmCli = join(prefix, 'bin', 'wasm-cli');
    const inspect = await run(wasmCli, ['inspect', join(ROOT, 'fixtures/wasm/echo/echo.wasm'), '--function', 'echo_copy'], { cwd: elsewhere, env });
    assert.match(inspect.stdout, /^ABI: ok, the server would run echo_copy \(form A\)$/m);
    const templates = existsSync(join(ROOT, 'templates')) ? readdirSync(join(ROOT, 'templates')).sort() : [];
    if (templates.length > 0) {
      const init = await run(wasmCli, ['init', 'installed-mod', '--lang', templates[0]], { cwd: elsewhere, env });
      assert.match(init.stdout, /Next:\n {2}cd installed-mod\n/);
      assert.ok(existsSync(join(elsewhere, 'installed-mod')));
    } else {
      const init = await run(wasmCli, ['init', 'installed-mod', '--lang', 'c'], { cwd: elsewhere, env }).catch((e) => e);
      assert.equal(init.code, 1);
      assert.match(init.stderr, /templates present: none/);
    }
  });
});
