/**
 * The job document's limit fields (issue 18): `concurrency_key`, `concurrency_limit` and
 * `rate_limit`, their JSON schema (merged into the job schema by src/jobs/validate.ts) and the
 * checks across fields that a schema cannot say.
 */
import { type JsonSchema, type PathSegment, isPlainObject } from '../executors/definition.ts';
import { locateTemplateReferences } from '../engine/templates.ts';
import { JOB_DEFAULTS, JOB_LIMITS } from '../jobs/types.ts';

/** The roots a key may name: it is rendered when the execution is queued, before any step ran. */
export const KEY_ROOTS = ['trigger', 'job', 'variables'] as const;
/** What `job.*` holds when a key is rendered. */
export const KEY_JOB_FIELDS = ['id', 'name'] as const;

export const limitProperties: Record<string, JsonSchema> = {
  concurrency_key: { type: ['string', 'null'], minLength: 1, maxLength: JOB_LIMITS.concurrencyKeyMaxLength, default: JOB_DEFAULTS.concurrency_key },
  concurrency_limit: { type: ['integer', 'null'], minimum: 1, maximum: JOB_LIMITS.maxConcurrencyLimit, default: JOB_DEFAULTS.concurrency_limit },
  rate_limit: {
    type: ['object', 'null'],
    default: JOB_DEFAULTS.rate_limit,
    additionalProperties: false,
    required: ['limit', 'interval_seconds'],
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: JOB_LIMITS.maxRateLimit },
      interval_seconds: { type: 'integer', minimum: 1, maximum: JOB_LIMITS.maxRateIntervalSeconds },
      per: { type: 'string', enum: ['job', 'key'], default: 'job' },
    },
  },
};

export interface LimitProblem {
  segments: PathSegment[];
  message: string;
}

/** Problems of the limit fields of a (schema-shaped) job document, at their paths. */
export function limitProblems(doc: Record<string, unknown>): LimitProblem[] {
  const out: LimitProblem[] = [];
  const key = doc.concurrency_key;
  const rate = isPlainObject(doc.rate_limit) ? doc.rate_limit : null;
  if (typeof key === 'string' && key.length > 0) {
    if (key.trim() === '') out.push({ segments: ['concurrency_key'], message: 'must not be blank' });
    for (const r of locateTemplateReferences(key)) {
      if ('error' in r) {
        out.push({ segments: ['concurrency_key'], message: r.error });
        continue;
      }
      const root = r.segs[0].kind === 'key' ? r.segs[0].key : '';
      if (!(KEY_ROOTS as readonly string[]).includes(root)) {
        out.push({
          segments: ['concurrency_key'],
          message: `template {{${r.ref}}}: a concurrency key is worked out when the execution is queued, before any step runs, so it can use ${KEY_ROOTS.map((k) => `${k}.*`).join(', ')} only`,
        });
      } else if (root === 'job' && (r.segs.length < 2 || r.segs[1].kind !== 'key' || !(KEY_JOB_FIELDS as readonly string[]).includes(r.segs[1].key))) {
        out.push({
          segments: ['concurrency_key'],
          message: `template {{${r.ref}}}: a concurrency key can use ${KEY_JOB_FIELDS.map((f) => `job.${f}`).join(' and ')}`,
        });
      }
    }
    if ((doc.concurrency_limit === null || doc.concurrency_limit === undefined) && rate?.per !== 'key') {
      out.push({
        segments: ['concurrency_key'],
        message: "has no effect on its own: set concurrency_limit (running executions per key), or a rate_limit with per 'key'",
      });
    }
  }
  if (rate?.per === 'key' && (typeof key !== 'string' || key === '')) {
    out.push({
      segments: ['rate_limit', 'per'],
      message: "'key' counts starts per concurrency_key value, but the job has no concurrency_key (use 'job', or set one)",
    });
  }
  return out;
}
