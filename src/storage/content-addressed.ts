import { createHash } from 'node:crypto';
import type { BlobStore } from './blob-store.ts';

export function sha256Hex(data: Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Stores immutable content under `cas/<sha256[0:2]>/<sha256>`: the same bytes are kept once, and
 * a reader can verify what it got against the name.
 */
export async function putContentAddressed(store: BlobStore, data: Buffer | Uint8Array): Promise<{ key: string; hash: string }> {
  const hash = sha256Hex(data);
  const key = `cas/${hash.slice(0, 2)}/${hash}`;
  if (!(await store.stat(key))) await store.put(key, data);
  return { key, hash };
}
