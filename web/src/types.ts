/** The API's answers as the dashboard reads them (see docs/api.md). */
export type Schedule =
  | { type: 'cron'; expression: string; timezone: string }
  | { type: 'fixed_rate'; interval_seconds: number }
  | { type: 'fixed_delay'; delay_seconds: number }
  | { type: 'once'; at: string };

export interface Step {
  id: string;
  name: string;
  type: string;
  config: Record<string, any>;
  timeout_seconds?: number;
  max_retries?: number;
}

export interface RateLimit {
  limit: number;
  interval_seconds: number;
  per?: 'job' | 'key';
}

/** Why a queued execution has not started (src/limits/waiting.ts). */
export interface Waiting {
  code: 'scheduled' | 'concurrency_limit' | 'rate_limit';
  message: string;
  key?: string;
  limit?: number;
  running?: number;
  ahead?: number;
  interval_seconds?: number;
  starts?: number;
  next_start_at?: string;
  run_at?: string;
}

export interface Job {
  id: string;
  name: string;
  description: string | null;
  schedule: Schedule | null;
  steps: Step[];
  variables: Record<string, unknown>;
  timeout_seconds: number;
  max_retries: number;
  retry_backoff_seconds: number;
  enabled: boolean;
  misfire_policy: string;
  retention_days?: number;
  overlap_policy: string;
  webhook: { rate_limit_per_minute?: number; has_secret?: boolean } | null;
  concurrency_key?: string | null;
  concurrency_limit?: number | null;
  rate_limit?: RateLimit | null;
  version: number;
  created_at: string;
  updated_at: string;
  created_by: string | null;
  updated_by: string | null;
}

export interface JobOverview {
  id: string;
  name: string;
  description: string | null;
  enabled: boolean;
  version: number;
  schedule: Schedule | null;
  step_types: string[];
  next_fire_at: string | null;
  next_fire_source: 'scheduler' | 'computed' | null;
  last_status: string | null;
  last_run_at: string | null;
}

export interface StepRun {
  id: string;
  position: number;
  type: string;
  status: string;
  attempt: number;
  output: unknown;
  error: { code?: string; message?: string; [k: string]: unknown } | null;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
}

export interface Execution {
  id: string;
  job_id: string;
  job_name: string | null;
  job_version: number;
  status: string;
  trigger_type: string;
  trigger: any;
  fire_time: string | null;
  attempt: number;
  max_attempts: number;
  run_at: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  error: { code?: string; message?: string } | null;
  /** The limits it was queued with (its key rendered), and why a queued one waits. */
  limits?: { concurrency: { key: string; limit: number } | null; rate: { key: string; limit: number; interval_seconds: number } | null } | null;
  waiting?: Waiting | null;
  steps?: StepRun[];
  context?: unknown;
}

export interface WasmModule {
  id: string;
  name: string;
  version: string;
  description: string | null;
  author: string;
  hash: string;
  size_bytes: number;
  signature: string | null;
  signed_by_key: string | null;
  created_at: string;
  created_by: string | null;
  [k: string]: any;
}

export interface Preview {
  timezone: string;
  times: { at: string; local: string }[];
  note?: string;
}

/** The zone a job's times are read in: a cron job's own, else UTC. */
export function jobZone(s: Schedule | null): string {
  return s?.type === 'cron' ? s.timezone : 'UTC';
}
