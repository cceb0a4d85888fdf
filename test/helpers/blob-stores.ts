/**
 * Blob-store suites run once per implementation: the filesystem store, and the S3 store against a
 * real S3-compatible server (MinIO, see test/helpers/s3.ts). Like `forEachDatabase`, a variant that
 * cannot run here is reported as skipped with the reason; CI fails on any skip.
 */
import { describe, test } from 'node:test';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { S3BlobStore } from '../../src/storage/s3-store.ts';
import { createTestBucket, s3Availability, startS3Server, type S3Server, type S3Settings } from './s3.ts';

export type BlobKind = 'fs' | 's3';
export const BLOB_KINDS: BlobKind[] = ['fs', 's3'];

export interface BlobHarness {
  kind: BlobKind;
  store: BlobStore;
  /** Debris of unfinished writes: `.tmp` files for fs, multipart uploads not completed nor aborted for S3. */
  leftovers(): Promise<string[]>;
  /** S3 only: the settings and a raw client of the suite's own bucket. */
  s3?: { settings: S3Settings; client: S3Client };
  close(): Promise<void>;
}

/** Every file under `dir`, recursively, as relative paths. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as any[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

async function openFs(): Promise<BlobHarness> {
  const parent = mkdtempSync(join(tmpdir(), 'vecron-blobs-'));
  const root = join(parent, 'store');
  return {
    kind: 'fs',
    store: new FsBlobStore(root),
    leftovers: async () => filesUnder(root).filter((f) => f.endsWith('.tmp')),
    close: async () => rmSync(parent, { recursive: true, force: true }),
  };
}

// One server per test file (process), shared by its suites; each suite gets a bucket of its own.
let server: Promise<S3Server> | undefined;
let users = 0;

async function openS3(): Promise<BlobHarness> {
  server ??= startS3Server();
  users++;
  const srv = await server;
  const bucket = await createTestBucket(srv);
  const store = new S3BlobStore(bucket.settings);
  return {
    kind: 's3',
    store,
    s3: { settings: bucket.settings, client: bucket.client },
    async leftovers() {
      const r = await bucket.client.send(new ListMultipartUploadsCommand({ Bucket: bucket.settings.bucket }));
      return (r.Uploads ?? []).map((u) => `multipart upload of ${u.Key} (${u.UploadId})`);
    },
    async close() {
      store.destroy();
      await bucket.drop();
      if (--users === 0 && server) {
        const s = server;
        server = undefined;
        await (await s).stop();
      }
    },
  };
}

export function openBlobHarness(kind: BlobKind): Promise<BlobHarness> {
  return kind === 'fs' ? openFs() : openS3();
}

/** Why the S3 variant cannot run here, or null when it can. */
export function s3SkipReason(): string | null {
  const a = s3Availability();
  return a.kind === 'none' ? a.reason : null;
}

/**
 * Registers `fn`'s tests once per blob-store kind, each inside `describe('<name> (<kind>)')`.
 * Without an S3 server (TEST_S3_ENDPOINT unset and no MinIO binary) the S3 variant is one skipped test.
 */
export function forEachBlobStore(name: string, fn: (kind: BlobKind) => void): void {
  for (const kind of BLOB_KINDS) {
    const skip = kind === 's3' ? s3SkipReason() : null;
    if (skip) {
      test(`${name} (s3): skipped, ${skip}`, { skip }, () => {});
      continue;
    }
    describe(`${name} (${kind})`, () => fn(kind));
  }
}
