/**
 * The job body as the OpenAPI document shows it. Validation itself is done by
 * src/jobs/validate.ts (it reports every problem with its JSON path and accepts two shapes), so this
 * schema only insists on an object.
 */
export const jobDocumentSchema = {
  type: 'object',
  description:
    'A job: name, description, schedule ({type: cron|fixed_rate|fixed_delay|once, ...}), steps (ordered; each {id, name, type: http|database|file|sftp|wasm, config} or {id, name, step_type: {HttpRequest|DatabaseQuery|FileProcessing|Sftp|Wasm: {...}}}), variables, timeout_seconds, max_retries (0-10), enabled, misfire_policy, overlap_policy, concurrency_key, concurrency_limit, rate_limit. See docs/jobs.md.',
  additionalProperties: true,
  // Descriptions only: src/jobs/validate.ts checks the body (with paths and every problem at once);
  // typed keywords here would have Fastify refuse or coerce first. The typed shape is the answer's
  // (src/api/response-schemas.ts) and GET /api/v1/schemas/job.
  properties: {
    concurrency_key: {
      description:
        "string or null (at most 500 characters). A template over trigger.*, job.id, job.name and variables.* (or a constant), rendered when an execution is queued, e.g. 'customer-{{trigger.payload.customer_id}}'. Executions with the same value share concurrency_limit (and a rate_limit with per 'key'), across jobs and the whole cluster. null: the job itself is the key.",
    },
    concurrency_limit: {
      description:
        'integer 1-10000 or null. At most this many running executions per concurrency_key value (per job without a key); the others wait, queued. null: no limit.',
    },
    rate_limit: {
      description:
        "{limit: 1-1000000, interval_seconds: 1-86400, per: 'job' (default) | 'key'} or null. At most `limit` starts (attempts) in any `interval_seconds`, per job or per concurrency_key value. null: no limit.",
    },
  },
  example: {
    name: 'daily-settlement',
    description: 'Fetch settlement totals every morning',
    schedule: { type: 'cron', expression: '0 30 6 * * ?', timezone: 'Asia/Ho_Chi_Minh' },
    steps: [{ id: 'fetch', name: 'Fetch totals', type: 'http', config: { method: 'GET', url: 'https://bank.example/api/settlements' } }],
    variables: { region: 'south' },
    timeout_seconds: 600,
    max_retries: 3,
    enabled: true,
    concurrency_key: 'settlement-{{variables.region}}',
    concurrency_limit: 2,
    rate_limit: { limit: 60, interval_seconds: 60, per: 'key' },
  },
} as const;
