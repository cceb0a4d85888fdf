import type { Readable } from 'node:stream';
import type { Logger } from '../logger.ts';
import type { BlobInfo, BlobStore } from './blob-store.ts';

/**
 * Errors of a blob store that may go away by themselves: the directory is read-only or locked for
 * a moment (a remount, a backup, an NFS hiccup), the disk is full until something is cleaned up,
 * too many open files, the S3 endpoint answers 5xx, throttles or drops the connection. A missing
 * blob, a bad key or refused credentials fail the same way again, and are not retried.
 */
const TRANSIENT_ERRNOS = new Set([
  'EACCES',
  'EPERM',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EMFILE',
  'ENFILE',
  'EIO',
  'ENOSPC',
  'EDQUOT',
  'ESTALE',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

const TRANSIENT = Symbol.for('vecron.blob.transient');

/** Marks a store's own error (e.g. a VecronError wrapping an S3 5xx) as worth retrying. */
export function markTransient<E>(err: E): E {
  if (err && typeof err === 'object') (err as Record<symbol, boolean>)[TRANSIENT] = true;
  return err;
}

export function isTransientBlobError(err: unknown): boolean {
  for (let e: any = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (e[TRANSIENT]) return true;
    if (typeof e.code === 'string' && TRANSIENT_ERRNOS.has(e.code)) return true;
  }
  return false;
}

export interface BlobRetryOptions {
  /** The step's signal: an abort (timeout, shutdown, lease lost) ends the retries at once. */
  signal: AbortSignal;
  /** Epoch ms: no retry would end after this (the step's deadline). */
  deadline: number;
  logger?: Logger;
  /** Longest time spent retrying one operation (default 60 s), whatever the deadline. */
  maxRetryMs?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
}

/** A blob store whose operations retry transient errors; `putStreamFrom` re-opens the body for each try. */
export interface RetryingBlobStore extends BlobStore {
  /** Like putStream, with a body that can be produced again: a failed try is retried with a fresh one. */
  putStreamFrom(key: string, open: () => Readable | Promise<Readable>): Promise<BlobInfo>;
}

/**
 * Wraps a store for one step: each operation that fails with a transient error is retried with
 * exponential backoff (with jitter) until it succeeds, the step's deadline comes, its signal is
 * aborted, or `maxRetryMs` is spent; then the last error fails the attempt as before. A stream
 * can only be written again if it can be produced again, hence putStreamFrom (putStream itself
 * tries once: its body is consumed by the first try).
 */
export function withBlobRetry(store: BlobStore, opts: BlobRetryOptions): RetryingBlobStore {
  const minDelay = opts.minDelayMs ?? 200;
  const maxDelay = opts.maxDelayMs ?? 5_000;
  const maxRetry = opts.maxRetryMs ?? 60_000;

  async function retrying<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let tryNo = 1; ; tryNo++) {
      try {
        const r = await fn();
        if (tryNo > 1) opts.logger?.info({ op, key, tries: tryNo }, 'blob store answered again');
        return r;
      } catch (err) {
        if (!isTransientBlobError(err) || opts.signal.aborted) throw err;
        const exp = Math.min(maxDelay, minDelay * 2 ** Math.min(tryNo - 1, 16));
        const wait = exp / 2 + Math.random() * (exp / 2);
        const now = Date.now();
        if (now + wait > opts.deadline || now + wait - started > maxRetry) throw err;
        opts.logger?.warn({ op, key, try: tryNo, retryInMs: Math.round(wait), err: (err as Error)?.message }, 'blob store error; retrying');
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            clearTimeout(t);
            reject(opts.signal.reason ?? err);
          };
          const t = setTimeout(() => {
            opts.signal.removeEventListener('abort', onAbort);
            resolve();
          }, wait);
          opts.signal.addEventListener('abort', onAbort, { once: true });
        });
      }
    }
  }

  return {
    kind: store.kind,
    put: (key, data) => retrying('write', key, () => store.put(key, data)),
    putStream: (key, body) => store.putStream(key, body),
    putStreamFrom: (key, open) =>
      retrying('write', key, async () => {
        const body = await open();
        try {
          return await store.putStream(key, body);
        } catch (err) {
          body.destroy();
          throw err;
        }
      }),
    get: (key) => retrying('read', key, () => store.get(key)),
    getStream: (key) => retrying('read', key, () => store.getStream(key)),
    stat: (key) => retrying('stat', key, () => store.stat(key)),
    delete: (key) => retrying('delete', key, () => store.delete(key)),
    list: (prefix) => retrying('list', prefix, () => store.list(prefix)),
  };
}
