import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config/index.ts';
import { markTransient } from './retry.ts';
import { VecronError } from '../errors.ts';
import { checkKey, checkPrefix, type BlobInfo, type BlobStore } from './blob-store.ts';

type S3Config = NonNullable<Config['s3']>;

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const ACCESS_ERRORS = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'Forbidden']);

const status = (err: unknown) => (err as SdkError)?.$metadata?.httpStatusCode;

/** An answer from the S3 service, or a failure to reach it (not an error of the caller's own body stream). */
function isS3Failure(err: unknown): boolean {
  const e = err as SdkError;
  return !!e && (e.$metadata !== undefined || NETWORK_CODES.has(e.code ?? '') || e.name === 'TimeoutError');
}

/** Blob store on S3-compatible object storage (AWS S3, MinIO). */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly listPageSize: number | undefined;
  /** Set once HeadBucket has answered: a 404 from HeadObject then means "no such key". */
  private bucketSeen = false;

  /** `listPageSize`: keys per ListObjectsV2 page (S3's own default and maximum is 1,000). */
  constructor(cfg: S3Config, opts: { listPageSize?: number } = {}) {
    this.bucket = cfg.bucket;
    this.listPageSize = opts.listPageSize;
    this.client = new S3Client({
      region: cfg.region,
      endpoint: cfg.endpoint ?? undefined,
      forcePathStyle: cfg.forcePathStyle,
      credentials: cfg.accessKeyId && cfg.secretAccessKey ? { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } : undefined,
    });
  }

  /**
   * Turns what S3 said into a VecronError: a missing bucket, refused credentials or an unreachable
   * endpoint are `unavailable` (HTTP 503), naming the bucket. Other errors (e.g. those of the
   * caller's own body stream) pass through unchanged.
   */
  private fail(err: unknown, op: string, key: string): unknown {
    if (err instanceof VecronError || !isS3Failure(err)) return err;
    const e = err as SdkError;
    const name = e.name ?? e.Code ?? e.code ?? 'Error';
    const where = `S3 bucket '${this.bucket}'`;
    if (name === 'NoSuchBucket') {
      return new VecronError('unavailable', `${where} does not exist: could not ${op} '${key}'`);
    }
    if (ACCESS_ERRORS.has(name) || status(err) === 403) {
      return new VecronError(
        'unavailable',
        `${where} refused access (${name}): could not ${op} '${key}'; check VECRON_S3_ACCESS_KEY_ID and VECRON_S3_SECRET_ACCESS_KEY`,
      );
    }
    // Anything else (5xx, throttling, a dropped connection) may pass: steps retry it (storage/retry.ts).
    return markTransient(new VecronError('unavailable', `${where}: could not ${op} '${key}': ${name}: ${e.message ?? ''}`.trim()));
  }

  /** After a 404 without a body (HEAD): is it the key or the whole bucket that is missing? */
  private async checkBucket(op: string, key: string): Promise<void> {
    if (this.bucketSeen) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketSeen = true;
    } catch (err) {
      if (status(err) === 404) {
        throw new VecronError('unavailable', `S3 bucket '${this.bucket}' does not exist: could not ${op} '${key}'`);
      }
      throw this.fail(err, op, key);
    }
  }

  async put(key: string, data: Buffer | Uint8Array): Promise<BlobInfo> {
    checkKey(key);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: data }));
    } catch (err) {
      throw this.fail(err, 'write', key);
    }
    return { key, size: data.byteLength, modifiedAt: new Date() };
  }

  async putStream(key: string, body: Readable): Promise<BlobInfo> {
    checkKey(key);
    // Multipart upload in 8 MB parts: memory stays bounded whatever the size. On failure Upload
    // aborts the multipart upload, so no parts are left behind and the old object stays.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body },
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
    });
    try {
      await upload.done();
    } catch (err) {
      throw this.fail(err, 'write', key);
    }
    const info = await this.stat(key);
    if (!info) throw new VecronError('unavailable', `upload of '${key}' to S3 bucket '${this.bucket}' did not persist`);
    return info;
  }

  async get(key: string): Promise<Buffer> {
    const stream = await this.getStream(key);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async getStream(key: string): Promise<Readable> {
    checkKey(key);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.Body as Readable;
    } catch (err) {
      // NoSuchBucket is a 404 too: only NoSuchKey means the blob is missing.
      if ((err as SdkError).name === 'NoSuchKey') throw new VecronError('not_found', `blob '${key}' does not exist`);
      throw this.fail(err, 'read', key);
    }
  }

  async stat(key: string): Promise<BlobInfo | null> {
    checkKey(key);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      this.bucketSeen = true;
      return { key, size: r.ContentLength ?? 0, modifiedAt: r.LastModified ?? new Date() };
    } catch (err) {
      if (status(err) === 404) {
        await this.checkBucket('stat', key);
        return null;
      }
      throw this.fail(err, 'stat', key);
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw this.fail(err, 'delete', key);
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    checkPrefix(prefix);
    const out: BlobInfo[] = [];
    let token: string | undefined;
    try {
      do {
        const r = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix || undefined,
            ContinuationToken: token,
            MaxKeys: this.listPageSize,
          }),
        );
        for (const o of r.Contents ?? []) {
          out.push({ key: o.Key!, size: o.Size ?? 0, modifiedAt: o.LastModified ?? new Date() });
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
        if (r.IsTruncated && !token) {
          throw new VecronError('unavailable', `S3 bucket '${this.bucket}' sent a truncated listing of '${prefix}' without a continuation token`);
        }
      } while (token);
    } catch (err) {
      throw this.fail(err, 'list', `${prefix}*`);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /** Closes the client's connections. */
  destroy(): void {
    this.client.destroy();
  }
}
