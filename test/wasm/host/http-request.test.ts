/**
 * http_request against real HTTP(S) servers on loopback: permissions by method and URL, the egress
 * policy (refusals make no connection), network:external, caps, timeouts, aborts and upstream failures.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configureEgress } from '../../../src/egress/index.ts';
import type { Permission } from '../../../src/modules/permissions.ts';
import { closeHttpAgents, httpRequest } from '../../../src/wasm/host/http-request.ts';
import { configureInternalNetworks, isInternalAddress } from '../../../src/wasm/host/network-class.ts';
import { hostError, testContext, testSession } from './support.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A loopback server that counts TCP connections, so a test can assert that none was made. */
interface Loopback {
  url: string;
  port: number;
  connections: number;
  seen: Seen[];
  handler: (req: Seen, res: ServerResponse) => void;
  server: Server;
}

async function startLoopback(): Promise<Loopback> {
  const t: Loopback = { url: '', port: 0, connections: 0, seen: [], handler: (_r, res) => res.end('ok'), server: null as unknown as Server };
  t.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      t.seen.push(seen);
      t.handler(seen, res);
    });
  });
  t.server.on('connection', () => t.connections++);
  await new Promise<void>((r) => t.server.listen(0, '127.0.0.1', () => r()));
  t.port = (t.server.address() as { port: number }).port;
  t.url = `http://127.0.0.1:${t.port}`;
  return t;
}

const call = (request: Record<string, unknown>, permissions: Permission[], opts: { limits?: object; deadline?: number; signal?: AbortSignal } = {}) => {
  const session = testSession({ permissions, limits: opts.limits, deadline: opts.deadline });
  const ctx = testContext(session, 'http_request', opts.signal);
  return { session, ctx, result: httpRequest.call(request, ctx) as Promise<any> };
};

describe('http_request', () => {
  let srv: Loopback;
  before(async () => {
    srv = await startLoopback();
  });
  afterEach(() => {
    srv.handler = (_r, res) => res.end('ok');
    configureEgress({});
    configureInternalNetworks(null);
  });
  after(async () => {
    await closeHttpAgents();
    srv.server.closeAllConnections();
    await new Promise<void>((r) => srv.server.close(() => r()));
  });

  const read = (pattern: string | null = null): Permission => ({ type: 'http:read', resource_pattern: pattern });
  const write = (pattern: string | null = null): Permission => ({ type: 'http:write', resource_pattern: pattern });

  it('GET with http:read: status, headers and body; the guest cannot set connection headers', async () => {
    srv.handler = (r, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-trace': 'abc' });
      res.end(JSON.stringify({ path: r.url, host: r.headers.host, custom: r.headers['x-custom'] }));
    };
    const { ctx, result } = call(
      {
        method: 'get',
        url: `${srv.url}/v1/customers?page=2`,
        headers: { 'X-Custom': 'yes', Host: 'evil.example', 'Content-Length': '999', Connection: 'close' },
      },
      [read(`${srv.url}/v1/**`)],
    );
    const r = await result;
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-trace'], 'abc');
    assert.deepEqual(JSON.parse(r.body), { path: '/v1/customers?page=2', host: `127.0.0.1:${srv.port}`, custom: 'yes' });
    assert.equal(ctx.targetValue, `${srv.url}/v1/customers?page=2`);
  });

  it('POST, PUT, PATCH and DELETE need http:write; GET, HEAD and OPTIONS need http:read', async () => {
    srv.handler = (r, res) => {
      res.writeHead(201);
      res.end(`got ${r.method} ${r.body.toString()}`);
    };
    const before = srv.connections;
    const denied = call({ method: 'POST', url: `${srv.url}/orders`, body: 'x' }, [read()]);
    const e = await hostError(denied.result);
    assert.equal(e.code, 'permission_denied');
    assert.equal(e.permission, 'http:write');
    assert.deepEqual(denied.session.denials, [
      { function: 'http_request', permission: 'http:write', resource: `${srv.url}/orders`, reason: 'the module has no such permission' },
    ]);
    assert.equal(srv.connections, before, 'a denied call makes no connection');

    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const r = await call({ method, url: `${srv.url}/orders`, body: '{"n":1}' }, [write(`${srv.url}/orders`)]).result;
      assert.equal(r.status, 201);
      assert.equal(r.body, `got ${method} {"n":1}`);
    }
    for (const method of ['GET', 'HEAD', 'OPTIONS']) {
      const onlyWrite = call({ method, url: `${srv.url}/orders` }, [write()]);
      assert.equal((await hostError(onlyWrite.result)).permission, 'http:read');
      const r = await call({ method, url: `${srv.url}/orders` }, [read()]).result;
      assert.equal(r.status, 201);
    }
  });

  it('matches URL globs on the canonical URL', async () => {
    const perms = [read(`${srv.url}/api/**`)];
    assert.equal((await call({ method: 'GET', url: `${srv.url}/api/a/b` }, perms).result).status, 200);
    const before = srv.connections;
    for (const url of [`${srv.url}/admin`, `${srv.url}/api/../admin`, `${srv.url}/api%2F..%2Fadmin`, `http://localhost:${srv.port}/api/x`]) {
      const e = await hostError(call({ method: 'GET', url }, perms).result);
      assert.equal(e.code, 'permission_denied', url);
      assert.match(e.message, /no resource pattern of the module matches/);
    }
    assert.equal(srv.connections, before);
  });

  it('refuses link-local and metadata destinations by the egress policy, with no connection made', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[::ffff:169.254.169.254]/', 'http://metadata.google.internal/computeMetadata/v1/']) {
      const e = await hostError(call({ method: 'GET', url }, [read()]).result);
      assert.equal(e.code, 'egress_denied', url);
      assert.match(e.message, /egress policy refused/);
    }
  });

  it('refuses a range on the operator deny list before connecting: the server sees nothing', async () => {
    configureEgress({ deny: '127.0.0.0/8' });
    const before = srv.connections;
    const e = await hostError(call({ method: 'GET', url: `${srv.url}/x` }, [read()]).result);
    assert.equal(e.code, 'egress_denied');
    assert.match(e.message, /deny list/);
    assert.equal(srv.connections, before, 'no TCP connection reached the server');
    assert.equal(srv.seen.filter((s) => s.url === '/x').length, 0);
  });

  it('needs network:external for an address outside the internal ranges', async () => {
    assert.equal(isInternalAddress('10.1.2.3'), true);
    assert.equal(isInternalAddress('::ffff:192.168.1.1'), true);
    assert.equal(isInternalAddress('93.184.216.34'), false);
    // A public literal: refused before any connection.
    const pub = call({ method: 'GET', url: 'http://93.184.216.34/' }, [read()]);
    const e = await hostError(pub.result);
    assert.equal(e.code, 'permission_denied');
    assert.equal(e.permission, 'network:external');
    assert.equal(pub.session.denials[0].resource, '93.184.216.34');

    // The loopback server counted as external (an operator's narrower internal list).
    configureInternalNetworks('10.0.0.0/8');
    const before = srv.connections;
    const without = call({ method: 'GET', url: `http://localhost:${srv.port}/ext` }, [read()]);
    const e2 = await hostError(without.result);
    assert.equal(e2.permission, 'network:external');
    assert.equal(without.session.denials[0].resource, 'localhost');
    assert.equal(srv.connections, before);
    const other = await hostError(
      call({ method: 'GET', url: `http://localhost:${srv.port}/ext` }, [read(), { type: 'network:external', resource_pattern: '*.example.com' }]).result,
    );
    assert.equal(other.permission, 'network:external');
    const ok = await call({ method: 'GET', url: `http://localhost:${srv.port}/ext` }, [read(), { type: 'network:external', resource_pattern: 'localhost' }])
      .result;
    assert.equal(ok.status, 200);
    assert.equal(srv.seen.at(-1)?.url, '/ext');
  });

  it('does not follow redirects: the module gets the 3xx and its location', async () => {
    srv.handler = (r, res) => {
      if (r.url === '/from') {
        res.writeHead(302, { location: 'http://169.254.169.254/' });
        res.end();
      } else res.end('target');
    };
    const n = srv.seen.length;
    const r = await call({ method: 'GET', url: `${srv.url}/from` }, [read()]).result;
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'http://169.254.169.254/');
    assert.equal(srv.seen.length, n + 1);
  });

  it('answers the final response after informational ones (103 Early Hints), and joins repeated headers', async () => {
    srv.handler = (_r, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style', 'x-hint': 'early' });
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('final');
    };
    const r = await call({ method: 'GET', url: `${srv.url}/hints` }, [read()]).result;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'final');
    assert.equal(r.headers['x-hint'], undefined, "the 103's headers are not the answer's");
    assert.equal(r.headers['set-cookie'], 'a=1, b=2');
    assert.equal(r.headers['content-type'], 'text/plain');
  });

  it('returns a body that is not UTF-8 as body_base64, and sends body_base64 as bytes', async () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41]);
    srv.handler = (r, res) => res.end(r.url === '/echo' ? r.body : bytes);
    const r = await call({ method: 'GET', url: `${srv.url}/bin` }, [read()]).result;
    assert.equal(r.body, undefined);
    assert.equal(r.body_base64, bytes.toString('base64'));
    const echo = await call({ method: 'POST', url: `${srv.url}/echo`, body_base64: bytes.toString('base64') }, [write()]).result;
    assert.deepEqual(Buffer.from(echo.body_base64, 'base64'), bytes);
    const text = await call({ method: 'POST', url: `${srv.url}/echo`, body: 'Xin chào' }, [write()]).result;
    assert.equal(text.body, 'Xin chào');
  });

  it('caps the response body while streaming: too_large, and the connection is aborted', async () => {
    let closedEarly = 0;
    srv.handler = (r, res) => {
      res.on('close', () => {
        if (!res.writableFinished) closedEarly++;
      });
      if (r.url === '/announced') {
        res.writeHead(200, { 'content-length': String(5000) });
        res.end(Buffer.alloc(5000, 97));
        return;
      }
      // Chunked, never ending by itself: only an abort by the client stops it.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const t = setInterval(() => res.write(Buffer.alloc(4096, 98)), 5);
      res.on('close', () => clearInterval(t));
    };
    const limits = { maxResponseBytes: 1000 };
    const e = await hostError(call({ method: 'GET', url: `${srv.url}/stream` }, [read()], { limits }).result);
    assert.equal(e.code, 'too_large');
    assert.match(e.message, /1000 bytes/);
    const e2 = await hostError(call({ method: 'GET', url: `${srv.url}/announced` }, [read()], { limits }).result);
    assert.equal(e2.code, 'too_large');
    await waitUntil(() => closedEarly >= 1, 'the streaming response to be cut by the client');
    const small = await call({ method: 'GET', url: `${srv.url}/announced` }, [read()], { limits: { maxResponseBytes: 5000 } }).result;
    assert.equal(small.body.length, 5000);
  });

  it('times out by timeout_ms, by limits.maxCallMs and by the step deadline (the request is aborted)', async () => {
    let closed = 0;
    srv.handler = (_r, res) => res.on('close', () => closed++); // never answers
    const cases: [Record<string, unknown>, () => { limits?: object; deadline?: number }][] = [
      [{ timeout_ms: 200 }, () => ({})],
      [{ timeout_ms: 60_000 }, () => ({ limits: { maxCallMs: 200 } })],
      [{}, () => ({ deadline: Date.now() + 300 })],
    ];
    for (const [extra, opts] of cases) {
      const t0 = Date.now();
      const e = await hostError(call({ method: 'GET', url: `${srv.url}/slow`, ...extra }, [read()], opts()).result);
      assert.equal(e.code, 'timeout', JSON.stringify(extra));
      assert.ok(Date.now() - t0 < 5000, 'well within the bound');
    }
    await waitUntil(() => closed >= 3, `the server to see the three requests aborted (saw ${closed})`);
    const past = await hostError(call({ method: 'GET', url: `${srv.url}/slow` }, [read()], { deadline: Date.now() - 1 }).result);
    assert.equal(past.code, 'timeout');
  });

  it('aborts the request at once when the run is stopped', async () => {
    let closed = false;
    srv.handler = (_r, res) => res.on('close', () => (closed = true));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('run cancelled')), 150);
    const t0 = Date.now();
    const e = await hostError(call({ method: 'GET', url: `${srv.url}/hang` }, [read()], { signal: ac.signal }).result);
    assert.equal(e.code, 'cancelled');
    assert.ok(Date.now() - t0 < 3000);
    await waitUntil(() => closed, 'the server to see the connection closed');
  });

  it('reports refused, reset, DNS and TLS failures as upstream_error', async () => {
    const closed = await closedPort();
    const refused = await hostError(call({ method: 'GET', url: `http://127.0.0.1:${closed}/` }, [read()]).result);
    assert.equal(refused.code, 'upstream_error');
    assert.match(refused.message, /ECONNREFUSED/);

    srv.handler = (_r, res) => res.socket?.destroy();
    const reset = await hostError(call({ method: 'GET', url: `${srv.url}/reset` }, [read()]).result);
    assert.equal(reset.code, 'upstream_error');

    const dns = await hostError(call({ method: 'GET', url: 'http://no-such-host.invalid/' }, [read()]).result);
    assert.equal(dns.code, 'upstream_error');
    assert.match(dns.message, /does not resolve/);

    const dir = mkdtempSync(join(tmpdir(), 'vecron-tls-'));
    try {
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'],
        {
          stdio: 'ignore',
        },
      );
      const tls = createHttpsServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (_req, res) => res.end('secret'));
      await new Promise<void>((r) => tls.listen(0, '127.0.0.1', () => r()));
      const port = (tls.address() as { port: number }).port;
      try {
        const e = await hostError(call({ method: 'GET', url: `https://localhost:${port}/` }, [read()]).result);
        assert.equal(e.code, 'upstream_error');
        assert.match(e.message, /certificate/i);
      } finally {
        tls.closeAllConnections();
        await new Promise<void>((r) => tls.close(() => r()));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses malformed requests with bad_request naming the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ url: srv.url }, /^method:/],
      [{ method: 'GE T', url: srv.url }, /^method:/],
      [{ method: 'TRACE', url: srv.url }, /^method: TRACE/],
      [{ method: 'GET' }, /^url:/],
      [{ method: 'GET', url: 'not a url' }, /^url:/],
      [{ method: 'GET', url: 'ftp://example.com/x' }, /^url: only http/],
      [{ method: 'GET', url: `http://u:p@127.0.0.1:${srv.port}/` }, /^url: credentials/],
      [{ method: 'GET', url: srv.url, headers: [] }, /^headers:/],
      [{ method: 'GET', url: srv.url, headers: { 'x-a': 1 } }, /^headers\.x-a:/],
      [{ method: 'GET', url: srv.url, headers: { 'x-a': 'a\r\nInjected: 1' } }, /^headers\.x-a: must not contain CR/],
      [{ method: 'GET', url: srv.url, headers: { 'bad name': 'x' } }, /^headers\.bad name:/],
      [{ method: 'POST', url: srv.url, body: 1 }, /^body:/],
      [{ method: 'POST', url: srv.url, body: 'a', body_base64: 'YQ==' }, /^body: give either/],
      [{ method: 'POST', url: srv.url, body_base64: '%%%' }, /^body_base64:/],
      [{ method: 'GET', url: srv.url, body: 'x' }, /^body: a GET request/],
      [{ method: 'GET', url: srv.url, timeout_ms: -1 }, /^timeout_ms:/],
      [{ method: 'GET', url: srv.url, timeout_ms: 1.5 }, /^timeout_ms:/],
      [{ method: 'GET', url: srv.url, follow: true }, /^follow: is not an http_request field/],
    ];
    const before = srv.connections;
    for (const [req, re] of cases) {
      const e = await hostError(call(req, [read(), write()]).result);
      assert.equal(e.code, 'bad_request', JSON.stringify(req));
      assert.match(e.message, re);
    }
    assert.equal(srv.connections, before);
  });
});

describe('http_request on a kept-alive connection the server has closed', () => {
  /**
   * A server that answers the first request of each connection and resets the connection when a
   * second request arrives on it: what a client sees when it reuses a socket the server closed while
   * idle (the request was never processed).
   */
  let server: Server;
  let url = '';
  let handled = 0;
  before(async () => {
    server = createServer((req, res) => {
      const sock = req.socket as typeof req.socket & { served?: number };
      sock.served = (sock.served ?? 0) + 1;
      if (sock.served > 1) {
        sock.destroy();
        return;
      }
      handled++;
      req.resume();
      req.on('end', () => res.end('fresh'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/x`;
  });
  after(async () => {
    await closeHttpAgents();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('an idempotent request is sent again on a new connection; a POST is not (upstream_error)', async () => {
    const perms: Permission[] = [
      { type: 'http:read', resource_pattern: null },
      { type: 'http:write', resource_pattern: null },
    ];
    const first = await call({ method: 'GET', url }, perms).result;
    assert.equal(first.body, 'fresh');
    const again = await call({ method: 'GET', url }, perms).result; // reuses the socket, which is reset
    assert.equal(again.status, 200);
    assert.equal(again.body, 'fresh');
    assert.equal(handled, 2, 'the retried GET was handled once, on a new connection');
    const post = call({ method: 'POST', url, body: 'once' }, perms).result;
    await assert.rejects(post, (e: any) => e.code === 'upstream_error');
    assert.equal(handled, 2, 'the POST was not sent twice');
  });
});

async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitUntil(fn: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
