/**
 * `http_request`: one HTTP request for a module (docs/abi.md).
 *
 * Request `{"method", "url", "headers"?: {}, "body"?: string | null, "body_base64"?, "timeout_ms"?}`;
 * answer `{"status", "headers", "body"}`, or `"body_base64"` instead of `"body"` when the response
 * body is not valid UTF-8.
 *
 * The checks, in order, before any connection:
 * 1. the request itself (`bad_request` naming the field);
 * 2. `http:read` (GET, HEAD, OPTIONS) or `http:write` (any other method) on the canonical URL;
 * 3. the egress policy (src/egress, the http step's own function): the name is resolved once, the
 *    address checked (link-local, metadata, deny lists -> `egress_denied`, no connection made);
 * 4. `network:external` on the host name when that address is outside the internal ranges
 *    (network-class.ts).
 * The connection then goes to exactly the address that was checked (a pinned lookup: a second DNS
 * answer cannot swap it); TLS still verifies the certificate against the host name.
 *
 * Redirects are not followed: a 3xx comes back to the module with its `location` header, and the
 * module's next call is checked like any other (a redirect cannot lead past a permission).
 * Request headers that belong to the connection (Host, Content-Length, Connection, Transfer-Encoding,
 * ...) are dropped: the client sets them. The response body is read up to limits.maxResponseBytes;
 * beyond it the connection is aborted and the answer is `too_large`. Time: timeout_ms, at most
 * limits.maxCallMs and the step's deadline (`timeout`); the run's signal aborts the request at once.
 * Refused, reset, TLS and DNS failures are `upstream_error`.
 */
import { isUtf8 } from 'node:buffer';
import { Agent, buildConnector } from 'undici';
import { egressDeniedIn, resolveEgress } from '../../egress/index.ts';
import { onShutdown } from '../../executors/shutdown.ts';
import { isInternalAddress } from './network-class.ts';
import { HostCallError, type HostCallContext, type HostFunction } from './types.ts';
import { withTraceHeaders } from '../../tracing/propagate.ts';

const FIELDS = new Set(['method', 'url', 'headers', 'body', 'body_base64', 'timeout_ms']);
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const REFUSED_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers of the connection itself, which the client sets (RFC 9110 7.6.1, and the fetch standard's forbidden list). */
const DROPPED_HEADERS = new Set([
  'host',
  'content-length',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
]);
const MAX_URL = 8192;
const MAX_HEADERS = 100;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const bad = (message: string): never => {
  throw new HostCallError('bad_request', message);
};

interface Parsed {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: Buffer | null;
  timeoutMs: number | null;
}

function parseRequest(r: Record<string, unknown>): Parsed {
  for (const k of Object.keys(r)) if (!FIELDS.has(k)) bad(`${k}: is not an http_request field (method, url, headers, body, body_base64, timeout_ms)`);
  if (typeof r.method !== 'string' || !TOKEN.test(r.method)) bad('method: must be an HTTP method such as GET or POST');
  const method = (r.method as string).toUpperCase();
  if (REFUSED_METHODS.has(method)) bad(`method: ${method} is not allowed`);
  if (typeof r.url !== 'string' || r.url.length === 0) bad('url: must be an absolute http:// or https:// URL');
  if ((r.url as string).length > MAX_URL) bad(`url: at most ${MAX_URL} characters`);
  let url: URL;
  try {
    url = new URL(r.url as string);
  } catch {
    return bad('url: is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad(`url: only http and https URLs (got ${url.protocol})`);
  if (url.username || url.password) bad('url: credentials in the URL are not allowed (send an Authorization header)');
  url.hash = '';

  const headers: Record<string, string> = {};
  if (r.headers !== undefined && r.headers !== null) {
    if (typeof r.headers !== 'object' || Array.isArray(r.headers)) bad('headers: must be an object of header names to string values');
    const entries = Object.entries(r.headers as object);
    if (entries.length > MAX_HEADERS) bad(`headers: at most ${MAX_HEADERS} headers`);
    for (const [name, value] of entries) {
      if (!TOKEN.test(name)) bad(`headers.${name.slice(0, 100)}: is not a valid header name`);
      if (typeof value !== 'string') bad(`headers.${name}: must be a string`);
      if (/[\r\n\0]/.test(value)) bad(`headers.${name}: must not contain CR, LF or NUL`);
      const lower = name.toLowerCase();
      if (DROPPED_HEADERS.has(lower)) continue; // the client sets these for the connection
      headers[lower] = headers[lower] !== undefined ? `${headers[lower]}, ${value}` : value;
    }
  }

  let body: Buffer | null = null;
  const hasText = r.body !== undefined && r.body !== null;
  const hasB64 = r.body_base64 !== undefined && r.body_base64 !== null;
  if (hasText && hasB64) bad('body: give either body or body_base64, not both');
  if (hasText) {
    if (typeof r.body !== 'string') bad('body: must be a string (UTF-8 text) or null; use body_base64 for bytes');
    body = Buffer.from(r.body as string, 'utf8');
  } else if (hasB64) {
    if (typeof r.body_base64 !== 'string' || r.body_base64.length % 4 !== 0 || !BASE64.test(r.body_base64)) bad('body_base64: must be standard base64 text');
    body = Buffer.from(r.body_base64 as string, 'base64');
  }
  if (body && (method === 'GET' || method === 'HEAD')) bad(`body: a ${method} request carries no body`);

  let timeoutMs: number | null = null;
  if (r.timeout_ms !== undefined && r.timeout_ms !== null) {
    if (typeof r.timeout_ms !== 'number' || !Number.isInteger(r.timeout_ms) || r.timeout_ms < 1) bad('timeout_ms: must be a positive integer (milliseconds)');
    timeoutMs = r.timeout_ms as number;
  }
  return { method, url, headers, body, timeoutMs };
}

/* ------------------------------------------------------------------------------------------------
 * Connections pinned to the checked address
 * ---------------------------------------------------------------------------------------------- */

const MAX_AGENTS = 64;
const agents = new Map<string, Agent>();
let unregister: (() => void) | null = null;

/** An Agent for one origin whose connections go to `address` only (kept for keep-alive, LRU). */
function pinnedAgent(origin: string, address: string, family: 4 | 6): Agent {
  const key = `${origin}\n${address}`;
  let a = agents.get(key);
  if (a) {
    agents.delete(key);
    agents.set(key, a);
    return a;
  }
  if (agents.size >= MAX_AGENTS) {
    const [oldKey, old] = agents.entries().next().value as [string, Agent];
    agents.delete(oldKey);
    void old.close().catch(() => {});
  }
  const lookup = (_host: string, opts: { all?: boolean } | undefined, cb: (err: Error | null, address: any, family?: number) => void) =>
    opts?.all ? cb(null, [{ address, family }]) : cb(null, address, family);
  a = new Agent({ connect: buildConnector({ lookup, autoSelectFamily: false } as any), keepAliveTimeout: 4_000, connections: 16 });
  agents.set(key, a);
  unregister ??= onShutdown(closeHttpAgents);
  return a;
}

/** Closes the pinned agents (tests, shutdown). */
export async function closeHttpAgents(): Promise<void> {
  const all = [...agents.values()];
  agents.clear();
  unregister?.();
  unregister = null;
  await Promise.all(all.map((a) => a.close().catch(() => {})));
}

/* ------------------------------------------------------------------------------------------------
 * The call
 * ---------------------------------------------------------------------------------------------- */

export const httpRequest: HostFunction = {
  name: 'http_request',
  async call(request, ctx) {
    const req = parseRequest(request);
    const permission = READ_METHODS.has(req.method) ? 'http:read' : 'http:write';
    ctx.target(req.url.href); // shown in the record also when the call is refused
    const canonical = ctx.require(permission, req.url.href);
    ctx.target(canonical);
    const url = new URL(canonical);
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;

    const limits = ctx.session.limits;
    const left = Number.isFinite(ctx.session.deadline) ? ctx.session.deadline - Date.now() : Infinity;
    if (left <= 0) throw new HostCallError('timeout', "the step's deadline has passed: the request was not sent");
    const timeoutMs = Math.max(1, Math.min(req.timeoutMs ?? Infinity, limits.maxCallMs, left));

    // One controller for everything the call does: the run's signal and the call's own timeout.
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(new Error('timeout'));
    }, timeoutMs);
    const onAbort = () => ac.abort(ctx.signal.reason);
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const target = await raceAbort(resolveEgress(url.hostname, port), ac.signal);
      if (!isInternalAddress(target.address)) ctx.require('network:external', target.host);
      const agent = pinnedAgent(url.origin, target.address, target.family);
      const send = () =>
        agent.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: req.method as any,
          headers: withTraceHeaders(req.headers), // + traceparent while tracing is on (src/tracing)
          body: req.body ?? undefined,
          signal: ac.signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
      let res: Awaited<ReturnType<typeof send>>;
      try {
        res = await send();
      } catch (err) {
        // A kept-alive connection the server closed while it was idle fails at once with a reset: an
        // idempotent request is sent once more, on a new connection (the request never reached the server).
        if (ac.signal.aborted || !IDEMPOTENT_METHODS.has(req.method) || !isStaleConnection(err)) throw err;
        res = await send();
      }
      const body = await readCapped(res.body, res.headers['content-length'], limits.maxResponseBytes);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
      return isUtf8(body)
        ? { status: res.statusCode, headers, body: body.toString('utf8') }
        : { status: res.statusCode, headers, body_base64: body.toString('base64') };
    } catch (err) {
      throw toHostError(err, ctx, timedOut, timeoutMs, url);
    } finally {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
    }
  },
};

/** Rejects as soon as `signal` aborts (DNS lookups cannot be cancelled; their answer is then ignored). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

/** The body, at most `max` bytes; a larger one (announced or streamed) aborts the connection. */
async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(err?: Error): void; on(ev: 'error', fn: () => void): void },
  contentLength: unknown,
  max: number,
): Promise<Buffer> {
  const tooLarge = () => {
    body.on('error', () => {}); // the abort below is ours
    body.destroy();
    return new HostCallError('too_large', `the response body is larger than the limit of ${max} bytes per answer`);
  };
  const announced = Number(Array.isArray(contentLength) ? contentLength[0] : contentLength);
  if (Number.isFinite(announced) && announced > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let n = 0;
  let over = false;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > max) {
      over = true;
      break;
    }
    chunks.push(chunk);
  }
  if (over) throw tooLarge();
  return Buffer.concat(chunks, n);
}

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
function isStaleConnection(err: unknown): boolean {
  for (let e: any = err, i = 0; e && i < 6; e = e.cause, i++) if (typeof e.code === 'string' && STALE_CODES.has(e.code)) return true;
  return false;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function toHostError(err: unknown, ctx: HostCallContext, timedOut: boolean, timeoutMs: number, url: URL): HostCallError {
  if (err instanceof HostCallError) return err;
  const denied = egressDeniedIn(err);
  if (denied) return new HostCallError('egress_denied', denied.message);
  if (ctx.signal.aborted) {
    const reason = ctx.signal.reason;
    if (reason instanceof HostCallError) return reason;
    return new HostCallError('cancelled', 'the run was stopped during the call; the request was aborted');
  }
  const codes: string[] = [];
  for (let e: any = err, i = 0; e && i < 6; e = e.cause, i++) if (typeof e.code === 'string') codes.push(e.code);
  if (timedOut || codes.some((c) => TIMEOUT_CODES.has(c)))
    return new HostCallError('timeout', `no complete answer from ${url.host} within ${timeoutMs} ms; the request was aborted`);
  const code = codes[0];
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new HostCallError('upstream_error', `the host name ${url.hostname} does not resolve (${code})`);
  const msg = String((err as Error)?.message ?? err).slice(0, 300);
  return new HostCallError('upstream_error', `the request to ${url.host} failed: ${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`);
}
