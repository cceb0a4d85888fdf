/**
 * A real S3-compatible server (MinIO) for the tests of the S3 blob store.
 *
 * - When TEST_S3_ENDPOINT is set (CI: `.ci/run` starts MinIO through scripts/s3-server.sh and exports
 *   TEST_S3_ENDPOINT / TEST_S3_ACCESS_KEY / TEST_S3_SECRET_KEY / TEST_S3_REGION), that server is used.
 * - Otherwise, when the MinIO binary that scripts/s3-server.sh builds is present (`scripts/s3-server.sh
 *   install`; or TEST_S3_MINIO_BIN names one), a test file starts its own MinIO on a free loopback
 *   port with a throw-away data directory and stops it when the file's tests are done.
 * - Otherwise the S3 variants are reported as skipped with the reason (CI fails on any skip).
 *
 * Every suite gets a fresh bucket of its own (`vecron-test-<random>`), emptied and removed after, so
 * suites running in parallel on one server never see each other's keys.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { Config } from '../../src/config/index.ts';
import { freePort } from './ports.ts';

export type S3Settings = NonNullable<Config['s3']>;

const root = new URL('../../', import.meta.url).pathname;
const script = join(root, 'scripts', 's3-server.sh');

/** Where an S3 server for the tests comes from, decided without starting anything. */
export type S3Availability = { kind: 'env'; endpoint: string } | { kind: 'spawn'; binary: string } | { kind: 'none'; reason: string };

let availability: S3Availability | undefined;

/** The MinIO binary scripts/s3-server.sh installs (`bin` prints its path when it is there). */
function minioBinary(): string | null {
  const fromEnv = process.env.TEST_S3_MINIO_BIN;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : null;
  try {
    const out = execFileSync('bash', [script, 'bin'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return out && existsSync(out) ? out : null;
  } catch {
    return null;
  }
}

export function s3Availability(): S3Availability {
  if (availability) return availability;
  const endpoint = process.env.TEST_S3_ENDPOINT;
  if (endpoint) return (availability = { kind: 'env', endpoint });
  const binary = minioBinary();
  if (binary) return (availability = { kind: 'spawn', binary });
  return (availability = {
    kind: 'none',
    reason:
      'TEST_S3_ENDPOINT is not set and no MinIO binary is installed ' +
      '(build it once with `scripts/s3-server.sh install`, ~3 min, or run `eval "$(scripts/s3-server.sh start)"`)',
  });
}

export function s3Client(s: S3Settings): S3Client {
  return new S3Client({
    region: s.region,
    endpoint: s.endpoint ?? undefined,
    forcePathStyle: s.forcePathStyle,
    credentials: { accessKeyId: s.accessKeyId!, secretAccessKey: s.secretAccessKey! },
  });
}

async function waitReady(endpoint: string, child: ChildProcess, log: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`MinIO exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log()}`);
    }
    try {
      const r = await fetch(`${endpoint}/minio/health/ready`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`MinIO at ${endpoint} not ready after ${timeoutMs} ms (${last}):\n${log()}`);
}

export interface S3Server {
  /** Endpoint, region and keys; `bucket` is empty: use `createTestBucket`. */
  settings: Omit<S3Settings, 'bucket'>;
  /** True when this process started the server (and `stop` ends it). */
  spawned: boolean;
  stop(): Promise<void>;
}

/** The server of TEST_S3_ENDPOINT, or a MinIO of our own on a free loopback port. */
export async function startS3Server(): Promise<S3Server> {
  const a = s3Availability();
  if (a.kind === 'none') throw new Error(a.reason);
  if (a.kind === 'env') {
    const { TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY } = process.env;
    if (!TEST_S3_ACCESS_KEY || !TEST_S3_SECRET_KEY) {
      throw new Error('TEST_S3_ENDPOINT is set but TEST_S3_ACCESS_KEY / TEST_S3_SECRET_KEY are not');
    }
    return {
      settings: {
        endpoint: a.endpoint,
        region: process.env.TEST_S3_REGION || 'us-east-1',
        accessKeyId: TEST_S3_ACCESS_KEY,
        secretAccessKey: TEST_S3_SECRET_KEY,
        forcePathStyle: true,
      },
      spawned: false,
      async stop() {},
    };
  }

  // tmpfs when there is one: MinIO syncs every write (~20 ms a PUT on disk here, ~5 ms on /dev/shm).
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'vecron-minio-'));
  const accessKeyId = 'vecrontest';
  const secretAccessKey = randomBytes(12).toString('hex');
  let output = '';
  let child: ChildProcess | undefined;
  let endpoint = '';
  // A free port can be taken by someone else between our probe and MinIO's bind: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const consolePort = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    output = '';
    child = spawn(
      a.binary,
      ['server', '--quiet', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, join(dir, `data${attempt}`)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          MINIO_ROOT_USER: accessKeyId,
          MINIO_ROOT_PASSWORD: secretAccessKey,
          MINIO_BROWSER: 'off',
          MINIO_UPDATE: 'off',
          MINIO_CI_CD: '1',
        },
      },
    );
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    try {
      await waitReady(endpoint, child, () => output);
      break;
    } catch (err) {
      child.kill('SIGKILL');
      if (attempt === 2) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const proc = child!;
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    settings: { endpoint, region: 'us-east-1', accessKeyId, secretAccessKey, forcePathStyle: true },
    spawned: true,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh empty bucket; `drop` removes every object, unfinished multipart upload and the bucket. */
export async function createTestBucket(server: S3Server): Promise<{ settings: S3Settings; client: S3Client; drop(): Promise<void> }> {
  const bucket = `vecron-test-${randomBytes(6).toString('hex')}`;
  const settings: S3Settings = { ...server.settings, bucket };
  const client = s3Client(settings);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    settings,
    client,
    async drop() {
      try {
        const ups = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        for (const u of ups.Uploads ?? []) {
          await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
        }
        let token: string | undefined;
        do {
          const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
          const keys = (r.Contents ?? []).map((o) => ({ Key: o.Key! }));
          if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
          token = r.IsTruncated ? r.NextContinuationToken : undefined;
        } while (token);
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
    },
  };
}
