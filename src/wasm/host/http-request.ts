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
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { checkBeforeResolution, egressDeniedIn, resolveEgress } from '../../egress/index.ts';
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
    const url = canonical === req.url.href ? req.url : new URL(canonical);
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;

    const limits = ctx.session.limits;
    const left = Number.isFinite(ctx.session.deadline) ? ctx.session.deadline - Date.now() : Infinity;
    if (left <= 0) throw new HostCallError('timeout', "the step's deadline has passed: the request was not sent");
    const timeoutMs = Math.max(1, Math.min(req.timeoutMs ?? Infinity, limits.maxCallMs, left));

    // One stop for everything the call does: the run's signal and the call's own timeout.
    const stop = new CallStop(ctx.signal, timeoutMs);
    try {
      // A literal address is checked here and now; a name is resolved through the policy.
      const target = checkBeforeResolution(url.hostname, port) ?? (await stop.race(resolveEgress(url.hostname, port)));
      if (!isInternalAddress(target.address)) ctx.require('network:external', target.host);
      const agent = pinnedAgent(url.origin, target.address, target.family);
      const opts: Dispatcher.DispatchOptions = {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method as Dispatcher.HttpMethod,
        headers: withTraceHeaders(req.headers), // + traceparent while tracing is on (src/tracing)
        body: req.body ?? undefined,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      };
      let res: Received;
      try {
        res = await exchange(agent, opts, limits.maxResponseBytes, stop);
      } catch (err) {
        // A kept-alive connection the server closed while it was idle fails at once with a reset: an
        // idempotent request is sent once more, on a new connection (the request never reached the server).
        if (stop.stopped || !IDEMPOTENT_METHODS.has(req.method) || !isStaleConnection(err)) throw err;
        res = await exchange(agent, opts, limits.maxResponseBytes, stop);
      }
      const body = res.chunks.length === 1 ? res.chunks[0] : Buffer.concat(res.chunks, res.bytes);
      return isUtf8(body)
        ? { status: res.status, headers: res.headers, body: body.toString('utf8') }
        : { status: res.status, headers: res.headers, body_base64: body.toString('base64') };
    } catch (err) {
      throw toHostError(err, ctx, stop.timedOut, timeoutMs, url);
    } finally {
      stop.done();
    }
  },
};

/**
 * What stops one call: the run's signal (the reason is the run's) or the call's own timeout. One
 * object per call instead of an AbortController, a timer closure and listeners per step of the call.
 */
class CallStop {
  timedOut = false;
  stopped = false;
  reason: unknown = undefined;
  /** Aborts what is in flight (the request's connection, or the wait for a DNS answer). */
  private abortCurrent: ((err: unknown) => void) | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = (): void => this.stop(this.signal.reason);
  constructor(
    private readonly signal: AbortSignal,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.stop(new Error('timeout'));
    }, timeoutMs);
    if (signal.aborted) this.stop(signal.reason);
    else signal.addEventListener('abort', this.onAbort, { once: true });
  }
  private stop(reason: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.reason = reason;
    this.abortCurrent?.(reason);
  }
  /** Registers the abort of the step in flight; called at once when the call is already stopped. */
  onStop(abort: ((err: unknown) => void) | null): void {
    this.abortCurrent = abort;
    if (abort && this.stopped) abort(this.reason);
  }
  /** `p`, or the stop's reason as soon as the call stops (DNS lookups cannot be cancelled; their answer is then ignored). */
  race<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.onStop(reject);
      p.then(
        (v) => (this.onStop(null), resolve(v)),
        (e) => (this.onStop(null), reject(e)),
      );
    });
  }
  done(): void {
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
    this.abortCurrent = null;
  }
}

interface Received {
  status: number;
  headers: Record<string, string>;
  chunks: Buffer[];
  bytes: number;
}

/**
 * One request through undici's dispatch API: the answer's status, headers and body (at most `max`
 * bytes: a larger one, announced or streamed, aborts the connection with `too_large`). No stream
 * and no async iteration per call: the handler's callbacks gather the answer directly.
 */
function exchange(agent: Agent, opts: Dispatcher.DispatchOptions, max: number, stop: CallStop): Promise<Received> {
  return new Promise<Received>((resolve, reject) => {
    const got: Received = { status: 0, headers: {}, chunks: [], bytes: 0 };
    let abort: ((err?: Error) => void) | null = null;
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      stop.onStop(null);
      reject(err);
    };
    const tooLarge = () => new HostCallError('too_large', `the response body is larger than the limit of ${max} bytes per answer`);
    stop.onStop((reason) => {
      if (abort) abort(reason instanceof Error ? reason : new Error(String(reason)));
      fail(reason);
    });
    if (settled) return;
    agent.dispatch(opts, {
      onConnect(a: (err?: Error) => void) {
        abort = a;
        if (settled) a(new Error('stopped'));
      },
      onHeaders(statusCode: number, raw: Buffer[] | string[] | null) {
        if (statusCode < 200) return true; // informational (103 Early Hints): the answer is the final response, as undici's request API gives it
        got.status = statusCode;
        // As undici's own parsing gives them (names lower case, values UTF-8), repeated ones joined.
        const h = got.headers;
        for (let i = 0; raw && i + 1 < raw.length; i += 2) {
          const k = raw[i].toString().toLowerCase();
          const v = raw[i + 1].toString('utf8');
          h[k] = Object.hasOwn(h, k) && h[k] ? `${h[k]}, ${v}` : v; // own only: a header named `constructor` is only a header
        }
        if (Object.hasOwn(h, 'content-length') && Object.hasOwn(h, 'content-disposition')) {
          h['content-disposition'] = Buffer.from(h['content-disposition']).toString('latin1'); // undici's quirk, kept
        }
        const announced = Number(h['content-length']);
        if (Number.isFinite(announced) && announced > max) {
          const e = tooLarge();
          abort?.(e);
          fail(e);
          return false;
        }
        return true;
      },
      onData(chunk: Buffer) {
        got.bytes += chunk.length;
        if (got.bytes > max) {
          const e = tooLarge();
          abort?.(e);
          fail(e);
          return false;
        }
        got.chunks.push(chunk);
        return true;
      },
      onComplete() {
        if (settled) return;
        settled = true;
        stop.onStop(null);
        resolve(got);
      },
      onError(err: Error) {
        fail(err);
      },
    } as Dispatcher.DispatchHandlers);
  });
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
