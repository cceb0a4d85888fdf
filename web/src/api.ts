/** The API client: the token from the session, JSON in and out, errors as ApiError. */

export interface Problem {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly problems: Problem[] = [],
  ) {
    super(message);
  }
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  limit: number;
}

const TOKEN_KEY = 'vecron.token';

export const tokenStore = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (t: string) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Called on any 401: the session ends and sign-in shows the reason. Set by the session provider. */
let onUnauthorized: (reason: string) => void = () => {};
export function setUnauthorizedHandler(fn: (reason: string) => void): void {
  onUnauthorized = fn;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  token?: string;
  signal?: AbortSignal;
  /** Extra request headers (e.g. Idempotency-Key). */
  headers?: Record<string, string>;
}

export async function api<T = any>(path: string, opts: RequestOptions = {}): Promise<T> {
  const token = opts.token ?? tokenStore.get();
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (token) headers.authorization = `Bearer ${token}`;
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(`/api/v1${path}`, { method: opts.method ?? 'GET', headers, body, signal: opts.signal });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const e = json?.error;
    const err = new ApiError(res.status, e?.code ?? 'http_error', e?.message ?? `HTTP ${res.status}`, e?.details?.problems ?? []);
    if (res.status === 401 && opts.token === undefined) onUnauthorized(err.message);
    throw err;
  }
  return json as T;
}

/** Multipart upload with progress (fetch has no upload progress; XMLHttpRequest does). */
export function upload<T = any>(path: string, form: FormData, onProgress: (fraction: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1${path}`);
    const token = tokenStore.get();
    if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'the upload failed: no answer from the server'));
    xhr.onload = () => {
      let json: any = null;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(json as T);
      } else {
        const e = json?.error;
        const err = new ApiError(xhr.status, e?.code ?? 'http_error', e?.message ?? `HTTP ${xhr.status}`, e?.details?.problems ?? []);
        if (xhr.status === 401) onUnauthorized(err.message);
        reject(err);
      }
    };
    xhr.send(form);
  });
}

/** `?a=1&b=x` from the defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/**
 * Triggers a job now. The request carries an Idempotency-Key (docs/api.md, "Idempotent triggers"),
 * so a request the browser or a proxy sends twice queues one execution.
 */
export function triggerJob(jobId: string): Promise<{ execution_id: string }> {
  return api<{ execution_id: string }>(`/jobs/${jobId}/trigger`, { method: 'POST', body: {}, headers: { 'idempotency-key': `dashboard-${crypto.randomUUID()}` } });
}
