import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { loadConfig, settings, settingsTable } from '../../src/config/index.ts';
import { VecronError } from '../../src/errors.ts';
import { openBlobStore } from '../../src/storage/index.ts';

/** Environment variables the foundation defines (later capabilities may add more). */
const ENV_VARS = [
  'PORT',
  'HOST',
  'DATABASE_URL',
  'VECRON_DATA_DIR',
  'VECRON_BLOB_DIR',
  'VECRON_BOOTSTRAP_TOKEN',
  'VECRON_SECRET_KEY',
  'VECRON_ROLES',
  'VECRON_LOG_LEVEL',
  'VECRON_WORKER_CONCURRENCY',
  'VECRON_LEASE_SECONDS',
  'VECRON_POLL_INTERVAL_MS',
  'VECRON_SCHEDULER_INTERVAL_MS',
  'VECRON_SHUTDOWN_GRACE_SECONDS',
  'VECRON_DB_POOL_SIZE',
  'VECRON_S3_ENDPOINT',
  'VECRON_S3_BUCKET',
  'VECRON_S3_REGION',
  'VECRON_S3_ACCESS_KEY_ID',
  'VECRON_S3_SECRET_ACCESS_KEY',
  'VECRON_S3_FORCE_PATH_STYLE',
  'VECRON_WASM_POOL_SIZE',
  'VECRON_REQUIRE_SIGNED_MODULES',
  'VECRON_MAX_BODY_BYTES',
];

/** The VecronError loadConfig throws for `env`. */
function configError(env: Record<string, string>): VecronError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof VecronError, `a VecronError, got ${err}`);
    assert.equal(err.code, 'invalid_config');
    return err;
  }
  assert.fail(`expected loadConfig(${JSON.stringify(env)}) to throw`);
}

const problemsOf = (err: VecronError) => (err.details as { problems: { path: string; message: string }[] }).problems;

describe('configuration', () => {
  it('has the documented defaults with an empty environment', () => {
    const config = loadConfig({}) as unknown as Record<string, unknown>;
    const expected: Record<string, unknown> = {
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: null,
      dataDir: resolve('./data'),
      blobDir: resolve('./data/blobs'),
      bootstrapToken: null,
      secretKey: null,
      roles: ['api', 'scheduler', 'worker'],
      logLevel: 'info',
      workerConcurrency: 4,
      leaseSeconds: 30,
      pollIntervalMs: 1000,
      schedulerIntervalMs: 200,
      shutdownGraceSeconds: 25,
      dbPoolSize: 10,
      stepDbPoolSize: 5,
      s3: null,
      wasmPoolSize: 2,
      requireSignedModules: false,
      maxBodyBytes: 52428800,
    };
    assert.deepEqual(Object.fromEntries(Object.keys(expected).map((k) => [k, config[k]])), expected);
  });

  it('treats an empty variable as unset', () => {
    const c = loadConfig({ PORT: '', VECRON_ROLES: '', DATABASE_URL: '' });
    assert.equal(c.port, 8080);
    assert.deepEqual(c.roles, ['api', 'scheduler', 'worker']);
    assert.equal(c.databaseUrl, null);
  });

  it('parses every kind of value', () => {
    const c = loadConfig({
      PORT: '9090',
      HOST: '127.0.0.1',
      DATABASE_URL: 'postgresql://u:p@db.internal:5433/vecron',
      VECRON_DATA_DIR: '/srv/vecron',
      VECRON_BOOTSTRAP_TOKEN: 'a-long-enough-bootstrap-token',
      VECRON_ROLES: ' worker , api,worker',
      VECRON_LOG_LEVEL: 'debug',
      VECRON_WORKER_CONCURRENCY: '16',
      VECRON_REQUIRE_SIGNED_MODULES: 'YES',
      VECRON_MAX_BODY_BYTES: '1024',
    });
    assert.equal(c.port, 9090);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.databaseUrl, 'postgresql://u:p@db.internal:5433/vecron');
    assert.equal(c.dataDir, '/srv/vecron');
    assert.equal(c.blobDir, '/srv/vecron/blobs', 'the blob dir follows the data dir');
    assert.equal(c.bootstrapToken, 'a-long-enough-bootstrap-token');
    assert.deepEqual(c.roles, ['worker', 'api'], 'trimmed and without duplicates');
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.workerConcurrency, 16);
    assert.equal(c.requireSignedModules, true);
    assert.equal(c.maxBodyBytes, 1024);
    assert.equal(loadConfig({ VECRON_DATA_DIR: '/srv/vecron', VECRON_BLOB_DIR: '/mnt/blobs' }).blobDir, '/mnt/blobs');
    assert.equal(loadConfig({ PORT: '0' }).port, 0, 'port 0: any free port');
  });

  it('reports every bad value at once, each under its variable name', () => {
    const err = configError({
      PORT: 'abc',
      VECRON_WORKER_CONCURRENCY: '0',
      DATABASE_URL: 'mysql://x',
      VECRON_BOOTSTRAP_TOKEN: 'short',
    });
    const problems = problemsOf(err);
    assert.deepEqual(problems.map((p) => p.path).sort(), ['DATABASE_URL', 'PORT', 'VECRON_BOOTSTRAP_TOKEN', 'VECRON_WORKER_CONCURRENCY']);
    const at = (env: string) => problems.find((p) => p.path === env)!.message;
    assert.match(at('PORT'), /whole number.*'abc'/);
    assert.match(at('VECRON_WORKER_CONCURRENCY'), /between 1 and 4096.*0/);
    assert.match(at('DATABASE_URL'), /postgres:\/\/.*mysql:/);
    assert.match(at('VECRON_BOOTSTRAP_TOKEN'), /at least 16 characters/);
    for (const p of problems) assert.ok(err.message.includes(`${p.path} ${p.message}`), `the message lists ${p.path}`);
    assert.ok(!err.message.includes("'short'"), 'the rejected secret is not echoed');
  });

  it('rejects bad values of the other kinds too, naming each variable', () => {
    const err = configError({
      PORT: '70000',
      VECRON_ROLES: 'api,cook',
      VECRON_LOG_LEVEL: 'loud',
      VECRON_REQUIRE_SIGNED_MODULES: 'maybe',
      VECRON_S3_FORCE_PATH_STYLE: 'sometimes',
      VECRON_SECRET_KEY: 'too-short',
      VECRON_MAX_BODY_BYTES: '10',
      VECRON_LEASE_SECONDS: '1.5',
      DATABASE_URL: 'not a url',
    });
    const byEnv = Object.fromEntries(problemsOf(err).map((p) => [p.path, p.message]));
    assert.deepEqual(Object.keys(byEnv).sort(), [
      'DATABASE_URL',
      'PORT',
      'VECRON_LEASE_SECONDS',
      'VECRON_LOG_LEVEL',
      'VECRON_MAX_BODY_BYTES',
      'VECRON_REQUIRE_SIGNED_MODULES',
      'VECRON_ROLES',
      'VECRON_S3_FORCE_PATH_STYLE',
      'VECRON_SECRET_KEY',
    ]);
    assert.match(byEnv.PORT, /between 0 and 65535/);
    assert.match(byEnv.VECRON_ROLES, /api, scheduler, worker/);
    assert.match(byEnv.VECRON_LOG_LEVEL, /one of .*info.*'loud'/);
    assert.match(byEnv.VECRON_REQUIRE_SIGNED_MODULES, /true or false/);
    assert.match(byEnv.VECRON_SECRET_KEY, /at least 32 characters/);
    assert.match(byEnv.VECRON_MAX_BODY_BYTES, /between 1024/);
    assert.match(byEnv.VECRON_LEASE_SECONDS, /whole number/);
    assert.match(byEnv.DATABASE_URL, /must be a URL/);
  });

  it('VECRON_INTERNAL_NETWORKS: a list of ranges is kept, a bad entry is named', () => {
    assert.equal(loadConfig({ VECRON_INTERNAL_NETWORKS: '10.0.0.0/8, 100.64.0.0/10' }).internalNetworks, '10.0.0.0/8, 100.64.0.0/10');
    assert.equal(loadConfig({}).internalNetworks, null);
    const byEnv = Object.fromEntries(problemsOf(configError({ VECRON_INTERNAL_NETWORKS: '10.0.0.0/8,intranet' })).map((p) => [p.path, p.message]));
    assert.match(byEnv.VECRON_INTERNAL_NETWORKS, /'intranet' is not a CIDR range/);
  });

  it('does not echo the password of a DATABASE_URL it rejects', () => {
    const err = configError({ DATABASE_URL: 'postgres://vecron:hunter2-secret@db.internal:99999/vecron' });
    assert.deepEqual(
      problemsOf(err).map((p) => p.path),
      ['DATABASE_URL'],
    );
    assert.ok(!err.message.includes('hunter2-secret'), `the password leaks into the error (and so into logs): ${err.message}`);
    assert.ok(!JSON.stringify(err.details).includes('hunter2-secret'), 'nor into its details');
  });

  it('has S3 settings only when VECRON_S3_BUCKET is set, and then the blob store is S3', async () => {
    const withoutBucket = loadConfig({ VECRON_S3_ENDPOINT: 'http://127.0.0.1:9000', VECRON_S3_ACCESS_KEY_ID: 'k' });
    assert.equal(withoutBucket.s3, null);
    assert.equal((await openBlobStore(withoutBucket)).kind, 'fs');

    assert.deepEqual(loadConfig({ VECRON_S3_BUCKET: 'vecron-blobs' }).s3, {
      endpoint: null,
      bucket: 'vecron-blobs',
      region: 'us-east-1',
      accessKeyId: null,
      secretAccessKey: null,
      forcePathStyle: true,
    });
    const full = loadConfig({
      VECRON_S3_BUCKET: 'b',
      VECRON_S3_ENDPOINT: 'http://minio:9000',
      VECRON_S3_REGION: 'ap-southeast-1',
      VECRON_S3_ACCESS_KEY_ID: 'AKIA',
      VECRON_S3_SECRET_ACCESS_KEY: 'shh',
      VECRON_S3_FORCE_PATH_STYLE: 'false',
    });
    assert.deepEqual(full.s3, {
      endpoint: 'http://minio:9000',
      bucket: 'b',
      region: 'ap-southeast-1',
      accessKeyId: 'AKIA',
      secretAccessKey: 'shh',
      forcePathStyle: false,
    });
    assert.equal((await openBlobStore(full)).kind, 's3');
  });

  it('settingsTable() lists every environment variable with its default', () => {
    const table = settingsTable();
    const lines = table.split('\n');
    assert.equal(lines[0], '| Variable | Default | Meaning |');
    assert.equal(lines[1], '| --- | --- | --- |');
    const rows = lines.slice(2);
    const listed = rows.map((r) => /^\| `([A-Z0-9_]+)` \|/.exec(r)?.[1]);
    assert.deepEqual(
      [...listed].sort(),
      Object.values(settings)
        .map((s) => s.env)
        .sort(),
      'one row per setting, and every setting has a row',
    );
    for (const env of ENV_VARS) assert.ok(listed.includes(env), `${env} is listed`);
    const row = (env: string) => rows.find((r) => r.startsWith(`| \`${env}\` |`))!;
    assert.match(row('PORT'), /\| `8080` \|/);
    assert.match(row('DATABASE_URL'), /\| \(unset\) \|/);
    assert.match(row('VECRON_ROLES'), /`api,scheduler,worker`/);
    for (const r of rows) assert.match(r, /^\| `[A-Z0-9_]+` \| .+ \| .{10,} \|$/, 'every row has a description');
  });
});
