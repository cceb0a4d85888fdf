/**
 * OAuth 2.0 client credentials grant (RFC 6749 §4.4) for the http step, with an in-process token
 * cache shared by every step of this process.
 *
 * The cache key is (token_url, client_id, scope, audience) plus a hash of the client secret, so a job
 * configured with a wrong secret never borrows the token another job obtained with the right one.
 * Concurrent steps asking for the same token share one token request.
 */
import { egressFetch } from '../../egress/index.ts';
import { createHash } from 'node:crypto';
import { StepError } from '../../engine/step-error.ts';
import type { HttpAuth } from './definition.ts';

export type ClientCredentials = Extract<HttpAuth, { type: 'oauth2_client_credentials' }>;

export interface AccessToken {
  token: string;
  /** Epoch ms after which the cached token is no longer used. */
  expiresAt: number;
  /** True if the token came from the cache (not from a token request made for this call). */
  cached: boolean;
}

interface Entry {
  token: string;
  expiresAt: number;
}

/** Lifetime assumed when the token endpoint does not send `expires_in` (it is only RECOMMENDED). */
const DEFAULT_LIFETIME_S = 300;
/** Token endpoint answers larger than this are refused (a token response is a few KB at most). */
const MAX_TOKEN_RESPONSE_BYTES = 256 * 1024;

const cache = new Map<string, Entry>();
const inflight = new Map<string, Promise<Entry>>();

function cacheKey(c: ClientCredentials): string {
  const secret = createHash('sha256').update(c.client_secret).digest('base64url');
  return JSON.stringify([c.token_url, c.client_id, c.scope ?? '', c.audience ?? '', secret]);
}

/** Seconds before `expires_in` at which a cached token is considered stale. */
function skewSeconds(expiresIn: number): number {
  return Math.min(60, expiresIn * 0.1);
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by ':' and base64-encoded. */
function basicCredentials(id: string, secret: string): string {
  const enc = (s: string) => new URLSearchParams([['', s]]).toString().slice(1);
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`, 'utf8').toString('base64');
}

/**
 * A valid access token for `auth`: from the cache when one is there and not about to expire,
 * otherwise from the token endpoint. Throws StepError('oauth2_failed') when the endpoint refuses or
 * cannot be reached; when `signal` aborts, rethrows the abort error unchanged so the caller can tell a
 * timeout or cancellation from a failure.
 */
export async function getAccessToken(auth: ClientCredentials, signal: AbortSignal): Promise<AccessToken> {
  const key = cacheKey(auth);
  const hit = cache.get(key);
  if (hit && hit.expiresAt > Date.now()) return { ...hit, cached: true };
  if (hit) cache.delete(key);

  let pending = inflight.get(key);
  if (!pending) {
    // The shared request is not bound to one caller's signal: a caller that gives up must not fail
    // the others. It is bounded by its own timeout instead.
    pending = requestToken(auth, AbortSignal.timeout(60_000)).finally(() => inflight.delete(key));
    inflight.set(key, pending);
  }
  const entry = await raceAbort(pending, signal);
  cache.set(key, entry);
  return { ...entry, cached: false };
}

/** Drops `token` from the cache (after the API refused it), unless another call already replaced it. */
export function invalidateAccessToken(auth: ClientCredentials, token: string): void {
  const key = cacheKey(auth);
  if (cache.get(key)?.token === token) cache.delete(key);
}

/** Empties the token cache (tests). */
export function clearTokenCache(): void {
  cache.clear();
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

async function requestToken(auth: ClientCredentials, signal: AbortSignal): Promise<Entry> {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (auth.scope) form.set('scope', auth.scope);
  if (auth.audience) form.set('audience', auth.audience);
  const where = `OAuth2 token request to ${safeTokenUrl(auth.token_url)}`;

  let res: Response;
  let text: string;
  try {
    res = await egressFetch(auth.token_url, {
      method: 'POST',
      headers: {
        authorization: basicCredentials(auth.client_id, auth.client_secret),
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form.toString(),
      signal,
    });
    text = await readLimited(res, MAX_TOKEN_RESPONSE_BYTES);
  } catch (err) {
    if (err instanceof StepError) throw err;
    if (signal.aborted) {
      throw new StepError('oauth2_failed', `${where} timed out`, { retryable: true, cause: err });
    }
    const code = causeCode(err);
    throw new StepError('oauth2_failed', `${where} failed: ${code}`, { retryable: true, cause: err, details: { cause: code } });
  }

  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* reported below */
  }

  if (!res.ok) {
    const oauthError =
      json && typeof json.error === 'string' ? ` (${json.error}${typeof json.error_description === 'string' ? `: ${json.error_description}` : ''})` : '';
    const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
    throw new StepError('oauth2_failed', `${where} answered ${status}${oauthError}`, {
      retryable,
      details: { status: res.status, error: json?.error, error_description: json?.error_description },
    });
  }

  if (!json || typeof json.access_token !== 'string' || json.access_token === '') {
    throw new StepError('oauth2_failed', `${where} answered ${res.status} without an access_token in a JSON body`, {
      retryable: false,
      details: { status: res.status },
    });
  }
  const expiresIn = Number(json.expires_in);
  const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_LIFETIME_S;
  return { token: json.access_token, expiresAt: Date.now() + (lifetime - skewSeconds(lifetime)) * 1000 };
}

async function readLimited(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new StepError('oauth2_failed', `the OAuth2 token response is larger than ${limit} bytes`, { retryable: false });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The token URL without userinfo and query (for messages). */
function safeTokenUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET... from a fetch failure; the message otherwise. */
export function causeCode(err: unknown): string {
  let e: any = err;
  for (let i = 0; i < 4 && e; i++) {
    if (typeof e.code === 'string' && e.code !== 'ERR_INVALID_STATE') return e.code;
    if (Array.isArray(e.errors) && e.errors[0]?.code) return String(e.errors[0].code);
    if (!e.cause) break;
    e = e.cause;
  }
  return e?.message ?? String(err);
}
