/**
 * The http step: one HTTP request with undici's `request` through the egress policy
 * (src/egress/request.ts: fetch's default headers and content decoding, at less CPU than fetch).
 *
 * Output: `{ status, headers, body, duration_ms, url, request }` where `headers` has lower-case names
 * (several `set-cookie` headers are joined with '\n'), and `body` is parsed JSON for JSON content
 * types, text for textual ones (or anything that decodes as UTF-8), `{ base64 }` for binary ones.
 * `url` and `request` (`{ method, url, headers }`) record what was sent, built from the step's
 * config as it was before secrets were substituted (`ctx.shownConfig`), so a secret is `***` there
 * in whatever encoding it was sent; credential-named headers and query values are `***` whatever
 * their value, in the response headers too.
 *
 * Every connection (redirect hops and OAuth2 token requests included) passes the egress policy
 * (src/egress); a refused destination is the step error egress_denied, before any connection.
 *
 * Failures are StepErrors with stable codes: http_status, http_connection, timeout, aborted,
 * http_response_too_large, http_invalid_json, http_invalid_request, oauth2_failed.
 */
import type { StepExecute, StepRunContext } from '../executor.ts';
import type { HttpStepConfig } from './definition.ts';
import { StepError } from '../../engine/step-error.ts';
import { VERSION } from '../../version.ts';
import { causeCode, getAccessToken, invalidateAccessToken } from './oauth2.ts';
import { type EgressResponse, discardBody, egressDeniedIn, egressRequest } from '../../egress/index.ts';
import { redactHeaders, redactUrl, withStoredForm } from '../../engine/credentials.ts';
import { outboundTraceHeaders } from '../../tracing/propagate.ts';

/** Largest response body read (10 MiB); beyond it the step fails with http_response_too_large. */
export const HTTP_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
/** How much of an unexpected response's body is kept in the error details. */
const ERROR_BODY_BYTES = 2048;
/** Our own deadline timer fires this much after ctx.deadline, so the engine's abort reason wins. */
const DEADLINE_GRACE_MS = 100;
const MAX_TIMER_MS = 2 ** 31 - 1 - DEADLINE_GRACE_MS;

/** Most redirects followed (the fetch standard's limit). */
const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Longest URL quoted in messages and logs. */
const MAX_URL_IN_MESSAGES = 300;

export const execute: StepExecute<HttpStepConfig> = async (config, ctx) => {
  const started = performance.now();
  const method = config.method ?? 'GET';
  const { url, userinfo } = targetUrl(config);
  const redactedUrl = redactUrl(url);
  const safeUrl = shorten(redactedUrl, MAX_URL_IN_MESSAGES);

  const { timeoutMs, graceMs } = effectiveTimeout(config, ctx);
  // AbortSignal.timeout/any cost ~0.1 ms each on Node 20; a plain timer + one controller is cheaper,
  // and none at all when the step's own signal ends at the deadline anyway (the engine's timer):
  // a controller, a timer and three listeners per request were ~8 % of the step's CPU.
  const ownTimer = timeoutMs !== null && !(graceMs > 0 && ctx.deadlineEnforced);
  const timeoutSignal = ownTimer ? deadlineSignal(ctx.signal, timeoutMs + graceMs) : null;
  const signal = timeoutSignal ?? ctx.signal;

  const headers = buildHeaders(config, userinfo);
  const body = buildBody(config, method, headers);
  // The request as built, for the record when the shown config is this config (see shownRequest);
  // copied only when an OAuth2 token will be added to `headers`.
  const built = { url: redactedUrl, headers: config.auth?.type === 'oauth2_client_credentials' ? new Headers(headers) : headers };
  const redirect = config.follow_redirects === false ? 'manual' : 'follow';
  const auth = config.auth;
  const send = (h: Headers) => fetchFollowing(url, { method, headers: h, body, signal }, redirect === 'follow', safeUrl);

  let status: number | undefined;
  try {
    let cachedToken: string | null = null;
    if (auth?.type === 'oauth2_client_credentials') {
      const t = await getAccessToken(auth, signal);
      headers.set('authorization', `Bearer ${t.token}`);
      if (t.cached) cachedToken = t.token;
    }

    let { res, finalUrl } = await send(headers);
    if (res.status === 401 && cachedToken !== null && auth?.type === 'oauth2_client_credentials') {
      // The cached token may have been revoked or may have expired early: one fresh token, one retry.
      discardBody(res.body);
      invalidateAccessToken(auth, cachedToken);
      ctx.logger.debug({ method, url: safeUrl }, 'http step: cached OAuth2 token refused (401), fetching a new one');
      const t = await getAccessToken(auth, signal);
      headers.set('authorization', `Bearer ${t.token}`);
      ({ res, finalUrl } = await send(headers));
    }
    status = res.status;

    const accepted = config.expected_status
      ? config.expected_status.includes(res.status)
      : (res.status >= 200 && res.status < 300) || (redirect === 'manual' && res.status >= 300 && res.status < 400);
    if (!accepted) {
      const head = await readBody(res, ERROR_BODY_BYTES, true);
      const expected = config.expected_status ? config.expected_status.join(', ') : redirect === 'manual' ? '2xx or 3xx' : '2xx';
      const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
      throw new StepError('http_status', `${method} ${safeUrl} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''} (expected ${expected})`, {
        retryable,
        details: { status: res.status, body: new TextDecoder().decode(head) },
      });
    }

    const contentType = res.headers.get('content-type');
    const bytes = method === 'HEAD' ? new Uint8Array(0) : await readBody(res, HTTP_MAX_RESPONSE_BYTES, false, safeUrl);
    const request = shownRequest(ctx, config, method, built);
    const output = {
      status: res.status,
      headers: headerRecord(res.headers),
      body: decodeBody(bytes, contentType, safeUrl),
      duration_ms: Math.round(performance.now() - started),
      url: finalUrl === url ? request.url : redactUrl(finalUrl),
      request,
    };
    ctx.logger.debug({ method, url: safeUrl, status: res.status, duration_ms: output.duration_ms }, 'http step request done');
    // Later steps see the response headers as received (a login's set-cookie); the execution
    // record gets credential-named headers as ***.
    return withStoredForm(output, { ...output, headers: redactHeaders(output.headers) });
  } catch (err) {
    const e = toStepError(err, { ctx, timeoutSignal, timeoutMs, safeUrl });
    ctx.logger.debug({ method, url: safeUrl, status, duration_ms: Math.round(performance.now() - started), code: e.code }, 'http step request failed');
    throw e;
  } finally {
    release(timeoutSignal);
  }
};

/* ------------------------------------------------------------------------------------------------
 * Request
 * ---------------------------------------------------------------------------------------------- */

/** The URL with `query` appended to its own query string (kept as written); userinfo taken out,
 * since fetch refuses URLs with credentials: it becomes Basic auth unless `auth` is set. */
function targetUrl(config: HttpStepConfig): { url: string; userinfo: { user: string; pass: string } | null } {
  let u: URL;
  try {
    u = new URL(config.url);
  } catch {
    throw new StepError('http_invalid_request', `the url is not an absolute URL: '${config.url.slice(0, 200)}'`, { retryable: false });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new StepError('http_invalid_request', `the url must use http or https (got '${u.protocol.slice(0, -1)}')`, { retryable: false });
  }
  let userinfo: { user: string; pass: string } | null = null;
  if (u.username || u.password) {
    userinfo = { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
    u.username = '';
    u.password = '';
  }
  const entries = Object.entries(config.query ?? {});
  if (entries.length > 0) {
    const extra = new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString();
    u.search = u.search && u.search !== '?' ? `${u.search}&${extra}` : `?${extra}`;
  }
  return { url: u.toString(), userinfo };
}

/**
 * What was sent, from the config before secret substitution (`ctx.shownConfig`; the config itself
 * when the step runs outside the engine): URL without userinfo, headers with credentials as `***`.
 */
function shownRequest(
  ctx: StepRunContext,
  config: HttpStepConfig,
  method: string,
  built: { url: string; headers: Headers },
): { method: string; url: string; headers: Record<string, string> } {
  const shown = (ctx.shownConfig?.() as HttpStepConfig | undefined) ?? config;
  // The shown config is the config itself (no secret variables): what was built from it is what it would build.
  if (shown === config) return { method, url: built.url, headers: redactHeaders(Object.fromEntries(built.headers)) };
  let url = '(invalid URL)';
  let headers: Record<string, string> = {};
  try {
    const t = targetUrl(shown);
    url = redactUrl(t.url);
    const h = buildHeaders(shown, t.userinfo);
    if (shown.body !== undefined && !h.has('content-type')) h.set('content-type', 'application/json');
    else if (shown.body_text !== undefined && !h.has('content-type')) h.set('content-type', 'text/plain; charset=utf-8');
    headers = redactHeaders(Object.fromEntries(h));
  } catch {
    // The shown config does not form a URL or headers (the whole URL is a secret, shown as ***):
    // record the mask, never anything derived from the real config.
    url = '***';
  }
  return { method, url, headers };
}

/**
 * The request with redirects followed here, hop by hop, so every hop's destination passes the egress
 * policy (the connector checks each connection; a literal address in a Location header too).
 * Methods change as the fetch standard says (303, and 301/302 after POST, become GET without a
 * body); credentials are dropped when a redirect leaves the origin.
 */
async function fetchFollowing(
  url: string,
  init: { method: string; headers: Headers; body: string | undefined; signal: AbortSignal },
  follow: boolean,
  safeUrl: string,
): Promise<{ res: EgressResponse; finalUrl: string }> {
  let current = url;
  let { method, body } = init;
  const headers = new Headers(init.headers);
  for (let hop = 0; ; hop++) {
    const res = await egressRequest(current, { method, headers, body, signal: init.signal });
    const location = res.headers.get('location');
    if (!follow || !REDIRECT_STATUSES.has(res.status) || location === null) return { res, finalUrl: current };
    discardBody(res.body);
    if (hop >= MAX_REDIRECTS) {
      throw new StepError('http_too_many_redirects', `${safeUrl} redirected more than ${MAX_REDIRECTS} times`, { retryable: false });
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new StepError('http_invalid_redirect', `${safeUrl} redirected to an invalid URL`, { retryable: false });
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new StepError('http_invalid_redirect', `${safeUrl} redirected to a non-http(s) URL (${next.protocol.slice(0, -1)})`, { retryable: false });
    }
    if (res.status === 303 ? method !== 'HEAD' : (res.status === 301 || res.status === 302) && method === 'POST') {
      method = 'GET';
      body = undefined;
      for (const h of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(h);
    }
    if (next.origin !== new URL(current).origin) {
      for (const h of ['authorization', 'cookie', 'proxy-authorization']) headers.delete(h);
    }
    current = next.toString();
  }
}

function buildHeaders(config: HttpStepConfig, userinfo: { user: string; pass: string } | null): Headers {
  let headers: Headers;
  try {
    headers = new Headers(config.headers ?? {});
  } catch (err) {
    throw new StepError('http_invalid_request', `invalid request header: ${(err as Error).message}`, { retryable: false });
  }
  if (!headers.has('user-agent')) headers.set('user-agent', `vecron/${VERSION}`);
  // While tracing is on, the request continues the step's trace (unless the config sets traceparent).
  for (const [k, v] of Object.entries(outboundTraceHeaders() ?? {})) if (!headers.has(k)) headers.set(k, v);
  const auth = config.auth;
  const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');
  if (auth?.type === 'basic') headers.set('authorization', basic(auth.username, auth.password));
  else if (auth?.type === 'bearer') headers.set('authorization', `Bearer ${auth.token}`);
  else if (!auth && userinfo && !headers.has('authorization')) headers.set('authorization', basic(userinfo.user, userinfo.pass));
  return headers;
}

function buildBody(config: HttpStepConfig, method: string, headers: Headers): string | undefined {
  let body: string | undefined;
  if (config.body !== undefined) {
    body = JSON.stringify(config.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  } else if (config.body_text !== undefined) {
    body = config.body_text;
    if (!headers.has('content-type')) headers.set('content-type', 'text/plain; charset=utf-8');
  }
  if (body !== undefined && (method === 'GET' || method === 'HEAD')) {
    throw new StepError('http_invalid_request', `a ${method} request cannot have a body; use POST, PUT or PATCH`, { retryable: false });
  }
  return body;
}

/**
 * timeout_seconds if set, else until the step deadline; never past the deadline. Null = none.
 * When the deadline is the limit, the engine aborts ctx.signal at that moment with the precise reason
 * (step_timeout, job_timeout); our own timer then only fires a little later, as a backstop.
 */
/**
 * A signal that aborts with a TimeoutError DOMException after `ms` (like AbortSignal.timeout) or when
 * `parent` aborts (with the parent's reason). The timer does not keep the process alive.
 */
function deadlineSignal(parent: AbortSignal, ms: number): AbortSignal {
  const ac = new AbortController();
  if (parent.aborted) {
    ac.abort(parent.reason);
    return ac.signal;
  }
  const onParent = () => (clearTimeout(timer), ac.abort(parent.reason));
  const timer = setTimeout(() => {
    parent.removeEventListener('abort', onParent);
    ac.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, ms);
  timer.unref?.();
  parent.addEventListener('abort', onParent, { once: true });
  const dispose = () => (clearTimeout(timer), parent.removeEventListener('abort', onParent));
  ac.signal.addEventListener('abort', dispose, { once: true });
  disposers.set(ac.signal, dispose);
  return ac.signal;
}

const disposers = new WeakMap<AbortSignal, () => void>();

/** Stops the timer of a deadlineSignal once the request is over (a job timeout can be an hour). */
function release(signal: AbortSignal | null): void {
  if (!signal) return;
  disposers.get(signal)?.();
  disposers.delete(signal);
}

function effectiveTimeout(config: HttpStepConfig, ctx: StepRunContext): { timeoutMs: number | null; graceMs: number } {
  let untilDeadline = Number.isFinite(ctx.deadline) && ctx.deadline > 0 ? Math.max(0, ctx.deadline - Date.now()) : null;
  if (untilDeadline !== null && untilDeadline > MAX_TIMER_MS) untilDeadline = null; // Node timers overflow past ~24.8 days
  const own = config.timeout_seconds !== undefined ? config.timeout_seconds * 1000 : null;
  if (own !== null && (untilDeadline === null || own < untilDeadline)) return { timeoutMs: own, graceMs: 0 };
  return { timeoutMs: untilDeadline, graceMs: DEADLINE_GRACE_MS };
}

/* ------------------------------------------------------------------------------------------------
 * Response
 * ---------------------------------------------------------------------------------------------- */

/**
 * Reads the body as a stream, at most `limit` bytes. With `truncate`, returns the first `limit`
 * bytes and drops the rest; otherwise a larger body is an http_response_too_large error.
 */
async function readBody(res: EgressResponse, limit: number, truncate: boolean, safeUrl = ''): Promise<Uint8Array> {
  const body = res.body;
  if (!body) return new Uint8Array(0);
  const tooLarge = () =>
    new StepError('http_response_too_large', `the response of ${safeUrl} is larger than ${limit} bytes (the limit of the http step)`, {
      retryable: false,
      details: { limit },
    });
  const declared = Number(res.headers.get('content-length'));
  if (!truncate && Number.isFinite(declared) && declared > limit) {
    discardBody(body);
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const value of body as AsyncIterable<Buffer>) {
    if (size + value.byteLength > limit) {
      discardBody(body);
      if (!truncate) throw tooLarge();
      chunks.push(value.subarray(0, limit - size));
      size = limit;
      break;
    }
    chunks.push(value);
    size += value.byteLength;
    if (truncate && size === limit) {
      discardBody(body);
      break;
    }
  }
  return Buffer.concat(chunks, size);
}

function headerRecord(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of h) if (name !== 'set-cookie') out[name] = value;
  const cookies = h.getSetCookie();
  if (cookies.length > 0) out['set-cookie'] = cookies.join('\n');
  return out;
}

const TEXT_TYPES =
  /^(text\/|application\/(xml|javascript|ecmascript|x-javascript|x-www-form-urlencoded|yaml|x-yaml|toml|graphql|sql|csv|x-ndjson|problem\+xml)$)|\+xml$/;
const BINARY_TYPES =
  /^(image|audio|video|font)\/|^application\/(octet-stream|pdf|zip|gzip|x-gzip|x-tar|x-7z-compressed|x-bzip2|x-xz|zstd|wasm|msword|vnd\.|x-protobuf|protobuf|grpc|cbor|msgpack|x-msgpack|java-archive|x-sqlite3)/;

function decodeBody(bytes: Uint8Array, contentType: string | null, safeUrl: string): unknown {
  const [mimePart, ...params] = (contentType ?? '').split(';');
  const mime = mimePart.trim().toLowerCase();
  const charset = params.map((p) => /^\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(p)?.[1]).find((c): c is string => c !== undefined);

  if (mime === 'application/json' || mime.endsWith('+json')) {
    const text = decodeText(bytes, charset);
    if (text.trim() === '') return null;
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new StepError('http_invalid_json', `the response of ${safeUrl} says ${mime} but is not valid JSON: ${(err as Error).message}`, {
        retryable: false,
        details: { body: text.slice(0, ERROR_BODY_BYTES) },
      });
    }
  }
  if (TEXT_TYPES.test(mime)) return decodeText(bytes, charset);
  if (BINARY_TYPES.test(mime)) return { base64: Buffer.from(bytes).toString('base64') };
  // Unknown or missing content type: text if it is valid UTF-8, base64 otherwise.
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { base64: Buffer.from(bytes).toString('base64') };
  }
}

function decodeText(bytes: Uint8Array, charset: string | undefined): string {
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes); // unknown charset label
  }
}

/* ------------------------------------------------------------------------------------------------
 * Errors and logging
 * ---------------------------------------------------------------------------------------------- */

function toStepError(err: unknown, o: { ctx: StepRunContext; timeoutSignal: AbortSignal | null; timeoutMs: number | null; safeUrl: string }): StepError {
  if (o.ctx.signal.aborted) {
    const reason = o.ctx.signal.reason;
    if (reason instanceof StepError) return reason;
    const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : '';
    return new StepError('aborted', `HTTP request to ${o.safeUrl} was aborted${why}`, { retryable: true, cause: err });
  }
  if (o.timeoutSignal?.aborted) {
    const s = +((o.timeoutMs ?? 0) / 1000).toFixed(3);
    return new StepError('timeout', `HTTP request to ${o.safeUrl} timed out after ${s}s`, { retryable: true, cause: err });
  }
  if (err instanceof StepError) return err;
  const denied = egressDeniedIn(err);
  if (denied) return denied;
  const code = causeCode(err);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    // undici's own inactivity limits (300 s by default) fired before ours.
    return new StepError('timeout', `HTTP request to ${o.safeUrl} timed out (${code})`, { retryable: true, cause: err });
  }
  let host = o.safeUrl;
  try {
    host = new URL(o.safeUrl).host;
  } catch {
    /* keep the URL */
  }
  return new StepError('http_connection', `HTTP request to ${host} failed: ${code}`, {
    retryable: true,
    cause: err,
    details: { host, cause: code },
  });
}

function shorten(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

export { redactUrl };
