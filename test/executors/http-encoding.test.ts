/**
 * What the http step's client (src/egress/request.ts, undici's `request`) does that fetch used to
 * do for it: default `accept` and `accept-encoding`, responses decoded by their content codings,
 * bodiless responses. Against a real server on loopback.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { execute } from '../../src/executors/http/executor.ts';
import type { HttpStepConfig } from '../../src/executors/http/definition.ts';
import { stepError, stepRunContext } from '../helpers/steps.ts';

const doc = { customers: [{ id: 'c1', name: 'Nguyễn Văn A', total: 1200.5 }], note: 'x'.repeat(3000) };
const plain = Buffer.from(JSON.stringify(doc));

/** The body encoded with the codings in the order listed (the order of a Content-Encoding header). */
function encode(codings: string[], bytes: Buffer): Buffer {
  let out = bytes;
  for (const c of codings) {
    if (c === 'gzip' || c === 'x-gzip') out = zlib.gzipSync(out);
    else if (c === 'deflate') out = zlib.deflateSync(out);
    else if (c === 'deflate-raw') out = zlib.deflateRawSync(out);
    else if (c === 'br') out = zlib.brotliCompressSync(out);
  }
  return out;
}

describe('http step: content codings and default headers', () => {
  let server: Server;
  let base = '';
  let seen: IncomingMessage['headers'] = {};
  before(async () => {
    server = createServer((req, res) => {
      seen = req.headers;
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/empty') {
        res.writeHead(204).end();
        return;
      }
      const codings = (u.searchParams.get('enc') ?? '').split(',').filter(Boolean);
      // 'deflate-raw' is sent as 'deflate': raw DEFLATE, as some servers do
      const header = codings.map((c) => (c === 'deflate-raw' ? 'deflate' : c)).join(', ');
      res.writeHead(200, { 'content-type': 'application/json', ...(header ? { 'content-encoding': header } : {}) });
      res.end(req.method === 'HEAD' ? undefined : encode(codings, plain));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const get = (path: string, extra: Partial<HttpStepConfig> = {}) =>
    execute({ url: `${base}${path}`, method: 'GET', ...extra } as HttpStepConfig, stepRunContext());

  for (const enc of ['gzip', 'x-gzip', 'deflate', 'deflate-raw', 'br', 'gzip,br', 'deflate,gzip,br']) {
    it(`a body with Content-Encoding ${enc} is decoded`, async () => {
      const out = (await get(`/?enc=${enc}`)) as { status: number; body: unknown; headers: Record<string, string> };
      assert.equal(out.status, 200);
      assert.deepEqual(out.body, doc);
      assert.ok(out.headers['content-encoding'], 'the header is kept as received');
    });
  }

  it('more than 5 codings are refused (as fetch does), as an http_connection error', async () => {
    const e = await stepError(get('/?enc=gzip,gzip,gzip,gzip,gzip,gzip'));
    assert.equal(e.code, 'http_connection');
    assert.match(e.message, /too many content-encodings/);
  });

  it('sends accept */* and accept-encoding gzip, deflate unless the config sets them', async () => {
    await get('/');
    assert.equal(seen.accept, '*/*');
    assert.equal(seen['accept-encoding'], 'gzip, deflate');
    await get('/', { headers: { accept: 'application/json', 'accept-encoding': 'identity' } });
    assert.equal(seen.accept, 'application/json');
    assert.equal(seen['accept-encoding'], 'identity');
    await get('/', { headers: { range: 'bytes=0-10' } });
    assert.equal(seen['accept-encoding'], 'identity', 'a range request asks for the bytes as stored');
  });

  it('204 and HEAD have an empty body; the status text of an error is the standard phrase', async () => {
    const empty = (await get('/empty')) as { status: number; body: unknown };
    assert.equal(empty.status, 204);
    assert.equal(empty.body, '');
    const head = (await get('/?enc=gzip', { method: 'HEAD' })) as { status: number; body: unknown };
    assert.equal(head.status, 200);
    assert.equal(head.body, null, 'no body under a JSON content type reads as null');
    const e = await stepError(get('/empty', { expected_status: [200] }));
    assert.equal(e.code, 'http_status');
    assert.match(e.message, /answered 204 No Content/);
  });
});
