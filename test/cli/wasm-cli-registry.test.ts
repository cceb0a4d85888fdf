import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { freePort } from '../helpers/ports.ts';

const root = new URL('../../', import.meta.url).pathname;
const fx = (p: string) => join(root, 'fixtures/wasm', p);

function cli(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/wasm-cli.js'), ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('wasm-cli keygen, sign, upload, list, download against a real server', () => {
  let t: TestApp;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    t = await startTestApp('pglite');
    dir = mkdtempSync(join(tmpdir(), 'wasm-cli-reg-'));
    env = { VECRON_URL: t.url, VECRON_TOKEN: await t.token('operator') };
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes a signed module and gets the same bytes back', async () => {
    const keygen = await cli(['keygen', '--out', 'alice'], env, dir);
    assert.equal(keygen.code, 0, keygen.stderr);
    assert.equal(statSync(join(dir, 'alice.key')).mode & 0o777, 0o600);
    const hex = /public key \(hex\): ([0-9a-f]{64})/.exec(keygen.stdout)![1];
    assert.equal((await cli(['keygen', '--out', 'alice'], env, dir)).code, 1, 'keygen does not overwrite a key');
    assert.equal((await t.api('POST', '/api/v1/wasm/keys', { body: { author: 'alice', public_key: hex } })).status, 201);

    const sig = await cli(['sign', fx('echo/echo.wasm'), '--key', 'alice.key'], env, dir);
    assert.equal(sig.code, 0, sig.stderr);
    assert.match(sig.stdout.trim(), /^[0-9a-f]{128}$/);

    const up = await cli(
      ['upload', fx('customer-tiers/customer-tiers.wasm'), '-n', 'tiers', '-m', '1.0.0', '-a', 'alice', '-k', 'alice.key', '--json'],
      env,
      dir,
    );
    assert.equal(up.code, 0, up.stderr);
    const m = JSON.parse(up.stdout);
    assert.equal(m.signed, true);
    assert.match(up.stderr, /uploading customer-tiers\.wasm \[#+\] 100%/);
    const withSig = await cli(['upload', fx('echo/echo.wasm'), '-n', 'echo', '-m', '0.1.0', '-a', 'alice', '-s', sig.stdout.trim()], env, dir);
    assert.equal(withSig.code, 0, withSig.stderr);
    assert.match(withSig.stdout, /echo@0\.1\.0 uploaded: id [0-9a-f-]{36}, sha256 [0-9a-f]{64}, \d+ bytes, signed/);

    // The seed's spelling of the same: --file --name --version --author --description --sign-key, --url --token.
    const seed = await cli(
      [
        'upload',
        '--url',
        t.url,
        '--token',
        env.VECRON_TOKEN,
        '--file',
        fx('echo/echo.wasm'),
        '--name',
        'seed-flags',
        '--version',
        '2.0.0',
        '--author',
        'alice',
        '--description',
        'echo, signed',
        '--sign-key',
        'alice.key',
        '--json',
      ],
      {},
      dir,
    );
    assert.equal(seed.code, 0, seed.stderr);
    const seeded = JSON.parse(seed.stdout);
    assert.deepEqual([seeded.name, seeded.version, seeded.author, seeded.description, seeded.signed], ['seed-flags', '2.0.0', 'alice', 'echo, signed', true]);

    const list = await cli(['list', '--search', 'tiers'], env, dir);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^MODULE\s+ID\s+BYTES\s+SIGNED\s+AUTHOR\s+CREATED$/m);
    assert.match(list.stdout, new RegExp(`^tiers@1\\.0\\.0\\s+${m.id}\\s+\\d+\\s+signed\\s+alice`, 'm'));
    assert.match(list.stdout, /1 of 1 module\(s\)/);

    const dl = await cli(['download', 'tiers@latest'], env, dir);
    assert.equal(dl.code, 0, dl.stderr);
    assert.ok(readFileSync(join(dir, 'tiers-1.0.0.wasm')).equals(readFileSync(fx('customer-tiers/customer-tiers.wasm'))));
  });

  it("reports refusals with the server's reason and exit code 1", async () => {
    const other = await cli(['keygen', '--out', 'mallory'], env, dir);
    assert.equal(other.code, 0);
    const forged = await cli(['upload', fx('echo/echo.wasm'), '-n', 'forged', '-m', '1.0.0', '-a', 'alice', '-k', 'mallory.key'], env, dir);
    assert.equal(forged.code, 1);
    assert.match(forged.stderr, /upload failed: invalid_signature: the signature does not verify/);
    const foreign = await cli(['upload', fx('foreign-import/foreign-import.wasm'), '-n', 'evil', '-m', '1.0.0', '-a', 'alice'], env, dir);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /import_not_allowed: .*evil\.system/);
    const missing = await cli(['download', 'nothing@1.0.0'], env, dir);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /download failed: not_found: module 'nothing@1\.0\.0' does not exist/);
    const noToken = await cli(['list'], { VECRON_URL: t.url, VECRON_TOKEN: '' }, dir);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /no API token/);
    const port = await freePort();
    const down = await cli(['list'], { VECRON_URL: `http://127.0.0.1:${port}`, VECRON_TOKEN: 'x' }, dir);
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    writeFileSync(join(dir, 'bad.key'), 'not a key');
    const badKey = await cli(['sign', fx('echo/echo.wasm'), '--key', 'bad.key'], env, dir);
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /bad\.key is not a usable Ed25519 private key/);
  });

  it('a bad token is refused with what to do (exit 1)', async () => {
    const r = await cli(['list', '--url', t.url, '--token', 'not-a-token'], {}, dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /list failed: .*\(check --token or VECRON_TOKEN: `vecron token create --role operator` prints a new one\)/);
  });

  it('in a project, upload takes file, name and version from the manifest and sets its permissions; an operator token uploads but is told an admin must grant them', async () => {
    const projects = mkdtempSync(join(tmpdir(), 'wasm-cli-upload-project-'));
    try {
      const home = { WASM_CLI_HOME: join(root, 'test/cli/fixtures/home') };
      assert.equal((await cli(['init', 'perm-mod', '--lang', 'c'], home, projects)).code, 0);
      const project = join(projects, 'perm-mod');
      const notBuilt = await cli(['upload'], { ...env, ...home }, project);
      assert.equal(notBuilt.code, 1);
      assert.match(notBuilt.stderr, /build\/perm_mod\.wasm does not exist yet: run `wasm-cli build` first/);
      assert.equal((await cli(['build'], home, project)).code, 0);
      const admin = await cli(['upload', '--url', t.url, '--token', t.adminToken], home, project);
      assert.equal(admin.code, 0, admin.stderr);
      assert.match(admin.stdout, /^perm-mod@0\.1\.0 uploaded: id [0-9a-f-]{36}/m);
      assert.match(admin.stdout, /^permissions set: http:read=https:\/\/api\.example\.com\/\*\*$/m);
      const id = /id ([0-9a-f-]{36})/.exec(admin.stdout)![1];
      const details = await t.api('GET', `/api/v1/wasm/modules/${id}`);
      assert.deepEqual(
        details.body.permissions.map((p: any) => [p.type, p.resource_pattern]),
        [['http:read', 'https://api.example.com/**']],
      );
      const operator = await cli(['upload', '--version', '0.2.0'], { ...env, ...home }, project);
      assert.equal(operator.code, 1);
      assert.match(operator.stderr, /perm-mod@0\.2\.0 was uploaded \(id [0-9a-f-]{36}\) but setting the permissions failed: forbidden/);
      assert.match(operator.stderr, /an admin grants them: PUT .*\/permissions/);
      const skip = await cli(['upload', '--version', '0.3.0', '--no-permissions'], { ...env, ...home }, project);
      assert.equal(skip.code, 0, skip.stderr);
    } finally {
      rmSync(projects, { recursive: true, force: true });
    }
  });
});
