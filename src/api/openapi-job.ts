/**
 * The job body as the OpenAPI document shows it. Validation itself is done by
 * src/jobs/validate.ts (it reports every problem with its JSON path and accepts two shapes), so this
 * schema only insists on an object.
 */
export const jobDocumentSchema = {
  type: 'object',
  description:
    'A job: name, description, schedule ({type: cron|fixed_rate|fixed_delay|once, ...}), steps (ordered; each {id, name, type: http|database|file|sftp|wasm, config} or {id, name, step_type: {HttpRequest|DatabaseQuery|FileProcessing|Sftp|Wasm: {...}}}), variables, timeout_seconds, max_retries (0-10), enabled, misfire_policy, overlap_policy. See docs/jobs.md.',
  additionalProperties: true,
  example: {
    name: 'daily-settlement',
    description: 'Fetch settlement totals every morning',
    schedule: { type: 'cron', expression: '0 30 6 * * ?', timezone: 'Asia/Ho_Chi_Minh' },
    steps: [{ id: 'fetch', name: 'Fetch totals', type: 'http', config: { method: 'GET', url: 'https://bank.example/api/settlements' } }],
    variables: { region: 'south' },
    timeout_seconds: 600,
    max_retries: 3,
    enabled: true,
  },
} as const;
