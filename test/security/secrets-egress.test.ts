/**
 * Secrets and egress, tried as a hostile viewer (who reads every execution) and a hostile operator
 * (who writes jobs): real jobs through the real engine against real servers on loopback.
 *
 * - No secret in any stored output or API answer in any encoding (plain, JSON, URL and form
 *   encoding, base64 at any alignment, hex, digests), whichever executor sent it and wherever.
 * - egress_denied for every refused destination class, without a connection attempt: a loopback
 *   listener that the policy refuses must see no connection; literal URLs are refused at save.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import { openSqlServer, type SqlServer } from '../helpers/sql-servers.ts';
import { giveToUser, startSshServer, sshdSkipReason, type SshServer } from '../helpers/sshd.ts';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Characters that differ between encodings: space, !'()~, '+', '/', '=' (ASCII: it travels in headers too).
const SECRET = "s3cr3t v@lue!'()~+ /=zz";
const DB_PASS = 'db-pass-7777-secret';

/** Every form a secret could be found in, computed independently of the masker. */
function forms(secret: string): string[] {
  const b = Buffer.from(secret, 'utf8');
  const out = [
    secret,
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    new URLSearchParams({ x: secret }).toString().slice(2),
    encodeURI(secret),
    b.toString('hex'),
    b.toString('hex').toUpperCase(),
    b.toString('base64').replace(/=+$/, ''),
    b.toString('base64url'),
    Buffer.from(`user:${secret}`).toString('base64'),
    createHash('sha256').update(b).digest('hex'),
    createHash('sha1').update(b).digest('hex'),
    createHash('md5').update(b).digest('hex'),
  ];
  // base64 of the secret inside longer text, at offsets 1 and 2 (middle characters only)
  for (const pre of ['a', 'ab'])
    out.push(
      Buffer.from(pre + secret + 'zz')
        .toString('base64')
        .slice(4, -4),
    );
  return out;
}

function assertNoSecret(text: string, secret: string, where: string): void {
  for (const f of forms(secret)) assert.ok(!text.includes(f), `${where} holds the secret as '${f}'`);
}

async function finished(t: TestApp, id: string, token: string): Promise<any> {
  return waitFor(
    async () => {
      const e = await t.api('GET', `/api/v1/executions/${id}`, { token });
      return ['succeeded', 'failed', 'dead_lettered'].includes(e.body?.status) ? e.body : null;
    },
    'execution',
    30_000,
  );
}

/** Every stored row that a viewer could see, as text. */
async function storedText(t: TestApp): Promise<string> {
  const parts: string[] = [];
  for (const table of ['executions', 'step_runs', 'audit_log', 'jobs']) {
    const { rows } = await t.app.db.query<{ t: string }>(`SELECT row_to_json(x)::text AS t FROM ${table} x`);
    parts.push(...rows.map((r) => r.t));
  }
  return parts.join('\n');
}

describe('hostile viewer: secrets never reach stored output or answers', () => {
  let t: TestApp;
  let echo: TestServer;
  let viewer: string;
  let sql: SqlServer;
  let ssh: SshServer | null = null;
  before(async () => {
    t = await startTestApp('pglite', { VECRON_POLL_INTERVAL_MS: '100' });
    viewer = await t.token('viewer', 'hostile-viewer');
    echo = await startHttpServer((r, res) => {
      const auth = r.headers.authorization ?? '';
      const s = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':').slice(1).join(':') : '';
      res.writeHead(200, {
        'content-type': 'application/json',
        'set-cookie': `sid=${encodeURIComponent(s)}`,
        'x-auth-token': encodeURIComponent(s),
        'x-echo-b64': Buffer.from(s).toString('base64'),
      });
      // An upstream that echoes the secret back in every encoding it can think of.
      res.end(
        JSON.stringify({
          url: r.url,
          headers: r.headers,
          body: r.body,
          plain: s,
          b64: Buffer.from(s).toString('base64'),
          b64_in_text: Buffer.from(`prefix:${s}:suffix`).toString('base64'),
          hex: Buffer.from(s).toString('hex'),
          sha256: createHash('sha256').update(s).digest('hex'),
          form: new URLSearchParams({ s }).toString(),
        }),
      );
    });
    sql = await openSqlServer('pglite');
    if (!sshdSkipReason()) ssh = await startSshServer();
    for (const [name, value] of [
      ['api_key', SECRET],
      ['db_pass', DB_PASS],
      ['sftp_pass', ssh?.password ?? 'unused-password'],
    ]) {
      assert.equal((await t.api('PUT', `/api/v1/variables/${name}`, { body: { value, secret: true } })).status, 201);
    }
  });
  after(async () => {
    await t?.close();
    await echo?.close();
    await sql?.close();
    await ssh?.stop();
  });

  it('http: secrets in the URL path and query, the query map, headers, basic auth and the body; echoed back encoded', async () => {
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'http-secrets',
        steps: [
          {
            id: 'call',
            type: 'http',
            config: {
              method: 'POST',
              url: `${echo.url}/p/\${api_key}?inline=\${api_key}&access_token=opaque-value-1234`,
              query: { q: '${api_key}', page: 2 },
              headers: { 'x-custom': 'pre-${api_key}-post', 'x-api-key': 'opaque-key-5678' },
              auth: { type: 'basic', username: 'user', password: '${api_key}' },
              body: { nested: { secret: '${api_key}' } },
            },
          },
          // A later step sees the real response (a login's cookie is usable), masked only when stored.
          { id: 'next', type: 'http', config: { url: `${echo.url}/next`, headers: { cookie: '{{steps.call.output.headers.set-cookie}}' } } },
        ],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
    const done = await finished(t, trig.body.execution_id, viewer);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.ok(
      echo.seen.some((r) => r.headers.authorization === 'Basic ' + Buffer.from(`user:${SECRET}`).toString('base64')),
      'the real secret was sent',
    );
    assert.equal(echo.seen.at(-1)!.headers.cookie, `sid=${encodeURIComponent(SECRET)}`, 'the next step got the real cookie');

    const out = done.steps[0].output;
    assert.equal(out.request.headers.authorization, '***');
    assert.equal(out.request.headers['x-api-key'], '***', 'credential-named header, whatever its value');
    assert.equal(out.request.headers['x-custom'], 'pre-***-post');
    assert.match(out.request.url, /\/p\/\*\*\*\?inline=\*\*\*&access_token=\*\*\*&q=\*\*\*&page=2$/);
    assert.equal(out.url, out.request.url);
    assert.equal(out.headers['set-cookie'], '***');
    assert.equal(out.headers['x-auth-token'], '***');
    // Credential-named values that are no variable: out of what vecron records (the upstream's own echo in the body is its content).
    const recorded = JSON.stringify({ request: out.request, url: out.url, headers: out.headers });
    assert.ok(!recorded.includes('opaque-value-1234') && !recorded.includes('opaque-key-5678'), recorded);
    assertNoSecret(JSON.stringify(done), SECRET, 'the execution answer');
    assertNoSecret(JSON.stringify((await t.api('GET', `/api/v1/jobs/${job.body.id}/executions`, { token: viewer })).body), SECRET, 'the execution list');
    assertNoSecret(await storedText(t), SECRET, 'the stored rows');
  });

  it('http: a URL that is a secret as a whole is recorded as ***', async () => {
    const whole = `${echo.url}/whole-url-secret-9191`;
    assert.equal((await t.api('PUT', '/api/v1/variables/whole_url', { body: { value: whole, secret: true } })).status, 201);
    const job = await t.api('POST', '/api/v1/jobs', {
      body: { name: 'http-whole-url', steps: [{ id: 'call', type: 'http', config: { url: '${whole_url}' } }] },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
    const done = await finished(t, trig.body.execution_id, viewer);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.steps[0].output.url, '***');
    assert.equal(done.steps[0].output.request.url, '***');
    assertNoSecret(JSON.stringify(done), whole, 'the execution answer');
  });

  it('database: the password in the connection string and the secret selected back in encodings', async () => {
    const u = new URL(sql.url);
    u.password = '${db_pass}';
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'db-secrets',
        steps: [
          {
            id: 'q',
            type: 'database',
            config: {
              database_type: 'postgresql',
              connection_string: decodeURIComponent(u.toString()),
              query: "SELECT $1::text AS v, encode(convert_to($1, 'UTF8'), 'base64') AS b64, encode(convert_to($1, 'UTF8'), 'hex') AS hex, md5($1) AS md5",
              parameters: ['${db_pass}'],
            },
          },
        ],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
    const done = await finished(t, trig.body.execution_id, viewer);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.match(done.steps[0].output.connection, /^postgres(ql)?:\/\/[^:]+:\*\*\*@/);
    assert.equal(done.steps[0].output.rows[0].v, '***');
    assertNoSecret(JSON.stringify(done), DB_PASS, 'the execution answer');
    assertNoSecret(await storedText(t), DB_PASS, 'the stored rows');
  });

  it('sftp: the password', { skip: sshdSkipReason() ?? false }, async () => {
    const dir = join(ssh!.home, 'out');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'r-1.csv'), 'a,b\n1,2\n');
    giveToUser(ssh!, ssh!.home);
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'sftp-secrets',
        steps: [
          {
            id: 'get',
            type: 'sftp',
            config: {
              operation: 'download',
              host: ssh!.host,
              port: ssh!.port,
              username: ssh!.user,
              auth: { type: 'password', password: '${sftp_pass}' },
              remote_path: dir,
            },
          },
        ],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
    const done = await finished(t, trig.body.execution_id, viewer);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(done.steps[0].output.server, { host: ssh!.host, port: ssh!.port, username: ssh!.user });
    assertNoSecret(JSON.stringify(done), ssh!.password, 'the execution answer');
    assertNoSecret(await storedText(t), ssh!.password, 'the stored rows');
  });

  it('wasm: a module that echoes its input with the secret in it (and its encodings)', async () => {
    const form = new FormData();
    form.set('file', new Blob([readFileSync(new URL('../../fixtures/wasm/echo/echo.wasm', import.meta.url))]), 'echo.wasm');
    form.set('name', 'echo-secrets');
    form.set('version', '1.0.0');
    form.set('author', 'tests');
    const up = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
    assert.equal(up.status, 201, await up.text());
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'wasm-secrets',
        steps: [
          { id: 'e', type: 'wasm', config: { module_id: 'echo-secrets', function_name: 'echo', input: { plain: '${api_key}', in_text: 'Bearer ${api_key}' } } },
        ],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
    const done = await finished(t, trig.body.execution_id, viewer);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.steps[0].output.plain, '***');
    assertNoSecret(JSON.stringify(done), SECRET, 'the execution answer');
    assertNoSecret(await storedText(t), SECRET, 'the stored rows');
    const logs = await t.app.db.query<{ t: string }>('SELECT row_to_json(l)::text AS t FROM wasm_execution_logs l');
    assertNoSecret(logs.rows.map((r) => r.t).join('\n'), SECRET, 'the wasm execution logs');
  });

  it('file: a secret in the file name, written and read back', async () => {
    assert.equal((await t.api('PUT', '/api/v1/variables/file_tag', { body: { value: 'filetag-secret-4242', secret: true } })).status, 201);
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'file-secrets',
        variables: { rows: [{ id: 1, note: 'x' }] },
        steps: [
          { id: 'w', type: 'file', config: { operation: 'write', format: 'csv', path: 'out-${file_tag}.csv', source: '{{variables.rows}}' } },
          { id: 'r', type: 'file', config: { operation: 'read', format: 'csv', path: '{{steps.w.output.path}}' } },
        ],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
    const done = await finished(t, trig.body.execution_id, viewer);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.steps[0].output.path, 'out-***.csv');
    assertNoSecret(JSON.stringify(done), 'filetag-secret-4242', 'the execution answer');
    assertNoSecret(await storedText(t), 'filetag-secret-4242', 'the stored rows');
  });
});

/** A TCP listener that counts connections: where the policy refuses, it must see none. */
async function listener(host: string): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const server: Server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return { port: (server.address() as { port: number }).port, connections: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

describe('hostile operator: egress policy', () => {
  let t: TestApp;
  let trap: Awaited<ReturnType<typeof listener>>;
  let redirector: TestServer;
  let ownPort: number;
  before(async () => {
    trap = await listener('127.0.0.3');
    t = await startTestApp('pglite', { VECRON_POLL_INTERVAL_MS: '100', VECRON_EGRESS_DENY: '127.0.0.3/32' });
    ownPort = Number(new URL(t.url).port);
    redirector = await startHttpServer((r, res) => {
      res.writeHead(302, { location: decodeURIComponent(new URL(r.url, 'http://x').searchParams.get('to')!) });
      res.end();
    });
  });
  after(async () => {
    await t?.close();
    await trap?.close();
    await redirector?.close();
  });

  const run = async (name: string, step: object, variables: Record<string, unknown> = {}) => {
    const job = await t.api('POST', '/api/v1/jobs', { body: { name, variables, steps: [{ id: 's', ...step }] } });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const trig = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`);
    return finished(t, trig.body.execution_id, t.adminToken);
  };

  it('templated destinations are refused at run time with egress_denied, and the listener sees no connection', async () => {
    const P = trap.port;
    const targets = [
      `http://127.0.0.3:${P}/`,
      `http://[::ffff:127.0.0.3]:${P}/`,
      `http://[::ffff:7f00:3]:${P}/`,
      `http://[64:ff9b::7f00:3]:${P}/`,
      `http://127.0.0.1:${ownPort}/health`, // vecron's own API
      `http://169.254.169.254/latest/meta-data/`,
      `http://[fe80::1]:${P}/`,
      `http://metadata.google.internal/computeMetadata/v1/`,
      `http://0.0.0.0:${P}/`,
      `http://224.0.0.1:${P}/`,
      `${redirector.url}/?to=${encodeURIComponent(`http://127.0.0.3:${P}/`)}`, // a redirect hop
      `${redirector.url}/?to=${encodeURIComponent(`http://[::ffff:169.254.169.254]/`)}`,
    ];
    for (const [i, target] of targets.entries()) {
      const done = await run(`egress-http-${i}`, { type: 'http', config: { url: '{{variables.target}}' } }, { target });
      assert.equal(done.status, 'failed', `${target}: ${done.status}`);
      const err = done.steps[0].error;
      assert.equal(err.code, 'egress_denied', `${target}: ${JSON.stringify(err)}`);
      assert.equal(err.retryable, false);
      assert.match(err.message, /setting: /);
      assert.ok(err.details.setting && (err.details.address || err.details.host), JSON.stringify(err.details));
    }
    const db = await run(
      'egress-db',
      { type: 'database', config: { database_type: 'postgresql', connection_string: '{{variables.dsn}}', query: 'SELECT 1' } },
      { dsn: `postgresql://u:p@127.0.0.3:${P}/db` },
    );
    assert.equal(db.steps[0].error.code, 'egress_denied', JSON.stringify(db.steps[0].error));
    const my = await run(
      'egress-mysql',
      { type: 'database', config: { database_type: 'mysql', connection_string: '{{variables.dsn}}', query: 'SELECT 1' } },
      { dsn: `mysql://u:p@127.0.0.3:${P}/db` },
    );
    assert.equal(my.steps[0].error.code, 'egress_denied', JSON.stringify(my.steps[0].error));
    const sftp = await run(
      'egress-sftp',
      {
        type: 'sftp',
        config: { operation: 'download', host: '{{variables.h}}', port: P, username: 'u', auth: { type: 'password', password: 'p' }, remote_path: '/x' },
      },
      { h: '127.0.0.3' },
    );
    assert.equal(sftp.steps[0].error.code, 'egress_denied', JSON.stringify(sftp.steps[0].error));
    assert.equal(trap.connections(), 0, 'no connection reached the refused listener');
  });

  it('literal destinations the policy refuses are refused when the job is saved, at the step path', async () => {
    const cases: [object, string][] = [
      [{ type: 'http', config: { url: 'http://169.254.169.254/latest/meta-data/' } }, 'steps[0].config.url'],
      [{ type: 'http', config: { url: 'http://[::ffff:169.254.169.254]/' } }, 'steps[0].config.url'],
      [{ type: 'http', config: { url: 'http://metadata.google.internal/' } }, 'steps[0].config.url'],
      [{ type: 'http', config: { url: `http://127.0.0.3:${trap.port}/` } }, 'steps[0].config.url'],
      [{ type: 'http', config: { url: `http://127.0.0.1:${ownPort}/api/v1/jobs` } }, 'steps[0].config.url'],
      [
        {
          type: 'http',
          config: {
            url: 'https://ok.example/',
            auth: { type: 'oauth2_client_credentials', token_url: 'http://169.254.169.254/token', client_id: 'a', client_secret: 'b' },
          },
        },
        'steps[0].config.auth.token_url',
      ],
      [
        { type: 'database', config: { database_type: 'postgresql', connection_string: 'postgresql://u:p@169.254.169.254:5432/db', query: 'SELECT 1' } },
        'steps[0].config.connection_string',
      ],
      [
        { type: 'database', config: { database_type: 'postgresql', connection_string: 'host=127.0.0.3 port=5432 dbname=x', query: 'SELECT 1' } },
        'steps[0].config.connection_string',
      ],
      [
        {
          type: 'sftp',
          config: { operation: 'download', host: '169.254.169.254', username: 'u', auth: { type: 'password', password: 'p' }, remote_path: '/x' },
        },
        'steps[0].config.host',
      ],
    ];
    for (const [i, [step, path]] of cases.entries()) {
      const res = await t.api('POST', '/api/v1/jobs', { body: { name: `literal-${i}`, steps: [{ id: 's', ...step }] } });
      assert.equal(res.status, 400, `${JSON.stringify(step)}: ${JSON.stringify(res.body)}`);
      const p = res.body.error.details.problems.find((x: any) => x.path === path);
      assert.ok(p, `${path} in ${JSON.stringify(res.body.error.details.problems)}`);
      assert.match(p.message, /egress policy refused/);
    }
    assert.equal(trap.connections(), 0);
    // Loopback and private addresses stay allowed by default.
    assert.equal(
      (await t.api('POST', '/api/v1/jobs', { body: { name: 'internal-ok', steps: [{ id: 's', type: 'http', config: { url: 'http://10.20.30.40/x' } }] } }))
        .status,
      201,
    );
  });
});
