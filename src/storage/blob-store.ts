import type { Readable } from 'node:stream';

/**
 * Where modules and job files live. Keys are relative slash-separated paths such as
 * `wasm-modules/{id}.wasm` or `jobs/{job_id}/executions/{execution_id}/out.csv`.
 * Implementations: a directory (default) and S3-compatible object storage.
 */
export interface BlobInfo {
  key: string;
  size: number;
  modifiedAt: Date;
}

export interface BlobStore {
  readonly kind: 'fs' | 's3';
  put(key: string, data: Buffer | Uint8Array): Promise<BlobInfo>;
  /** Streams `body` into the store without holding it in memory. */
  putStream(key: string, body: Readable): Promise<BlobInfo>;
  get(key: string): Promise<Buffer>;
  getStream(key: string): Promise<Readable>;
  stat(key: string): Promise<BlobInfo | null>;
  delete(key: string): Promise<void>;
  /** Keys under a prefix, in lexical order. */
  list(prefix: string): Promise<BlobInfo[]>;
}

/** Rejects keys that could escape the store (`..`, absolute paths, backslashes, NUL). */
export function checkKey(key: string): string {
  if (
    typeof key !== 'string' ||
    key.length === 0 ||
    key.length > 1024 ||
    key.startsWith('/') ||
    key.includes('\\') ||
    key.includes('\0') ||
    key.split('/').some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw new Error(`invalid blob key '${key}': use a relative path like 'jobs/<id>/file.csv'`);
  }
  return key;
}

/** A listing prefix: '' (everything) or the start of a key; never climbs out of the store. */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  if (prefix.startsWith('/') || prefix.includes('\\') || prefix.includes('\0') || prefix.split('/').some((part) => part === '.' || part === '..')) {
    throw new Error(`invalid blob key prefix '${prefix}': use a relative path like 'jobs/<id>/'`);
  }
  return prefix;
}
