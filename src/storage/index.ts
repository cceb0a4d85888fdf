import type { Config } from '../config/index.ts';
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore } from './fs-store.ts';

export type { BlobStore, BlobInfo } from './blob-store.ts';

export async function openBlobStore(config: Config): Promise<BlobStore> {
  if (config.s3) {
    const { S3BlobStore } = await import('./s3-store.ts');
    return new S3BlobStore(config.s3);
  }
  return new FsBlobStore(config.blobDir);
}
