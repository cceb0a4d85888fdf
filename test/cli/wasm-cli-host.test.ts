/**
 * wasm-cli test with the host functions (issue 15): a module gets exactly the grants a job would
 * give it (the manifest's permissions plus --allow, --datasource, --files, --secret), against real
 * servers on loopback (HTTP, a PostgreSQL-protocol database), and every call is shown.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { json, startHttpServer, type TestServer } from '../helpers/http-server.ts';
import { openSqlServer, type SqlServer } from '../helpers/sql-servers.ts';
import { ROOT, wasmCli } from './run-cli.ts';

const HOST_ABI = join(ROOT, 'fixtures/wasm/host-abi/host-abi.wasm');

describe('wasm-cli test: host functions with local grants', () => {
  let dir = '';
  let api: TestServer;
  let sql: SqlServer;
  const req = (name: string, body: unknown) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify(body));
    return f;
  };
  const run = (fn: string, input: string, extra: string[] = [], cwd = dir) =>
    wasmCli(['test', HOST_ABI, '--function', fn, '--input', input, '--json', ...extra], { cwd });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasm-cli-host-'));
    api = await startHttpServer((_r, res) => json(res, 200, { customers: [{ id: 'c1' }] }));
    sql = await openSqlServer('pglite');
    await sql.sql('CREATE TABLE customers (id text, tier text)');
    await sql.sql("INSERT INTO customers VALUES ('c1', 'gold')");
  });
  after(async () => {
    await api?.close();
    await sql?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('http_request: refused without a grant (no connection made), served with --allow; the call is shown', async () => {
    const input = req('http', { method: 'GET', url: `${api.url}/customers` });
    const denied = await run('http_request', input);
    assert.equal(denied.code, 0, denied.stderr);
    const d = JSON.parse(denied.stdout);
    assert.equal(d.output.error.code, 'permission_denied');
    assert.equal(d.hostCalls[0].outcome, 'permission_denied');
    assert.equal(api.seen.length, 0, 'a refused call makes no connection');
    const human = await wasmCli(['test', HOST_ABI, '--function', 'http_request', '--input', input], { cwd: dir });
    assert.match(human.stderr, /http_request .*permission_denied \(needs http:read\)/);
    assert.match(human.stderr, new RegExp(`denied http_request ${api.url}/customers: grant it with --allow http:read=${api.url}/customers here`));

    const allowed = await run('http_request', input, ['--allow', `http:read=${api.url}/**`]);
    const a = JSON.parse(allowed.stdout);
    assert.equal(a.output.status, 200, allowed.stdout);
    assert.deepEqual(JSON.parse(a.output.body), { customers: [{ id: 'c1' }] });
    assert.equal(a.hostCalls[0].target, `${api.url}/customers`);
    assert.equal(a.hostCalls[0].outcome, 'ok');
    assert.equal(api.seen.length, 1);
  });

  it("in a project, the manifest's permissions are granted", async () => {
    const project = join(dir, 'proj');
    mkdirSync(project);
    writeFileSync(
      join(project, 'vecron.json'),
      JSON.stringify({ name: 'proj', version: '0.1.0', permissions: [{ type: 'http:read', resource_pattern: `${api.url}/**` }] }),
    );
    const r = await run('http_request', req('http-proj', { method: 'GET', url: `${api.url}/customers` }), [], project);
    assert.equal(JSON.parse(r.stdout).output.status, 200, r.stdout + r.stderr);
  });

  it('db_query: the --datasource by name, granted per table; an ungranted table is refused', async () => {
    const input = req('db', { datasource: 'analytics', sql: 'SELECT id, tier FROM customers WHERE id = $1', params: ['c1'] });
    const ok = await run('db_query', input, ['--datasource', `analytics=${sql.url}`, '--allow', 'database:read=analytics/customers']);
    const o = JSON.parse(ok.stdout);
    assert.deepEqual(o.output.rows, [{ id: 'c1', tier: 'gold' }], ok.stdout);
    assert.equal(o.hostCalls[0].function, 'db_query');
    const refused = JSON.parse((await run('db_query', input, ['--datasource', `analytics=${sql.url}`, '--allow', 'database:read=analytics/orders'])).stdout);
    assert.equal(refused.output.error.code, 'permission_denied');
    const unknown = JSON.parse((await run('db_query', input, ['--allow', 'database:read=analytics/customers'])).stdout);
    assert.equal(unknown.output.error.code, 'not_found', 'no --datasource: the name is not defined');
  });

  it('file_read and file_write in the --files folder, which stands for the job area', async () => {
    const files = join(dir, 'area');
    mkdirSync(join(files, 'in'), { recursive: true });
    writeFileSync(join(files, 'in/orders.csv'), 'id\n1\n');
    const read = JSON.parse((await run('file_read', req('fr', { path: 'in/orders.csv' }), ['--files', files, '--allow', 'file:read=in/**'])).stdout);
    assert.equal(read.output.content, 'id\n1\n', JSON.stringify(read));
    const write = JSON.parse(
      (await run('file_write', req('fw', { path: 'out/report.txt', content: 'done' }), ['--files', files, '--allow', 'file:write=out/**'])).stdout,
    );
    assert.equal(write.output.size, 4, JSON.stringify(write));
    assert.equal(readFileSync(join(files, 'out/report.txt'), 'utf8'), 'done');
    const denied = JSON.parse((await run('file_read', req('fr2', { path: 'in/orders.csv' }), ['--files', files])).stdout);
    assert.equal(denied.output.error.code, 'permission_denied');
  });

  it('crypto with a --secret key named by the module; the key never reaches the output', async () => {
    const input = req('hmac', { op: 'hmac_sha256', data: 'abc', key_secret: 'SIGNING_KEY' });
    const r = await run('crypto', input, ['--secret', 'SIGNING_KEY=s3cret-value', '--allow', 'secret:use=SIGNING_KEY']);
    const o = JSON.parse(r.stdout);
    assert.equal(o.output.hex, createHmac('sha256', 's3cret-value').update('abc').digest('hex'), r.stdout);
    assert.doesNotMatch(r.stdout, /s3cret-value/);
    const denied = JSON.parse((await run('crypto', input, ['--secret', 'SIGNING_KEY=s3cret-value'])).stdout);
    assert.equal(denied.output.error.code, 'permission_denied');
  });
});
