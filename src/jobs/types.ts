/**
 * The canonical job document: what is stored and what GET returns. Input may also come in the design
 * study's ("seed") shape; src/jobs/normalize.ts maps it here and src/jobs/validate.ts checks it.
 * Per-type step configs are declared next to each executor (src/executors/<type>/definition.ts).
 */
import type { StepConfigOf, StepType } from '../executors/definitions.ts';

export type { StepConfigOf, StepType } from '../executors/definitions.ts';
export type { DatabaseStepConfig } from '../executors/database/definition.ts';
export type { FileStepConfig } from '../executors/file/definition.ts';
export type { HttpAuth, HttpMethod, HttpStepConfig } from '../executors/http/definition.ts';
export type { SftpAuth, SftpStepConfig } from '../executors/sftp/definition.ts';
export type { WasmStepConfig } from '../executors/wasm/definition.ts';

export interface StepCommon {
  /** Unique within the job; /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/. Used in templates: `{{steps.<id>.output}}`. */
  id: string;
  /** Display name; defaults to the id. */
  name: string;
  /** Overrides the job-level timeout for this step. */
  timeout_seconds?: number;
  /** Overrides the job-level max_retries for this step. */
  max_retries?: number;
}

/** A step of type K; `Step` alone is the union over all step types (narrow on `type`). */
export type Step<K extends StepType = StepType> = K extends StepType ? StepCommon & { type: K; config: StepConfigOf<K> } : never;

export interface CronScheduleSpec {
  type: 'cron';
  /** Quartz-style, 6 or 7 fields (seconds first); see src/scheduler/cron.ts. */
  expression: string;
  /** IANA time zone; default Asia/Ho_Chi_Minh. */
  timezone: string;
}
export interface FixedRateScheduleSpec {
  type: 'fixed_rate';
  /** Start-to-start interval. */
  interval_seconds: number;
}
export interface FixedDelayScheduleSpec {
  type: 'fixed_delay';
  /** End-to-start delay. */
  delay_seconds: number;
}
export interface OnceScheduleSpec {
  type: 'once';
  /** UTC instant, `Date.prototype.toISOString()` form. */
  at: string;
}
export type Schedule = CronScheduleSpec | FixedRateScheduleSpec | FixedDelayScheduleSpec | OnceScheduleSpec;
export type ScheduleType = Schedule['type'];
export const SCHEDULE_TYPES: readonly ScheduleType[] = ['cron', 'fixed_rate', 'fixed_delay', 'once'];

export type MisfirePolicy = 'fire_once' | 'skip';

/**
 * At most `limit` starts in any `interval_seconds`, cluster-wide: per job (`per: 'job'`) or per
 * value of the job's `concurrency_key` (`per: 'key'`). See src/limits.
 */
export interface RateLimit {
  limit: number;
  interval_seconds: number;
  per: 'job' | 'key';
}
export type OverlapPolicy = 'allow' | 'skip' | 'queue';

export interface WebhookSettings {
  /** HMAC secret for signed triggers. */
  secret?: string;
  rate_limit_per_minute?: number;
  /** How the sender signs: 'timestamped' (default, `<timestamp>.<body>`) or the older 'body' only. */
  signature_scheme?: 'timestamped' | 'body';
  /** Whether a secret is stored (answers only; the secret is never returned). */
  has_secret?: boolean;
}

export interface JobDefinition {
  name: string;
  description: string | null;
  /** null = triggered only manually / by webhook. */
  schedule: Schedule | null;
  steps: Step[];
  variables: Record<string, unknown>;
  timeout_seconds: number;
  max_retries: number;
  retry_backoff_seconds: number;
  enabled: boolean;
  misfire_policy: MisfirePolicy;
  overlap_policy: OverlapPolicy;
  webhook: WebhookSettings | null;
  /**
   * A template over `trigger`, `job` and `variables` (or a constant), rendered when an execution is
   * queued: executions with the same key value share `concurrency_limit` (and a `rate_limit` with
   * `per: 'key'`), across jobs and the whole cluster. null = the job itself is the key.
   */
  concurrency_key: string | null;
  /** At most this many running executions per key value; null = no concurrency limit. */
  concurrency_limit: number | null;
  rate_limit: RateLimit | null;
  /** Days this job's finished executions are kept (0: forever); absent: VECRON_RETENTION_EXECUTIONS_DAYS. */
  retention_days?: number;
}

export const JOB_DEFAULTS = {
  description: null,
  schedule: null,
  variables: {},
  timeout_seconds: 3600,
  max_retries: 3,
  retry_backoff_seconds: 5,
  enabled: true,
  misfire_policy: 'fire_once',
  overlap_policy: 'allow',
  webhook: null,
  concurrency_key: null,
  concurrency_limit: null,
  rate_limit: null,
} as const satisfies Partial<JobDefinition>;

export const JOB_LIMITS = {
  nameMaxLength: 200,
  maxSteps: 100,
  maxTimeoutSeconds: 604_800,
  maxRetries: 10,
  concurrencyKeyMaxLength: 500,
  maxConcurrencyLimit: 10_000,
  maxRateLimit: 1_000_000,
  maxRateIntervalSeconds: 86_400,
} as const;

export const STEP_ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** Server-managed properties accepted (and dropped) on input, so that a GET result can be PUT back. */
export const IGNORED_JOB_PROPERTIES: readonly string[] = ['id', 'created_at', 'updated_at', 'version', 'created_by', 'updated_by'];
