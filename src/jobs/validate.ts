/**
 * Job document validation: accepts the flat (canonical) and the seed shape, returns the canonical
 * JobDefinition with defaults applied, or EVERY problem found, each at the JSON path the user wrote.
 *
 * Pipeline: normalize (shape -> canonical, structural problems) -> job envelope schema (ajv) ->
 * each step's config schema (ajv, from the step type's definition) -> the step type's semantic
 * `check` -> cross-field checks (duplicate step ids, cron expression, time zone, `once.at`, templates
 * that name steps).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { type Problem, validationFailed } from '../errors.ts';
import { type JsonSchema, type PathSegment, isPlainObject, parsePath } from '../executors/definition.ts';
import { type StepType, stepDefinitions, stepTypes } from '../executors/definitions.ts';
import { locateTemplateReferences } from '../engine/templates.ts';
import { cronExpressionProblem, parseCron } from '../scheduler/cron.ts';
import { isValidTimeZone, timeZoneProblem } from '../scheduler/timezone.ts';
import { limitProperties, limitProblems } from '../limits/definition.ts';
import { describeJsonType, normalizeJobDocument } from './normalize.ts';
import { JOB_DEFAULTS, JOB_LIMITS, type JobDefinition, type Schedule, STEP_ID_PATTERN, type Step } from './types.ts';

export type JobValidationResult = { ok: true; job: JobDefinition } | { ok: false; problems: Problem[] };

/* ------------------------------------------------------------------------------------------------
 * Schemas
 * ---------------------------------------------------------------------------------------------- */

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

const scheduleSchema: JsonSchema = {
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: [
    {
      properties: {
        type: { const: 'cron' },
        expression: { type: 'string', minLength: 1, maxLength: 256 },
        timezone: { type: 'string', minLength: 1, maxLength: 64 },
      },
      required: ['type', 'expression', 'timezone'],
      additionalProperties: false,
    },
    {
      properties: { type: { const: 'fixed_rate' }, interval_seconds: { type: 'integer', minimum: 1, maximum: 31_622_400 } },
      required: ['type', 'interval_seconds'],
      additionalProperties: false,
    },
    {
      properties: { type: { const: 'fixed_delay' }, delay_seconds: { type: 'integer', minimum: 1, maximum: 31_622_400 } },
      required: ['type', 'delay_seconds'],
      additionalProperties: false,
    },
    {
      properties: { type: { const: 'once' }, at: { type: 'string', minLength: 1, maxLength: 64 } },
      required: ['type', 'at'],
      additionalProperties: false,
    },
  ],
};

const stepCommonProperties: JsonSchema = {
  id: {
    type: 'string',
    pattern: STEP_ID_PATTERN.source,
    'x-patternMessage': "must be 1-64 characters: a letter or '_', then letters, digits, '_' or '-'",
  },
  name: { type: 'string', minLength: 1, maxLength: 200 },
  timeout_seconds: { type: 'integer', minimum: 1, maximum: JOB_LIMITS.maxTimeoutSeconds },
  max_retries: { type: 'integer', minimum: 0, maximum: JOB_LIMITS.maxRetries },
};

function jobSchema(stepItems: JsonSchema): JsonSchema {
  return {
    type: 'object',
    required: ['name', 'steps'],
    additionalProperties: false,
    properties: {
      name: {
        type: 'string',
        minLength: 1,
        maxLength: JOB_LIMITS.nameMaxLength,
        pattern: '^[^\\s\\u0000-\\u001f\\u007f](?:[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f])?$',
        'x-patternMessage': 'must not start or end with whitespace or contain control characters',
      },
      description: { type: ['string', 'null'], maxLength: 10_000, default: JOB_DEFAULTS.description },
      schedule: { type: ['object', 'null'], default: JOB_DEFAULTS.schedule, if: { type: 'object' }, then: scheduleSchema },
      steps: { type: 'array', minItems: 1, maxItems: JOB_LIMITS.maxSteps, items: stepItems },
      variables: { type: 'object', default: JOB_DEFAULTS.variables },
      timeout_seconds: { type: 'integer', minimum: 1, maximum: JOB_LIMITS.maxTimeoutSeconds, default: JOB_DEFAULTS.timeout_seconds },
      max_retries: { type: 'integer', minimum: 0, maximum: JOB_LIMITS.maxRetries, default: JOB_DEFAULTS.max_retries },
      retry_backoff_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 86_400, default: JOB_DEFAULTS.retry_backoff_seconds },
      enabled: { type: 'boolean', default: JOB_DEFAULTS.enabled },
      misfire_policy: { type: 'string', enum: ['fire_once', 'skip'], default: JOB_DEFAULTS.misfire_policy },
      overlap_policy: { type: 'string', enum: ['allow', 'skip', 'queue'], default: JOB_DEFAULTS.overlap_policy },
      ...limitProperties,
      // Retention of this job's executions in days (0: forever); overrides the global setting.
      retention_days: { type: 'integer', minimum: 0, maximum: 36_500 },
      webhook: {
        type: ['object', 'null'],
        default: JOB_DEFAULTS.webhook,
        additionalProperties: false,
        properties: {
          secret: { type: 'string', minLength: 16, maxLength: 512 },
          rate_limit_per_minute: { type: 'integer', minimum: 1, maximum: 100_000 },
          // 'timestamped' (default): HMAC over `<X-Vecron-Timestamp>.<body>`; 'body': the old
          // body-only HMAC, replayable, for senders that cannot send a timestamp yet.
          signature_scheme: { type: 'string', enum: ['timestamped', 'body'] },
          // Set by the server (the secret itself is stored encrypted apart); ignored on input.
          has_secret: { type: 'boolean' },
        },
      },
    },
  };
}

/** Envelope used internally: step configs are validated separately, per type, so that their problems
 * can be mapped to the seed shape and the step type's `check` can run. */
const envelopeSchema = jobSchema({
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { ...stepCommonProperties, type: { type: 'string' }, config: { type: 'object' } },
});

/** JSON schema of the canonical (stored) job document, e.g. for OpenAPI. Input may also use the
 * seed shape, which this schema does not describe. */
export const canonicalJobJsonSchema: JsonSchema = jobSchema({
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: stepTypes.map((t) => ({
    properties: { ...stepCommonProperties, type: { const: t }, config: stepDefinitions[t].configSchema },
    required: ['id', 'name', 'type', 'config'],
    additionalProperties: false,
  })),
});

const ajv = new Ajv({
  allErrors: true,
  strict: false,
  useDefaults: true,
  discriminator: true,
  verbose: true, // errors carry data and parentSchema, used for messages
  allowUnionTypes: true,
});

// Compiled on the first validation, not when the module loads: a process that never validates a
// job (a worker, a scheduler) does not pay for it at start (issue 19: cold start).
let envelopeValidator: ValidateFunction | undefined;
const configValidators = new Map<StepType, ValidateFunction>();
const validateEnvelope = (): ValidateFunction => (envelopeValidator ??= ajv.compile(envelopeSchema));
function validateConfigOf(type: StepType): ValidateFunction {
  let v = configValidators.get(type);
  if (v === undefined) {
    v = ajv.compile(stepDefinitions[type].configSchema);
    configValidators.set(type, v);
  }
  return v;
}

/* ------------------------------------------------------------------------------------------------
 * ajv errors -> human problems
 * ---------------------------------------------------------------------------------------------- */

interface RawProblem {
  segments: PathSegment[];
  message: string;
}

function pointerToSegments(pointer: string, root: unknown): PathSegment[] {
  if (pointer === '') return [];
  const out: PathSegment[] = [];
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      out.push(Number(token));
      node = node[Number(token)];
    } else {
      out.push(token);
      node = isPlainObject(node) ? node[token] : undefined;
    }
  }
  return out;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ('nmae' -> 'name' = 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** ` (did you mean 'x'?)` for a near miss (typo, case, or a known name that extends it: timeout -> timeout_seconds). */
function suggestion(name: string, known: string[]): string {
  const lower = name.toLowerCase();
  if (lower.length > 64) return '';
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const kl = k.toLowerCase();
    const d = kl === lower ? 0 : lower.length >= 4 && kl.startsWith(`${lower}_`) ? 1 : editDistance(lower, kl);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 4)) ? ` (did you mean '${best}'?)` : '';
}

function discriminatorValues(schema: unknown, tag: string): string[] {
  const oneOf = isPlainObject(schema) && Array.isArray(schema.oneOf) ? schema.oneOf : [];
  return oneOf.map((b: any) => b?.properties?.[tag]?.const).filter((v: unknown): v is string => typeof v === 'string');
}

function humanize(errors: readonly ErrorObject[], root: unknown): RawProblem[] {
  const out: RawProblem[] = [];
  const seen = new Set<string>();
  const push = (segments: PathSegment[], message: string) => {
    const key = JSON.stringify([segments, message]);
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ segments, message });
    }
  };
  for (const e of errors) {
    const at = pointerToSegments(e.instancePath, root);
    const p = e.params as Record<string, any>;
    const parent = (e.parentSchema ?? {}) as Record<string, any>;
    switch (e.keyword) {
      case 'required': {
        const tag = parent.discriminator?.propertyName;
        const values = p.missingProperty === tag ? discriminatorValues(parent, tag) : [];
        push(at, `missing required property '${p.missingProperty}'${values.length ? ` (one of ${values.join(', ')})` : ''}`);
        break;
      }
      case 'additionalProperties': {
        const known = isPlainObject(parent.properties) ? Object.keys(parent.properties) : [];
        push([...at, p.additionalProperty], `unknown property '${p.additionalProperty}'${suggestion(p.additionalProperty, known)}`);
        break;
      }
      case 'enum': {
        const unsupported = parent['x-unsupported'] as Record<string, string> | undefined;
        const hint = typeof e.data === 'string' ? unsupported?.[e.data.toLowerCase()] : undefined;
        push(at, hint ?? `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')} (got ${show(e.data)})`);
        break;
      }
      case 'const':
        push(at, `must be ${show(p.allowedValue)}`);
        break;
      case 'type': {
        const types = Array.isArray(p.type) ? p.type : String(p.type).split(',');
        const words = types.map((t: string) => TYPE_WORDS[t] ?? t);
        const list = words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}` : words[0];
        push(at, `must be ${list} (got ${describeJsonType(e.data)})`);
        break;
      }
      case 'minimum':
        push(at, `must be at least ${p.limit} (got ${show(e.data)})`);
        break;
      case 'maximum':
        push(at, `must be at most ${p.limit} (got ${show(e.data)})`);
        break;
      case 'exclusiveMinimum':
        push(at, `must be greater than ${p.limit} (got ${show(e.data)})`);
        break;
      case 'exclusiveMaximum':
        push(at, `must be less than ${p.limit} (got ${show(e.data)})`);
        break;
      case 'minLength':
        push(at, p.limit === 1 ? 'must not be empty' : `must be at least ${p.limit} characters long`);
        break;
      case 'maxLength':
        push(at, p.limit === 1 ? 'must be a single character' : `must be at most ${p.limit} characters long`);
        break;
      case 'minItems':
        push(at, p.limit === 1 ? 'must not be empty' : `must have at least ${p.limit} items`);
        break;
      case 'maxItems':
        push(at, `must have at most ${p.limit} items (got ${Array.isArray(e.data) ? e.data.length : '?'})`);
        break;
      case 'uniqueItems':
        push(at, `must not contain duplicates (items ${p.j} and ${p.i} are equal)`);
        break;
      case 'pattern':
        push(at, typeof parent['x-patternMessage'] === 'string' ? parent['x-patternMessage'] : `must match the pattern ${p.pattern}`);
        break;
      case 'discriminator': {
        // params: { error: 'tag' | 'mapping', tag: <property name>, tagValue: <value> }
        const tag = p.tag as string;
        const value = isPlainObject(e.data) ? e.data[tag] : undefined;
        if (value === undefined) break; // reported by 'required'
        const values = discriminatorValues(parent, tag);
        push(
          [...at, tag],
          typeof value === 'string'
            ? `unknown ${tag} '${value}' (expected one of ${values.join(', ')})`
            : `must be a string, one of ${values.join(', ')} (got ${describeJsonType(value)})`,
        );
        break;
      }
      case 'if': // the failing `then` branch is reported itself
        break;
      default:
        push(at, e.message ?? `fails '${e.keyword}'`);
    }
  }
  return out;
}

/* ------------------------------------------------------------------------------------------------
 * Cross-field checks
 * ---------------------------------------------------------------------------------------------- */

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?([Zz]|([+-])(\d{2}):?(\d{2}))$/;

/** Parses an ISO-8601 / RFC 3339 timestamp with an explicit offset; returns the instant or a message. */
export function parseTimestamp(s: string): Date | string {
  const m = ISO_TIMESTAMP.exec(s);
  const expected = "must be an ISO-8601 timestamp with a time zone offset, e.g. '2026-12-01T09:00:00+07:00' or '2026-12-01T02:00:00Z'";
  if (!m) return `${expected} (got '${s}')`;
  const [year, month, day, hour, minute, second = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    return `is not a valid date/time (got '${s}')`;
  }
  if (m[10] !== undefined && (Number(m[10]) > 23 || Number(m[11]) > 59)) return `has an invalid offset (got '${s}')`;
  const d = new Date(s.replace(' ', 'T'));
  return Number.isNaN(d.getTime()) ? `${expected} (got '${s}')` : d;
}

function scheduleProblems(s: Record<string, unknown>): RawProblem[] {
  const out: RawProblem[] = [];
  if (s.type === 'cron' && typeof s.expression === 'string' && s.expression.trim() !== '') {
    const tzOk = typeof s.timezone !== 'string' || s.timezone === '' || isValidTimeZone(s.timezone);
    if (!tzOk) out.push({ segments: ['schedule', 'timezone'], message: timeZoneProblem(s.timezone as string) });
    const syntax = cronExpressionProblem(s.expression);
    if (syntax) out.push({ segments: ['schedule', 'expression'], message: syntax });
    else if (tzOk && typeof s.timezone === 'string' && s.timezone !== '') {
      if (parseCron(s.expression, s.timezone).next(new Date()) === null) {
        out.push({ segments: ['schedule', 'expression'], message: 'cron expression never fires (no matching time in the future)' });
      }
    }
  }
  if (s.type === 'once' && typeof s.at === 'string' && s.at !== '') {
    const at = parseTimestamp(s.at);
    if (typeof at === 'string') out.push({ segments: ['schedule', 'at'], message: at });
  }
  return out;
}

/**
 * Templates in step configs that name a step (`{{steps.<id>.output...}}`) must name a step that comes
 * before them in the document; malformed templates are refused here too. Routing (`next_step`) may
 * skip an earlier step, so a reference to one can still fail at run time (template_error), but a
 * reference to a later step or to no step at all can never work in document order, and a step that
 * routes backwards to an earlier one can pass values on through its output or stored variables
 * instead. Other roots (`trigger.*`, `variables.*`, ...) are resolved at run time only.
 */
function stepReferenceProblems(steps: unknown[]): RawProblem[] {
  const out: RawProblem[] = [];
  const ids = steps.map((s) => (isPlainObject(s) && typeof s.id === 'string' ? s.id : null));
  steps.forEach((step, i) => {
    if (!isPlainObject(step) || !isPlainObject(step.config)) return;
    const before = ids.slice(0, i).filter((id): id is string => id !== null);
    const known = before.length ? `steps before it: ${[...new Set(before)].join(', ')}` : 'no step comes before it';
    for (const r of locateTemplateReferences(step.config)) {
      const segments: PathSegment[] = ['steps', i, 'config', ...r.at];
      if ('error' in r) {
        out.push({ segments, message: r.error });
        continue;
      }
      if (r.segs[0].kind !== 'key' || r.segs[0].key !== 'steps' || r.segs.length < 2) continue;
      const seg = r.segs[1];
      const id = seg.kind === 'key' ? seg.key : String(seg.index);
      if (before.includes(id)) continue;
      const later = ids.indexOf(id, i);
      const why =
        later === i
          ? `names step '${id}' itself`
          : later > i
            ? `names step '${id}', which comes later (steps[${later}]); a step can use the output of the steps before it only`
            : `names no step '${id}'`;
      out.push({ segments, message: `template {{${r.ref}}} ${why} (${known})` });
    }
  });
  return out;
}

/** Sort key: document order of top-level properties, then step index. */
const TOP_ORDER = ['', 'name', 'description', 'schedule', 'steps', 'variables', 'timeout_seconds', 'max_retries'];
function orderKey(segments: readonly PathSegment[]): [number, number] {
  const first = segments.length ? String(segments[0]) : '';
  const i = TOP_ORDER.indexOf(first);
  return [i === -1 ? TOP_ORDER.length : i, first === 'steps' && typeof segments[1] === 'number' ? segments[1] : -1];
}

/* ------------------------------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------------------------------- */

/**
 * Validates a job document in either shape. On success returns the canonical job (defaults applied,
 * seed shape converted, `id`/`created_at`/`updated_at` dropped); otherwise every problem found.
 */
export function validateJobDocument(input: unknown): JobValidationResult {
  const normalized = normalizeJobDocument(input);
  const doc = normalized.document;
  if (doc === null) return { ok: false, problems: normalized.problems };

  const raw: RawProblem[] = [];
  const envelope = validateEnvelope();
  if (!envelope(doc)) raw.push(...humanize(envelope.errors ?? [], doc));

  // step configs, per type
  const steps = Array.isArray(doc.steps) ? doc.steps : [];
  steps.forEach((step, i) => {
    if (!isPlainObject(step) || typeof step.type !== 'string' || !stepTypes.includes(step.type as StepType)) return;
    if (!isPlainObject(step.config)) return; // the envelope reported it
    const type = step.type as StepType;
    const validate = validateConfigOf(type);
    const prefix: PathSegment[] = ['steps', i, 'config'];
    if (!validate(step.config)) {
      for (const p of humanize(validate.errors ?? [], step.config)) raw.push({ segments: [...prefix, ...p.segments], message: p.message });
      return;
    }
    const check = stepDefinitions[type].check as ((c: unknown) => Problem[]) | undefined;
    for (const p of check?.(step.config) ?? []) raw.push({ segments: [...prefix, ...parsePath(p.path)], message: p.message });
  });

  // duplicate step ids
  const firstIndex = new Map<string, number>();
  steps.forEach((step, i) => {
    if (!isPlainObject(step) || typeof step.id !== 'string') return;
    const first = firstIndex.get(step.id);
    if (first === undefined) firstIndex.set(step.id, i);
    else raw.push({ segments: ['steps', i, 'id'], message: `duplicate step id '${step.id}' (also used by steps[${first}])` });
  });

  raw.push(...stepReferenceProblems(steps));

  // variable names (used as {{variables.<name>}})
  if (isPlainObject(doc.variables)) {
    for (const name of Object.keys(doc.variables)) {
      if (RESERVED_NAMES.has(name)) {
        raw.push({ segments: ['variables', name], message: `'${name}' is reserved and cannot be a variable name` });
      } else if (!VARIABLE_NAME.test(name)) {
        raw.push({
          segments: ['variables', name],
          message: "variable names must be 1-128 characters: a letter or '_', then letters, digits or '_' (they are used as {{variables.<name>}})",
        });
      }
    }
  }

  if (isPlainObject(doc.schedule)) raw.push(...scheduleProblems(doc.schedule));
  raw.push(...limitProblems(doc));

  const all = [
    ...normalized.problems.map((p) => ({ problem: p, key: orderKey(parsePath(p.path)) })),
    ...raw.map((p) => ({ problem: { path: normalized.userPath(p.segments), message: p.message }, key: orderKey(p.segments) })),
  ];
  // stable sort: document order of top-level properties, then step index, then detection order
  all.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1]);
  const problems = all.map((x) => x.problem);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, job: toCanonical(doc) };
}

/** Like validateJobDocument, but throws VecronError('validation_failed', details: { problems }). */
export function parseJobDocument(input: unknown): JobDefinition {
  const result = validateJobDocument(input);
  if (!result.ok) throw validationFailed(result.problems, 'job');
  return result.job;
}

/** Builds the stored form from a validated document: fixed key order, normalised schedule. */
function toCanonical(doc: Record<string, any>): JobDefinition {
  let schedule: Schedule | null = doc.schedule;
  if (schedule?.type === 'cron') {
    schedule = { type: 'cron', expression: schedule.expression.trim().split(/\s+/).join(' '), timezone: schedule.timezone };
  } else if (schedule?.type === 'once') {
    schedule = { type: 'once', at: (parseTimestamp(schedule.at) as Date).toISOString() };
  }
  const steps = (doc.steps as Record<string, any>[]).map((s) => {
    const step: Record<string, unknown> = { id: s.id, name: s.name, type: s.type, config: s.config };
    if (s.timeout_seconds !== undefined) step.timeout_seconds = s.timeout_seconds;
    if (s.max_retries !== undefined) step.max_retries = s.max_retries;
    return step as unknown as Step;
  });
  return {
    name: doc.name,
    description: doc.description,
    schedule,
    steps,
    variables: doc.variables,
    timeout_seconds: doc.timeout_seconds,
    max_retries: doc.max_retries,
    retry_backoff_seconds: doc.retry_backoff_seconds,
    enabled: doc.enabled,
    misfire_policy: doc.misfire_policy,
    overlap_policy: doc.overlap_policy,
    webhook: doc.webhook,
    concurrency_key: doc.concurrency_key,
    concurrency_limit: doc.concurrency_limit,
    rate_limit: doc.rate_limit,
    ...(doc.retention_days !== undefined ? { retention_days: doc.retention_days } : {}),
  };
}
