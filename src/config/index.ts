/**
 * Configuration comes from environment variables only, so the same build runs on a laptop, in a
 * container or as one of many cluster members. Every setting is declared once below: its parser,
 * default and description. `docs/configuration.md` is generated from this table (`vecron config`).
 */
import { resolve } from 'node:path';
import { VecronError, type Problem } from '../errors.ts';
import { parseEgressRules, type EgressRules } from '../egress/rules.ts';
import { DEFAULT_INTERNAL_NETWORKS, checkInternalNetworks } from '../wasm/host/network-class.ts';

export type Role = 'api' | 'scheduler' | 'worker';

/** The OTEL_TRACES_SAMPLER values of the OpenTelemetry specification that vecron supports. */
export const OTEL_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type OtelSampler = (typeof OTEL_SAMPLERS)[number];

export interface Config {
  port: number;
  host: string;
  databaseUrl: string | null;
  dataDir: string;
  blobDir: string;
  bootstrapToken: string | null;
  secretKey: string | null;
  roles: Role[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Tracing (src/tracing): on when the OTLP endpoint is set. */
  otelEndpoint: string | null;
  otelHeaders: Record<string, string>;
  otelServiceName: string;
  otelSampler: OtelSampler;
  otelSamplerArg: number;
  workerConcurrency: number;
  workerClaimAheadMs: number;
  leaseSeconds: number;
  pollIntervalMs: number;
  schedulerIntervalMs: number;
  shutdownGraceSeconds: number;
  misfireThresholdSeconds: number;
  schedulerLookaheadMs: number;
  eventRetentionSeconds: number;
  dbUpkeepSeconds: number;
  /** Retention (src/retention): days an execution is kept after it ended (0: forever); jobs may override. */
  retentionExecutionsDays: number;
  /** Days audit entries are kept (0: forever); at least the executions' period. */
  retentionAuditDays: number;
  retentionIntervalSeconds: number;
  retentionBatchSize: number;
  dbPoolSize: number;
  stepDbPoolSize: number;
  s3: null | {
    endpoint: string | null;
    bucket: string;
    region: string;
    accessKeyId: string | null;
    secretAccessKey: string | null;
    forcePathStyle: boolean;
  };
  wasmPoolSize: number;
  requireSignedModules: boolean;
  wasmMaxModuleBytes: number;
  wasmMaxMemoryMb: number;
  wasmMaxTableElements: number;
  wasmCacheDir: string;
  /** Bounds of a WASM module's privileged host calls (src/wasm/host/types.ts HostLimits, docs/abi.md). */
  wasmHostMaxRequestBytes: number;
  wasmHostMaxResponseBytes: number;
  wasmHostMaxRows: number;
  wasmHostMaxCallMs: number;
  /** Bounds of a shadow test and a server-side replay (src/api/routes/wasm-replay.ts, docs/replay.md). */
  wasmShadowMaxRuns: number;
  wasmShadowTimeoutSeconds: number;
  wasmShadowConcurrency: number;
  /** The complete record of WASM runs, for replay (issue 20, src/wasm/replay). */
  wasmRecord: 'all' | 'failed' | 'off';
  wasmRecordMaxBytes: number;
  wasmRecordInlineBytes: number;
  wasmRecordRetentionDays: number;
  maxBodyBytes: number;
  maxJsonBytes: number;
  jsonMaxDepth: number;
  jsonMaxKeys: number;
  egressAllow: EgressRules;
  egressDeny: EgressRules;
  /** Ranges counted as internal for the `network:external` permission (null: the default list). */
  internalNetworks: string | null;
  webhookMaxBytes: number;
  webhookToleranceSeconds: number;
  webhookMaxFailuresPerMinute: number;
  idempotencyWindowSeconds: number;
  bulkMaxExecutions: number;
}

type Parser<T> = (raw: string) => T;

interface Setting<T> {
  env: string;
  description: string;
  default: string | null;
  parse: Parser<T>;
}

const int =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new Error(`must be a whole number, got '${raw}'`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };
const bool: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new Error(`must be true or false, got '${raw}'`);
};
const str: Parser<string> = (raw) => raw;
const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw) => {
    if (!values.includes(raw as T)) throw new Error(`must be one of ${values.join(', ')}, got '${raw}'`);
    return raw as T;
  };
const postgresUrl: Parser<string> = (raw) => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    // Never echo the value: it may hold a password.
    throw new Error('must be a URL like postgres://user:password@host:5432/vecron');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new Error(`must start with postgres:// or postgresql://, got '${u.protocol}//'`);
  }
  return raw;
};
const httpUrl: Parser<string> = (raw) => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error('must be a URL like http://collector:4318');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`must start with http:// or https://, got '${u.protocol}//'`);
  return raw;
};
/** `key=value,key2=value2`, keys and values percent-decoded (the OpenTelemetry format). Values never echoed. */
const keyValues: Parser<Record<string, string>> = (raw) => {
  const out: Record<string, string> = {};
  for (const [i, part] of raw.split(',').entries()) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`entry ${i + 1} is not key=value`);
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      throw new Error(`entry ${i + 1} is not valid percent-encoding`);
    }
  }
  return out;
};
const ratio: Parser<number> = (raw) => {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new Error(`must be a number from 0 to 1, got '${raw}'`);
  return n;
};
const token: Parser<string> = (raw) => {
  if (raw.length < 16) throw new Error('must be at least 16 characters long');
  if (/\s/.test(raw)) throw new Error('must not contain whitespace');
  return raw;
};
const roles: Parser<Role[]> = (raw) => {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((r) => !['api', 'scheduler', 'worker'].includes(r));
  if (bad.length || list.length === 0) {
    throw new Error(`must be a comma-separated list of api, scheduler, worker; got '${raw}'`);
  }
  return [...new Set(list)] as Role[];
};

export const settings = {
  port: { env: 'PORT', description: 'HTTP port of the API server and dashboard.', default: '8080', parse: int(0, 65535) },
  host: { env: 'HOST', description: 'Address the API server binds to.', default: '0.0.0.0', parse: str },
  databaseUrl: {
    env: 'DATABASE_URL',
    description:
      'PostgreSQL connection URL. When unset, an embedded PGlite database is kept in `$VECRON_DATA_DIR/pglite` (one process only; not durable across power loss).',
    default: null,
    parse: postgresUrl,
  },
  dataDir: {
    env: 'VECRON_DATA_DIR',
    description: 'Directory for the embedded database and the blob store.',
    default: './data',
    parse: (r: string) => resolve(r),
  },
  blobDir: {
    env: 'VECRON_BLOB_DIR',
    description: 'Directory of the filesystem blob store (modules, job files). Default `$VECRON_DATA_DIR/blobs`.',
    default: null,
    parse: (r: string) => resolve(r),
  },
  bootstrapToken: {
    env: 'VECRON_BOOTSTRAP_TOKEN',
    description: 'When set, an admin API token with exactly this value is ensured at start (for automation). At least 16 characters.',
    default: null,
    parse: token,
  },
  secretKey: {
    env: 'VECRON_SECRET_KEY',
    description:
      'Key that encrypts secret variables at rest (any string of 32+ characters). When unset, a random key is created in `$VECRON_DATA_DIR/secret.key`; every process of a cluster must share the same key.',
    default: null,
    parse: (raw: string) => {
      if (raw.length < 32) throw new Error('must be at least 32 characters long');
      return raw;
    },
  },
  roles: { env: 'VECRON_ROLES', description: 'Roles this process plays: any of api, scheduler, worker.', default: 'api,scheduler,worker', parse: roles },
  logLevel: {
    env: 'VECRON_LOG_LEVEL',
    description: 'Log level (pino): fatal, error, warn, info, debug, trace, silent.',
    default: 'info',
    parse: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  },
  otelEndpoint: {
    env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    description:
      'OTLP/HTTP base URL of an OpenTelemetry collector (e.g. `http://collector:4318`): when set, this process sends spans of its executions, steps and host calls to `<url>/v1/traces` (protobuf), puts `trace_id`/`span_id` in the log lines of executions and sends `traceparent` on outbound http steps and http_request calls. Unset: no tracing, at no cost. See docs/operations.md.',
    default: null,
    parse: httpUrl,
  },
  otelHeaders: {
    env: 'OTEL_EXPORTER_OTLP_HEADERS',
    description: 'Headers sent with every span export, `key=value` pairs separated by commas, percent-encoded (e.g. a collector API key).',
    default: null,
    parse: keyValues,
  },
  otelProtocol: {
    env: 'OTEL_EXPORTER_OTLP_PROTOCOL',
    description: 'OTLP transport; only `http/protobuf` is supported (gRPC and http/json are refused at start).',
    default: 'http/protobuf',
    parse: oneOf(['http/protobuf'] as const),
  },
  otelServiceName: { env: 'OTEL_SERVICE_NAME', description: 'The `service.name` of the spans this process sends.', default: 'vecron', parse: str },
  otelSampler: {
    env: 'OTEL_TRACES_SAMPLER',
    description: `Which traces are kept: ${OTEL_SAMPLERS.join(', ')}. The parentbased ones follow the sampling decision of a caller's \`traceparent\`.`,
    default: 'parentbased_always_on',
    parse: oneOf(OTEL_SAMPLERS),
  },
  otelSamplerArg: { env: 'OTEL_TRACES_SAMPLER_ARG', description: 'The ratio of traces kept by the traceidratio samplers, 0 to 1.', default: '1', parse: ratio },
  workerConcurrency: {
    env: 'VECRON_WORKER_CONCURRENCY',
    description: 'Executions one worker process runs (or holds, claimed ahead) at once.',
    default: '4',
    parse: int(1, 4096),
  },
  workerClaimAheadMs: {
    env: 'VECRON_WORKER_CLAIM_AHEAD_MS',
    description:
      'How long before its fire time a worker may claim an execution, hold it (status running, its lease renewed) and start it on a timer at that time; 0 claims only what is due. For bursts of fire times (many jobs on the same second) with enough concurrency to hold them.',
    default: '0',
    parse: int(0, 10000),
  },
  leaseSeconds: {
    env: 'VECRON_LEASE_SECONDS',
    description: 'How long a claimed execution stays owned without a heartbeat before another worker may take it over.',
    default: '30',
    parse: int(2, 3600),
  },
  pollIntervalMs: {
    env: 'VECRON_POLL_INTERVAL_MS',
    description: 'Queue polling interval, the fallback when no LISTEN/NOTIFY wake-up arrives.',
    default: '1000',
    parse: int(10, 60000),
  },
  schedulerIntervalMs: {
    env: 'VECRON_SCHEDULER_INTERVAL_MS',
    description: 'Longest sleep between scheduler rounds; a scheduler also wakes exactly at the next fire time and when a job changes.',
    default: '200',
    parse: int(10, 60000),
  },
  shutdownGraceSeconds: {
    env: 'VECRON_SHUTDOWN_GRACE_SECONDS',
    description: 'On SIGTERM/SIGINT, how long running executions may finish before they are handed back to the queue.',
    default: '25',
    parse: int(0, 3600),
  },
  misfireThresholdSeconds: {
    env: 'VECRON_MISFIRE_THRESHOLD_SECONDS',
    description:
      "A fire time later than this (scheduler down or stalled) is a misfire, handled by the job's misfire_policy instead of being run late (Quartz's default, 60 s: a short stall or restart still runs every fire time).",
    default: '60',
    parse: int(1, 86400),
  },
  schedulerLookaheadMs: {
    env: 'VECRON_SCHEDULER_LOOKAHEAD_MS',
    description:
      'Fire times this close are queued ahead and started by the workers exactly on time (0 = queue them when due). Half a second by default: a burst is then queued between whole seconds, not at the moment the previous whole second fires (bench/scale.ts: with 1,000 jobs firing every second, step start p99 42 ms at 500 against 66 ms at 1000).',
    default: '500',
    parse: int(0, 60000),
  },
  eventRetentionSeconds: {
    env: 'VECRON_EVENT_RETENTION_SECONDS',
    description: 'How long status events are stored for clients of the event stream that reconnect (`Last-Event-ID`); older ones are pruned every minute.',
    default: '3600',
    parse: int(60, 30 * 86400),
  },
  dbUpkeepSeconds: {
    env: 'VECRON_DB_UPKEEP_SECONDS',
    description:
      'How often each process checks whether the busy tables (executions, step runs, events, schedules, ...) doubled since their statistics were taken, and if so analyzes them (on PGlite, where autovacuum never runs, vacuums and analyzes them after each fifth of growth): stale statistics keep slow cached plans (docs/operations.md). A check is one small query. 0 turns it off.',
    default: '2',
    parse: int(0, 86400),
  },
  retentionExecutionsDays: {
    env: 'VECRON_RETENTION_EXECUTIONS_DAYS',
    description:
      "Days a finished execution is kept, counted from its end: then it is pruned whole (its row, step outputs, WASM logs and files). A job's `retention_days` overrides it. 0 keeps executions forever. Queued and running executions are never pruned.",
    default: '90',
    parse: int(0, 36_500),
  },
  retentionAuditDays: {
    env: 'VECRON_RETENTION_AUDIT_DAYS',
    description:
      'Days audit log entries are kept (default 7 years, as banks keep their records; PCI DSS asks for at least one). 0 keeps them forever. Must be 0 or at least VECRON_RETENTION_EXECUTIONS_DAYS, so that the audit trail outlives what it speaks of.',
    default: '2557',
    parse: int(0, 36_500),
  },
  retentionIntervalSeconds: {
    env: 'VECRON_RETENTION_INTERVAL_SECONDS',
    description: 'How often retention runs, cluster-wide: one process at a time (an advisory lock), once per interval however many processes run.',
    default: '3600',
    parse: int(1, 7 * 86400),
  },
  retentionBatchSize: {
    env: 'VECRON_RETENTION_BATCH_SIZE',
    description: 'Rows deleted per statement when pruning (bounded statements keep locks and WAL small; the run loops until nothing is left).',
    default: '500',
    parse: int(1, 10_000),
  },
  dbPoolSize: { env: 'VECRON_DB_POOL_SIZE', description: 'PostgreSQL connections per process (ignored for PGlite).', default: '10', parse: int(1, 200) },
  stepDbPoolSize: {
    env: 'VECRON_STEP_DB_POOL_SIZE',
    description: 'Connections per process to each database that `database` steps use (one pool per connection string, closed at shutdown).',
    default: '5',
    parse: int(1, 100),
  },
  s3Endpoint: {
    env: 'VECRON_S3_ENDPOINT',
    description: 'S3-compatible endpoint URL (e.g. MinIO `http://127.0.0.1:9000`). Setting `VECRON_S3_BUCKET` switches the blob store to S3.',
    default: null,
    parse: str,
  },
  s3Bucket: { env: 'VECRON_S3_BUCKET', description: 'S3 bucket of the blob store. When unset, blobs live in `VECRON_BLOB_DIR`.', default: null, parse: str },
  s3Region: { env: 'VECRON_S3_REGION', description: 'S3 region.', default: 'us-east-1', parse: str },
  s3AccessKeyId: { env: 'VECRON_S3_ACCESS_KEY_ID', description: 'S3 access key id (else the AWS default chain).', default: null, parse: str },
  s3SecretAccessKey: { env: 'VECRON_S3_SECRET_ACCESS_KEY', description: 'S3 secret access key.', default: null, parse: str },
  s3ForcePathStyle: { env: 'VECRON_S3_FORCE_PATH_STYLE', description: 'Use path-style bucket addressing (needed for MinIO).', default: 'true', parse: bool },
  wasmPoolSize: { env: 'VECRON_WASM_POOL_SIZE', description: 'Worker threads that run WebAssembly steps.', default: '2', parse: int(1, 64) },
  requireSignedModules: {
    env: 'VECRON_REQUIRE_SIGNED_MODULES',
    description: 'Refuse WASM module uploads without a valid Ed25519 signature.',
    default: 'false',
    parse: bool,
  },
  wasmMaxModuleBytes: {
    env: 'VECRON_WASM_MAX_MODULE_BYTES',
    description: 'Largest WASM module accepted at upload, in bytes.',
    default: '33554432',
    parse: int(1024, 2 ** 31 - 1),
  },
  wasmMaxMemoryMb: {
    env: 'VECRON_WASM_MAX_MEMORY_MB',
    description: 'Largest memory a WASM module may declare as its initial size (checked at upload), in MiB.',
    default: '1024',
    parse: int(1, 4096),
  },
  wasmMaxTableElements: {
    env: 'VECRON_WASM_MAX_TABLE_ELEMENTS',
    description:
      "Largest initial size of a WASM module's tables, all tables together, in entries (checked at upload; a step's `table_limit`, default 100000, clamps them at run time).",
    default: '1000000',
    parse: int(1, 10_000_000),
  },
  wasmCacheDir: {
    env: 'VECRON_WASM_CACHE_DIR',
    description: 'Directory of instrumented, precompiled-once WASM modules. Default `$VECRON_DATA_DIR/wasm-cache`.',
    default: null,
    parse: (r: string) => resolve(r),
  },
  wasmHostMaxRequestBytes: {
    env: 'VECRON_WASM_HOST_MAX_REQUEST_BYTES',
    description:
      "Largest request JSON a WASM module may pass to a privileged host function (http_request, db_query, file_*, crypto, time), in bytes; larger is answered `too_large` before it is decoded. Also bounds a file_write's content.",
    default: '1048576',
    parse: int(1024, 256 * 1024 * 1024),
  },
  wasmHostMaxResponseBytes: {
    env: 'VECRON_WASM_HOST_MAX_RESPONSE_BYTES',
    description:
      "Largest answer JSON of a privileged host function (an HTTP body, query rows, a file's content), in bytes; larger is answered `too_large` (a file is refused from its size, before it is read).",
    default: '16777216',
    parse: int(1024, 256 * 1024 * 1024),
  },
  wasmHostMaxRows: {
    env: 'VECRON_WASM_HOST_MAX_ROWS',
    description: "Most rows one `db_query` host call returns; a request's `max_rows` is clamped to it.",
    default: '10000',
    parse: int(1, 10_000_000),
  },
  wasmHostMaxCallMs: {
    env: 'VECRON_WASM_HOST_MAX_CALL_MS',
    description:
      "Longest one `http_request` or `db_query` host call may take, in milliseconds, whatever its `timeout_ms`; the step's own timeout bounds every call too.",
    default: '30000',
    parse: int(1, 3_600_000),
  },
  wasmShadowMaxRuns: {
    env: 'VECRON_WASM_SHADOW_MAX_RUNS',
    description: 'Most recorded runs one shadow test (`POST /api/v1/wasm/modules/{id}/shadow`) may replay: a larger `count` is refused with 400.',
    default: '200',
    parse: int(1, 10_000),
  },
  wasmShadowTimeoutSeconds: {
    env: 'VECRON_WASM_SHADOW_TIMEOUT_SECONDS',
    description:
      'Wall-clock budget of one shadow test or server-side replay, in seconds: runs it does not reach are reported `not_run`, a replay never runs past it.',
    default: '60',
    parse: int(1, 3600),
  },
  wasmShadowConcurrency: {
    env: 'VECRON_WASM_SHADOW_CONCURRENCY',
    description:
      'Shadow tests and server-side replays one API process runs at once (each holds one worker of the WASM pool at a time); one more is refused with 429.',
    default: '1',
    parse: int(1, 64),
  },
  wasmRecord: {
    env: 'VECRON_WASM_RECORD',
    description:
      "Which WASM runs keep their complete record for replay (docs/replay.md): `all`, `failed` (only runs that end in an error) or `off`. A wasm step's `record` and a module's `record_mode` can only make it stricter.",
    default: 'all',
    parse: oneOf(['all', 'failed', 'off'] as const),
  },
  wasmRecordMaxBytes: {
    env: 'VECRON_WASM_RECORD_MAX_BYTES',
    description:
      'Bound of one run record (host-call requests and answers, WASI inputs, input, output), in bytes; past it the record is cut, marked, and the run is not replayable.',
    default: '16777216',
    parse: int(4096, 1024 * 1024 * 1024),
  },
  wasmRecordInlineBytes: {
    env: 'VECRON_WASM_RECORD_INLINE_BYTES',
    description: 'Run records larger than this many bytes are kept in the blob store (`wasm-records/...`) instead of the database row.',
    default: '262144',
    parse: int(0, 1024 * 1024 * 1024),
  },
  wasmRecordRetentionDays: {
    env: 'VECRON_WASM_RECORD_RETENTION_DAYS',
    description: 'Days a run record is kept (its `expires_at`); the retention sweep deletes it after, and with its execution in any case.',
    default: '30',
    parse: int(1, 36500),
  },
  maxBodyBytes: {
    env: 'VECRON_MAX_BODY_BYTES',
    description: 'Largest accepted upload (WASM modules), in bytes.',
    default: '52428800',
    parse: int(1024, 2 ** 31 - 1),
  },
  maxJsonBytes: {
    env: 'VECRON_MAX_JSON_BYTES',
    description: 'Largest accepted JSON request body (jobs, variables, tokens, ...), in bytes; refused with 413 before it is read past the limit.',
    default: '1048576',
    parse: int(1024, 2 ** 31 - 1),
  },
  jsonMaxDepth: {
    env: 'VECRON_JSON_MAX_DEPTH',
    description: 'Deepest nesting of arrays and objects accepted in a JSON request body (and a JSON webhook payload); checked before parsing.',
    default: '64',
    parse: int(2, 1000),
  },
  jsonMaxKeys: {
    env: 'VECRON_JSON_MAX_KEYS',
    description: 'Most object keys plus array elements accepted in one JSON request body (and a JSON webhook payload); checked before parsing.',
    default: '20000',
    parse: int(10, 10_000_000),
  },
  egressAllow: {
    env: 'VECRON_EGRESS_ALLOW',
    description:
      'Destinations steps may connect to although the egress policy would refuse them: comma-separated CIDR ranges, addresses and host-name globs (`*.corp.example`). An allowed address beats VECRON_EGRESS_DENY and the default-refused classes; an allowed host name only beats VECRON_EGRESS_DENY. See docs/security.md.',
    default: null,
    parse: parseEgressRules,
  },
  egressDeny: {
    env: 'VECRON_EGRESS_DENY',
    description:
      "Destinations steps may not connect to, besides the default-refused classes (link-local, cloud metadata, multicast, unspecified, broadcast, vecron's own address): CIDR ranges, addresses and host-name globs, e.g. `127.0.0.0/8,::1/128,10.0.0.0/8` to lock loopback and private ranges down. See docs/security.md.",
    default: null,
    parse: parseEgressRules,
  },
  internalNetworks: {
    env: 'VECRON_INTERNAL_NETWORKS',
    description: `Address ranges a WASM module's http_request may reach with its http permission alone: a call to any other address also needs \`network:external\` for the host name. Comma-separated CIDR ranges and addresses; unset: ${DEFAULT_INTERNAL_NETWORKS}. See docs/abi.md.`,
    default: null,
    parse: (raw: string) => {
      checkInternalNetworks(raw);
      return raw;
    },
  },
  webhookMaxBytes: {
    env: 'VECRON_WEBHOOK_MAX_BYTES',
    description:
      'Largest webhook body, in bytes; the job and its secret are looked up before the body is read, and a larger body is refused (413) without being buffered.',
    default: '1048576',
    parse: int(1, 2 ** 31 - 1),
  },
  webhookToleranceSeconds: {
    env: 'VECRON_WEBHOOK_TOLERANCE_SECONDS',
    description:
      'How far `X-Vecron-Timestamp` of a signed webhook may be from the server clock, in seconds; signatures seen within this window are refused as replays.',
    default: '300',
    parse: int(10, 86400),
  },
  webhookMaxFailuresPerMinute: {
    env: 'VECRON_WEBHOOK_MAX_FAILURES_PER_MINUTE',
    description:
      'Failed webhook signatures accepted per source address in a minute (and 5 times as many per job, from all sources); more are answered 429 without reading the body. Counted cluster-wide.',
    default: '20',
    parse: int(1, 1_000_000),
  },
  idempotencyWindowSeconds: {
    env: 'VECRON_IDEMPOTENCY_WINDOW_SECONDS',
    description:
      'How long an `Idempotency-Key` of a manual or webhook trigger is remembered, in seconds (default 24 h): a repeat within it answers with the first execution instead of running again. Expired keys are deleted in the background.',
    default: '86400',
    parse: int(60, 30 * 86400),
  },
  bulkMaxExecutions: {
    env: 'VECRON_BULK_MAX_EXECUTIONS',
    description:
      'The most executions one bulk call may change (`POST /api/v1/executions/bulk`) or create (`POST /api/v1/jobs/bulk-trigger`); its `limit` may not exceed it.',
    default: '1000',
    parse: int(1, 100_000),
  },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof settings;
type Parsed = { [K in keyof Settings]: ReturnType<Settings[K]['parse']> | null };

/** Reads and validates every setting; reports all bad values at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: Problem[] = [];
  const v = {} as Record<string, unknown>;
  for (const [key, s] of Object.entries(settings) as [string, Setting<unknown>][]) {
    const raw = env[s.env] !== undefined && env[s.env] !== '' ? env[s.env]! : s.default;
    if (raw === null) {
      v[key] = null;
      continue;
    }
    try {
      v[key] = s.parse(raw);
    } catch (err) {
      problems.push({ path: s.env, message: (err as Error).message });
    }
  }
  if (typeof v.retentionAuditDays === 'number' && typeof v.retentionExecutionsDays === 'number') {
    const [audit, executions] = [v.retentionAuditDays, v.retentionExecutionsDays];
    if (audit !== 0 && (executions === 0 || audit < executions)) {
      problems.push({
        path: 'VECRON_RETENTION_AUDIT_DAYS',
        message: `must be 0 (forever) or at least VECRON_RETENTION_EXECUTIONS_DAYS (${executions === 0 ? 'forever' : executions}), got ${audit}`,
      });
    }
  }
  if (problems.length) {
    throw new VecronError('invalid_config', 'invalid configuration: ' + problems.map((p) => `${p.path} ${p.message}`).join('; '), { problems });
  }
  const p = v as Parsed;
  const dataDir = p.dataDir as string;
  return {
    port: p.port as number,
    host: p.host as string,
    databaseUrl: p.databaseUrl as string | null,
    dataDir,
    blobDir: (p.blobDir as string | null) ?? resolve(dataDir, 'blobs'),
    bootstrapToken: p.bootstrapToken as string | null,
    secretKey: p.secretKey as string | null,
    roles: p.roles as Role[],
    logLevel: p.logLevel as Config['logLevel'],
    otelEndpoint: p.otelEndpoint as string | null,
    otelHeaders: (p.otelHeaders as Record<string, string> | null) ?? {},
    otelServiceName: p.otelServiceName as string,
    otelSampler: p.otelSampler as OtelSampler,
    otelSamplerArg: p.otelSamplerArg as number,
    workerConcurrency: p.workerConcurrency as number,
    workerClaimAheadMs: p.workerClaimAheadMs as number,
    leaseSeconds: p.leaseSeconds as number,
    pollIntervalMs: p.pollIntervalMs as number,
    schedulerIntervalMs: p.schedulerIntervalMs as number,
    shutdownGraceSeconds: p.shutdownGraceSeconds as number,
    misfireThresholdSeconds: p.misfireThresholdSeconds as number,
    schedulerLookaheadMs: p.schedulerLookaheadMs as number,
    eventRetentionSeconds: p.eventRetentionSeconds as number,
    dbUpkeepSeconds: p.dbUpkeepSeconds as number,
    retentionExecutionsDays: p.retentionExecutionsDays as number,
    retentionAuditDays: p.retentionAuditDays as number,
    retentionIntervalSeconds: p.retentionIntervalSeconds as number,
    retentionBatchSize: p.retentionBatchSize as number,
    dbPoolSize: p.dbPoolSize as number,
    stepDbPoolSize: p.stepDbPoolSize as number,
    s3: p.s3Bucket
      ? {
          endpoint: p.s3Endpoint as string | null,
          bucket: p.s3Bucket as string,
          region: p.s3Region as string,
          accessKeyId: p.s3AccessKeyId as string | null,
          secretAccessKey: p.s3SecretAccessKey as string | null,
          forcePathStyle: p.s3ForcePathStyle as boolean,
        }
      : null,
    wasmPoolSize: p.wasmPoolSize as number,
    requireSignedModules: p.requireSignedModules as boolean,
    wasmMaxModuleBytes: p.wasmMaxModuleBytes as number,
    wasmMaxMemoryMb: p.wasmMaxMemoryMb as number,
    wasmMaxTableElements: p.wasmMaxTableElements as number,
    wasmCacheDir: (p.wasmCacheDir as string | null) ?? resolve(dataDir, 'wasm-cache'),
    wasmHostMaxRequestBytes: p.wasmHostMaxRequestBytes as number,
    wasmHostMaxResponseBytes: p.wasmHostMaxResponseBytes as number,
    wasmHostMaxRows: p.wasmHostMaxRows as number,
    wasmHostMaxCallMs: p.wasmHostMaxCallMs as number,
    wasmShadowMaxRuns: p.wasmShadowMaxRuns as number,
    wasmShadowTimeoutSeconds: p.wasmShadowTimeoutSeconds as number,
    wasmShadowConcurrency: p.wasmShadowConcurrency as number,
    wasmRecord: p.wasmRecord as Config['wasmRecord'],
    wasmRecordMaxBytes: p.wasmRecordMaxBytes as number,
    wasmRecordInlineBytes: p.wasmRecordInlineBytes as number,
    wasmRecordRetentionDays: p.wasmRecordRetentionDays as number,
    maxBodyBytes: p.maxBodyBytes as number,
    maxJsonBytes: p.maxJsonBytes as number,
    jsonMaxDepth: p.jsonMaxDepth as number,
    jsonMaxKeys: p.jsonMaxKeys as number,
    egressAllow: (p.egressAllow as EgressRules | null) ?? { cidrs: [], hosts: [] },
    egressDeny: (p.egressDeny as EgressRules | null) ?? { cidrs: [], hosts: [] },
    internalNetworks: (p.internalNetworks as string | null) ?? null,
    webhookMaxBytes: p.webhookMaxBytes as number,
    webhookToleranceSeconds: p.webhookToleranceSeconds as number,
    webhookMaxFailuresPerMinute: p.webhookMaxFailuresPerMinute as number,
    idempotencyWindowSeconds: p.idempotencyWindowSeconds as number,
    bulkMaxExecutions: p.bulkMaxExecutions as number,
  };
}

/** The settings table as Markdown, for `vecron config` and docs/configuration.md. */
export function settingsTable(): string {
  const rows = Object.values(settings as Record<string, Setting<unknown>>).map(
    (s) => `| \`${s.env}\` | ${s.default === null ? '(unset)' : `\`${s.default}\``} | ${s.description} |`,
  );
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
