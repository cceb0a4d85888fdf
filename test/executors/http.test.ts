import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execute, HTTP_MAX_RESPONSE_BYTES, redactUrl } from '../../src/executors/http/executor.ts';
import { clearTokenCache } from '../../src/executors/http/oauth2.ts';
import type { HttpStepConfig } from '../../src/executors/http/definition.ts';
import type { StepRunContext } from '../../src/executors/executor.ts';
import { StepError } from '../../src/engine/step-error.ts';
import { stepError, stepRunContext } from '../helpers/steps.ts';

/* ---------------------------------------------------------------------------------------------- */

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface TestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

async function serve(handler: Handler): Promise<TestServer> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
    res.on('error', () => {}); // client gave up (cap, timeout, abort)
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

/** Echoes the request as JSON. */
const echo: Handler = (req, res, body) => {
  const u = new URL(req.url!, 'http://x');
  json(res, 200, {
    method: req.method,
    path: u.pathname,
    query: [...u.searchParams.entries()],
    headers: req.headers,
    body,
  });
};

const runCtx = (over: Partial<StepRunContext> = {}) => stepRunContext({ stepId: 'call', deadline: Date.now() + 30_000, ...over });

const run = (config: Partial<HttpStepConfig> & { url: string }, ctx = runCtx()) => execute({ method: 'GET', ...config } as HttpStepConfig, ctx) as Promise<any>;

const basicOf = (h: string | undefined) => Buffer.from(String(h).replace(/^Basic /, ''), 'base64').toString('utf8');

/* ---------------------------------------------------------------------------------------------- */

describe('http executor: requests', () => {
  let srv: TestServer;
  before(async () => {
    srv = await serve(echo);
  });
  after(() => srv.close());

  it('GET merges query parameters into the URL and sends headers', async () => {
    const out = await run({
      url: `${srv.url}/items?sort=name&tag=a%20b`,
      query: { page: 2, active: true, q: 'x&y' },
      headers: { 'X-Trace': 'abc', Accept: 'application/json' },
    });
    assert.equal(out.status, 200);
    assert.equal(out.body.method, 'GET');
    assert.equal(out.body.path, '/items');
    assert.deepEqual(out.body.query, [
      ['sort', 'name'],
      ['tag', 'a b'],
      ['page', '2'],
      ['active', 'true'],
      ['q', 'x&y'],
    ]);
    assert.equal(out.body.headers['x-trace'], 'abc');
    assert.equal(out.body.headers.accept, 'application/json');
    assert.match(out.body.headers['user-agent'], /^vecron\//);
    assert.equal(out.headers['content-type'], 'application/json');
    assert.equal(out.url, `${srv.url}/items?sort=name&tag=a%20b&page=2&active=true&q=x%26y`);
    assert.equal(typeof out.duration_ms, 'number');
  });

  it('POST sends a JSON body (application/json) and parses the JSON answer', async () => {
    const out = await run({ method: 'POST', url: `${srv.url}/orders`, body: { id: 7, tags: ['a'], ok: true } });
    assert.equal(out.body.method, 'POST');
    assert.equal(out.body.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(out.body.body), { id: 7, tags: ['a'], ok: true });
  });

  it('a Content-Type header overrides the JSON default', async () => {
    const out = await run({ method: 'PUT', url: srv.url, body: { a: 1 }, headers: { 'content-type': 'application/vnd.api+json' } });
    assert.equal(out.body.headers['content-type'], 'application/vnd.api+json');
    assert.equal(out.body.body, '{"a":1}');
  });

  it('body_text is sent as text/plain', async () => {
    const out = await run({ method: 'POST', url: srv.url, body_text: 'hello, world' });
    assert.equal(out.body.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(out.body.body, 'hello, world');
  });

  it('a body on a GET request is refused before sending', async () => {
    const e = await stepError(run({ url: srv.url, body: { a: 1 } }));
    assert.equal(e.code, 'http_invalid_request');
    assert.equal(e.retryable, false);
  });

  it('basic auth reaches the server as Authorization: Basic', async () => {
    const out = await run({ url: srv.url, auth: { type: 'basic', username: 'ana', password: 'p:ss wörd' } });
    assert.equal(basicOf(out.body.headers.authorization), 'ana:p:ss wörd');
  });

  it('bearer auth reaches the server as Authorization: Bearer', async () => {
    const out = await run({ url: srv.url, auth: { type: 'bearer', token: 'tok-123' } });
    assert.equal(out.body.headers.authorization, 'Bearer tok-123');
  });

  it('userinfo in the URL becomes Basic auth (fetch refuses it in the URL)', async () => {
    const out = await run({ url: srv.url.replace('http://', 'http://bob:s%40cret@') + '/x' });
    assert.equal(basicOf(out.body.headers.authorization), 'bob:s@cret');
    assert.ok(!out.url.includes('bob'));
  });
});

describe('http executor: response bodies', () => {
  let srv: TestServer;
  before(async () => {
    srv = await serve((req, res) => {
      switch (req.url) {
        case '/text':
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
          return res.end('xin chào');
        case '/latin1':
          res.writeHead(200, { 'content-type': 'text/plain; charset=iso-8859-1' });
          return res.end(Buffer.from([0x63, 0x61, 0x66, 0xe9])); // "café"
        case '/xml':
          res.writeHead(200, { 'content-type': 'application/soap+xml' });
          return res.end('<a>1</a>');
        case '/problem':
          res.writeHead(200, { 'content-type': 'application/problem+json' });
          return res.end('{"title":"x"}');
        case '/binary':
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          return res.end(Buffer.from([0, 1, 2, 255]));
        case '/unknown-utf8':
          res.writeHead(200, { 'content-type': 'application/x-custom' });
          return res.end('plain words');
        case '/unknown-binary':
          res.writeHead(200, {});
          return res.end(Buffer.from([0xff, 0xfe, 0x00, 0x80]));
        case '/empty-json':
          res.writeHead(201, { 'content-type': 'application/json' });
          return res.end();
        case '/bad-json':
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
          return res.end('{"unterminated": ');
        case '/cookies':
          res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
          res.setHeader('X-Custom', 'Yes');
          return res.end('ok');
        default:
          res.writeHead(404).end();
      }
    });
  });
  after(() => srv.close());

  it('text content types give text, with the declared charset', async () => {
    assert.equal((await run({ url: `${srv.url}/text` })).body, 'xin chào');
    assert.equal((await run({ url: `${srv.url}/latin1` })).body, 'café');
    assert.equal((await run({ url: `${srv.url}/xml` })).body, '<a>1</a>');
  });

  it('+json content types are parsed; an empty JSON body is null', async () => {
    assert.deepEqual((await run({ url: `${srv.url}/problem` })).body, { title: 'x' });
    const empty = await run({ url: `${srv.url}/empty-json` });
    assert.equal(empty.status, 201);
    assert.equal(empty.body, null);
  });

  it('binary content gives { base64 }; unknown types are text if valid UTF-8', async () => {
    assert.deepEqual((await run({ url: `${srv.url}/binary` })).body, { base64: 'AAEC/w==' });
    assert.equal((await run({ url: `${srv.url}/unknown-utf8` })).body, 'plain words');
    assert.deepEqual((await run({ url: `${srv.url}/unknown-binary` })).body, { base64: Buffer.from([0xff, 0xfe, 0, 0x80]).toString('base64') });
  });

  it('invalid JSON under a JSON content type is http_invalid_json, not retryable', async () => {
    const e = await stepError(run({ url: `${srv.url}/bad-json` }));
    assert.equal(e.code, 'http_invalid_json');
    assert.equal(e.retryable, false);
  });

  it('response header names are lower case; several set-cookie headers are kept', async () => {
    const out = await run({ url: `${srv.url}/cookies` });
    assert.equal(out.headers['x-custom'], 'Yes');
    assert.equal(out.headers['set-cookie'], 'a=1; Path=/\nb=2; Path=/');
    assert.ok(Object.keys(out.headers).every((k) => k === k.toLowerCase()));
  });
});

describe('http executor: status codes and redirects', () => {
  let srv: TestServer;
  before(async () => {
    srv = await serve((req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.pathname === '/status') {
        const code = Number(u.searchParams.get('status'));
        res.writeHead(code, { 'content-type': 'text/plain' });
        return res.end(u.searchParams.get('body') ?? `status ${code}`);
      }
      if (u.pathname === '/redirect') {
        res.writeHead(302, { location: '/final?from=redirect' });
        return res.end();
      }
      if (u.pathname === '/final') return json(res, 200, { final: true, query: u.search });
      res.writeHead(404).end();
    });
  });
  after(() => srv.close());

  it('500 is http_status, retryable, with the status and the start of the body', async () => {
    const e = await stepError(run({ url: `${srv.url}/status?status=500&body=${'x'.repeat(5000)}` }));
    assert.equal(e.code, 'http_status');
    assert.equal(e.retryable, true);
    const d = e.details as { status: number; body: string };
    assert.equal(d.status, 500);
    assert.equal(d.body, 'x'.repeat(2048));
    assert.ok(e.message.length < 400, 'long URLs are shortened in messages');
    assert.match(e.message, /^GET http:\/\/127\.0\.0\.1:\d+\/status\?status=500&body=x+\.\.\. answered 500 Internal Server Error \(expected 2xx\)$/);
    const short = await stepError(run({ url: `${srv.url}/status?status=500` }));
    assert.equal(short.message, `GET ${srv.url}/status?status=500 answered 500 Internal Server Error (expected 2xx)`);
  });

  it('503, 429 and 408 are retryable; 404 and 400 are not', async () => {
    for (const [code, retryable] of [
      [503, true],
      [429, true],
      [408, true],
      [404, false],
      [400, false],
    ] as const) {
      const e = await stepError(run({ url: `${srv.url}/status?status=${code}` }));
      assert.equal(e.code, 'http_status');
      assert.equal(e.retryable, retryable, `status ${code}`);
      assert.equal((e.details as any).status, code);
    }
  });

  it('expected_status accepts the listed statuses only', async () => {
    const out = await run({ url: `${srv.url}/status?status=404&body=gone`, expected_status: [404] });
    assert.equal(out.status, 404);
    assert.equal(out.body, 'gone');
    const e = await stepError(run({ url: `${srv.url}/status?status=200`, expected_status: [201, 202] }));
    assert.equal(e.code, 'http_status');
    assert.match(e.message, /\(expected 201, 202\)$/);
  });

  it('redirects are followed by default; url is the final URL', async () => {
    const out = await run({ url: `${srv.url}/redirect` });
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { final: true, query: '?from=redirect' });
    assert.equal(out.url, `${srv.url}/final?from=redirect`);
  });

  it('follow_redirects false: the 3xx is the result', async () => {
    const out = await run({ url: `${srv.url}/redirect`, follow_redirects: false });
    assert.equal(out.status, 302);
    assert.equal(out.headers.location, '/final?from=redirect');
    assert.equal(out.url, `${srv.url}/redirect`);
  });
});

describe('http executor: OAuth2 client credentials', () => {
  let tokenSrv: TestServer;
  let api: TestServer;
  let tokenRequests = 0;
  let issued = 0;
  /** Tokens the API accepts; clearing it simulates revocation. */
  const valid = new Set<string>();
  let lastForm: URLSearchParams | null = null;
  let lastBasic = '';
  let issueValid = true;

  before(async () => {
    tokenSrv = await serve((req, res, body) => {
      tokenRequests++;
      lastForm = new URLSearchParams(body);
      lastBasic = basicOf(req.headers.authorization);
      if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-www-form-urlencoded') {
        return json(res, 400, { error: 'invalid_request' });
      }
      if (lastForm.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type' });
      if (req.url === '/broken') return json(res, 503, { error: 'temporarily_unavailable' });
      if (lastBasic !== 'client-a:secret-a') {
        return json(res, 401, { error: 'invalid_client', error_description: 'bad client credentials' });
      }
      const token = `tok-${++issued}`;
      if (issueValid) valid.add(token);
      json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
    });
    api = await serve((req, res) => {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      if (!m || !valid.has(m[1])) return json(res, 401, { error: 'unauthorized' });
      json(res, 200, { token: m[1] });
    });
  });
  after(async () => {
    await tokenSrv.close();
    await api.close();
  });
  beforeEach(() => {
    clearTokenCache();
    tokenRequests = 0;
  });

  const oauth = (over: Record<string, string> = {}) =>
    ({
      type: 'oauth2_client_credentials',
      token_url: `${tokenSrv.url}/token`,
      client_id: 'client-a',
      client_secret: 'secret-a',
      scope: 'read write',
      audience: 'https://api.example',
      ...over,
    }) as const;

  it('gets a token (grant_type, Basic client credentials, scope, audience) and caches it', async () => {
    const first = await run({ url: api.url, auth: oauth() });
    const second = await run({ url: api.url, auth: oauth() });
    assert.equal(first.status, 200);
    assert.equal(second.body.token, first.body.token);
    assert.equal(tokenRequests, 1);
    assert.equal(lastBasic, 'client-a:secret-a');
    assert.equal(lastForm!.get('grant_type'), 'client_credentials');
    assert.equal(lastForm!.get('scope'), 'read write');
    assert.equal(lastForm!.get('audience'), 'https://api.example');
    assert.equal(lastForm!.get('client_secret'), null);
  });

  it('concurrent steps share one token request', async () => {
    const outs = await Promise.all([1, 2, 3].map(() => run({ url: api.url, auth: oauth() })));
    assert.equal(tokenRequests, 1);
    assert.equal(new Set(outs.map((o) => o.body.token)).size, 1);
  });

  it('a different scope is a different cache entry', async () => {
    await run({ url: api.url, auth: oauth() });
    await run({ url: api.url, auth: oauth({ scope: 'admin' }) });
    assert.equal(tokenRequests, 2);
  });

  it('a 401 with a cached token fetches a fresh token once and retries once', async () => {
    const first = await run({ url: api.url, auth: oauth() });
    valid.clear(); // the API revokes every token
    const second = await run({ url: api.url, auth: oauth() });
    assert.equal(tokenRequests, 2);
    assert.notEqual(second.body.token, first.body.token);
    assert.equal(second.status, 200);
  });

  it('a 401 with a fresh token is not retried', async () => {
    issueValid = false; // the token endpoint issues tokens the API refuses
    try {
      const e = await stepError(run({ url: api.url, auth: oauth() }));
      assert.equal(e.code, 'http_status');
      assert.equal((e.details as any).status, 401);
      assert.equal(e.retryable, false);
      assert.equal(tokenRequests, 1);
    } finally {
      issueValid = true;
    }
  });

  it('token endpoint refusal: oauth2_failed with the status, not retryable', async () => {
    const e = await stepError(run({ url: api.url, auth: oauth({ client_secret: 'wrong' }) }));
    assert.equal(e.code, 'oauth2_failed');
    assert.equal(e.retryable, false);
    assert.match(e.message, /answered 401 Unauthorized \(invalid_client: bad client credentials\)/);
    assert.ok(!e.message.includes('wrong'));
  });

  it('token endpoint 5xx: oauth2_failed, retryable', async () => {
    const e = await stepError(run({ url: api.url, auth: oauth({ token_url: `${tokenSrv.url}/broken` }) }));
    assert.equal(e.code, 'oauth2_failed');
    assert.equal(e.retryable, true);
    assert.match(e.message, /503/);
  });

  it('unreachable token endpoint: oauth2_failed, retryable, naming the cause', async () => {
    const closed = await serve(() => {});
    await closed.close();
    const e = await stepError(run({ url: api.url, auth: oauth({ token_url: `${closed.url}/token` }) }));
    assert.equal(e.code, 'oauth2_failed');
    assert.equal(e.retryable, true);
    assert.match(e.message, /ECONNREFUSED/);
  });
});

describe('http executor: failures', () => {
  let hang: TestServer;
  before(async () => {
    hang = await serve(() => {}); // never answers
  });
  after(() => hang.close());

  it('timeout_seconds: timeout, retryable', async () => {
    const t0 = Date.now();
    const e = await stepError(run({ url: `${hang.url}/slow?api_key=SECRET`, timeout_seconds: 0.3 }));
    assert.equal(e.code, 'timeout');
    assert.equal(e.retryable, true);
    assert.match(e.message, /^HTTP request to http:\/\/127\.0\.0\.1:\d+\/slow\?api_key=\*\*\* timed out after 0\.3s$/);
    assert.ok(Date.now() - t0 < 3000);
  });

  it('without timeout_seconds, the step deadline bounds the request', async () => {
    const e = await stepError(run({ url: hang.url }, runCtx({ deadline: Date.now() + 300 })));
    assert.equal(e.code, 'timeout');
  });

  it('deadlineEnforced: the deadline is left to the caller, whose signal ends the request; a shorter own timeout still applies', async () => {
    // The caller (the engine) aborts at the deadline: the step keeps no timer of its own for it.
    const ac = new AbortController();
    const deadline = Date.now() + 200;
    setTimeout(() => ac.abort(new StepError('job_timeout', "job 'j' exceeded its timeout of 0.2s during step 'call'")), 400);
    const e = await stepError(run({ url: hang.url }, runCtx({ deadline, deadlineEnforced: true, signal: ac.signal })));
    // A timer of the step's own would have fired at deadline + 100 ms, before the caller, with `timeout`.
    assert.equal(e.code, 'job_timeout', "the caller's reason, not a timer of the step");

    const e2 = await stepError(run({ url: hang.url, timeout_seconds: 0.2 }, runCtx({ deadline: Date.now() + 30_000, deadlineEnforced: true })));
    assert.equal(e2.code, 'timeout');
    assert.match(e2.message, /timed out after 0\.2s$/);
  });

  it('aborting ctx.signal: aborted (or the StepError given as the abort reason)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const e = await stepError(run({ url: hang.url }, runCtx({ signal: ac.signal })));
    assert.equal(e.code, 'aborted');

    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(new StepError('step_timeout', "step 'call' exceeded its timeout of 1s")), 100);
    const e2 = await stepError(run({ url: hang.url }, runCtx({ signal: ac2.signal })));
    assert.equal(e2.code, 'step_timeout');
  });

  it('connection refused: http_connection naming the host and the cause, retryable', async () => {
    const closed = await serve(() => {});
    await closed.close();
    const e = await stepError(run({ url: `${closed.url}/x` }));
    assert.equal(e.code, 'http_connection');
    assert.equal(e.retryable, true);
    assert.equal(e.message, `HTTP request to 127.0.0.1:${closed.port} failed: ECONNREFUSED`);
  });

  it('unknown host: http_connection', async () => {
    const e = await stepError(run({ url: 'http://no-such-host.invalid/' }));
    assert.equal(e.code, 'http_connection');
    assert.match(e.message, /no-such-host\.invalid failed: (ENOTFOUND|EAI_AGAIN)/);
  });
});

describe('http executor: response size cap', () => {
  let big: TestServer;
  before(async () => {
    big = await serve((req, res) => {
      const total = 11 * 1024 * 1024;
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (req.url === '/declared') headers['content-length'] = String(total);
      res.writeHead(200, headers);
      const chunk = Buffer.alloc(64 * 1024, 97);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (sent = total));
      pump();
    });
  });
  after(() => big.close());

  it('a streamed (chunked) body over 10 MiB: http_response_too_large, not retryable', async () => {
    assert.equal(HTTP_MAX_RESPONSE_BYTES, 10 * 1024 * 1024);
    const e = await stepError(run({ url: `${big.url}/chunked` }));
    assert.equal(e.code, 'http_response_too_large');
    assert.equal(e.retryable, false);
  });

  it('a declared Content-Length over 10 MiB is refused before reading', async () => {
    const e = await stepError(run({ url: `${big.url}/declared` }));
    assert.equal(e.code, 'http_response_too_large');
  });
});

describe('http executor: logging', () => {
  it('redactUrl drops userinfo and masks secret-looking query values', () => {
    assert.equal(
      redactUrl('https://u:p@api.example/v1/x?page=2&access_token=abc&apiKey=k&name=n&X-Amz-Signature=s&zipcode=1'),
      'https://api.example/v1/x?page=2&access_token=***&apiKey=***&name=n&X-Amz-Signature=***&zipcode=1',
    );
  });

  it('the debug line has method, redacted URL, status and duration, never credentials', async () => {
    const srv = await serve(echo);
    const lines: any[] = [];
    const capture = {
      debug: (obj: any, msg: string) => lines.push({ ...obj, msg }),
    } as any;
    try {
      await run({ url: `${srv.url}/p?token=SECRET1`, auth: { type: 'bearer', token: 'SECRET2' } }, runCtx({ logger: capture }));
    } finally {
      await srv.close();
    }
    assert.equal(lines.length, 1);
    assert.equal(lines[0].method, 'GET');
    assert.equal(lines[0].status, 200);
    assert.equal(typeof lines[0].duration_ms, 'number');
    assert.match(lines[0].url, /\/p\?token=\*\*\*$/);
    assert.ok(!JSON.stringify(lines).includes('SECRET'));
  });
});
