/**
 * What every step type declares about its configuration: the JSON schema of its canonical config,
 * how to read the design study's ("seed") shape, and semantic checks the schema cannot express.
 *
 * Adding a step type = one folder `src/executors/<type>/definition.ts` + one line in
 * `src/executors/definitions.ts`. The job model (src/jobs) derives everything else from there.
 */
import type { Problem } from '../errors.ts';
import type { StepExecutorModule } from './executor.ts';

/** A JSON schema object as ajv reads it. Besides standard keywords, two extensions are honoured by
 * the job validator's error messages (ajv ignores them, OpenAPI tolerates `x-` keys):
 * - `x-patternMessage`: message used instead of "must match pattern ..." for a `pattern` failure;
 * - `x-unsupported`: `{ value: message }` used instead of the generic enum message when the value
 *   (compared case-insensitively) is a known but unsupported choice. */
export type JsonSchema = Record<string, unknown>;

export interface StepDefinition<T extends string = string, C = unknown> {
  /** Canonical type name, used as `step.type`. */
  readonly type: T;
  /** Variant name in the seed shape: `{ "step_type": { "<seedName>": { ...config } } }`. */
  readonly seedName: string;
  /** One line for humans (docs, CLI). */
  readonly title: string;
  /** JSON schema of the canonical config. Compiled once with ajv (allErrors, useDefaults), so
   * `default` values here become part of the stored job. */
  readonly configSchema: JsonSchema;
  /** Seed config -> canonical config: Rust-serde style enums (`{"Bearer": {...}}`, `"PostgreSQL"`)
   * become canonical values. Must not throw on any input; anything it does not understand is passed
   * through unchanged, for the schema to report. Paths of reported problems are mapped back to the
   * seed document by walking it, so keep property names unchanged where possible. */
  fromSeed(seedConfig: any): unknown;
  /** Optional lenient canonicalisation applied to BOTH shapes before schema validation (e.g. upper
   * casing an HTTP method). Must not throw on any input. */
  readonly normalize?: (config: unknown) => unknown;
  /** Semantic checks beyond the schema; only called with a config that passed the schema.
   * Paths are relative to the config (`` = the config itself, `auth.token`, `headers.X`). */
  readonly check?: (config: C) => Problem[];
  /** Loads the run-time half (`./executor.ts`) on first use. */
  readonly loadExecutor: () => Promise<StepExecutorModule<C>>;
}

/* ------------------------------------------------------------------------------------------------
 * Helpers shared by the step definitions.
 * ---------------------------------------------------------------------------------------------- */

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** True if the string contains a `{{ ... }}` or `${ ... }` template, resolved only at run time. */
export function containsTemplate(s: string): boolean {
  return /\{\{[^{}]*\}\}|\$\{[^{}]+\}/.test(s);
}

/** The part of a string before its first template (the whole string if it has none). */
export function literalPrefix(s: string): string {
  const m = /\{\{[^{}]*\}\}|\$\{[^{}]+\}/.exec(s);
  return m ? s.slice(0, m.index) : s;
}

/** `RawSql` -> `raw_sql`, `OAuth2` -> `o_auth2`, `FixedRate` -> `fixed_rate`. */
export function pascalToSnake(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

/** Matches a Rust-serde externally tagged enum value: `{ "Variant": { ...fields } }`. */
export function seedVariant(v: unknown): { variant: string; fields: Record<string, unknown> } | null {
  if (!isPlainObject(v)) return null;
  const keys = Object.keys(v);
  if (keys.length !== 1 || !/^[A-Z][A-Za-z0-9]*$/.test(keys[0])) return null;
  const fields = v[keys[0]];
  return isPlainObject(fields) ? { variant: keys[0], fields } : null;
}

/**
 * Seed enum-with-fields -> canonical tagged object: `{"Bearer": {"token": "x"}}` ->
 * `{type: 'bearer', token: 'x'}` using `names` (seed variant -> canonical type). Unknown variants and
 * anything else are returned unchanged, so the schema reports them.
 */
export function taggedFromSeed(v: unknown, names: Record<string, string>): unknown {
  const sv = seedVariant(v);
  if (!sv || !(sv.variant in names)) return v;
  return { type: names[sv.variant], ...sv.fields };
}

/**
 * Seed unit enum (a string) -> canonical value: looks `v` up case-insensitively in `names`
 * (keys lower case); otherwise returns `pascalToSnake(v)` so `RawSql` still becomes `raw_sql`.
 * Non-strings are returned unchanged.
 */
export function enumFromSeed(v: unknown, names: Record<string, string> = {}): unknown {
  if (typeof v !== 'string') return v;
  const hit = names[v.toLowerCase()];
  return hit ?? pascalToSnake(v);
}

/** Rust `Option::None` is serialised as null; in the seed shape a null field means "absent". */
export function dropNulls(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null) out[k] = v;
  return out;
}

/** `problem('auth.token', 'must not be empty')` */
export const problem = (path: string, message: string): Problem => ({ path, message });

/** Checks that a (non-template) string is an absolute http(s) URL; returns a message or null.
 * With templates, only a literal scheme before the first template is checked. */
export function httpUrlProblem(url: string): string | null {
  if (containsTemplate(url)) {
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(literalPrefix(url));
    if (m && !/^https?$/i.test(m[1])) return `must be an http(s) URL (got scheme '${m[1]}')`;
    return null;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `must be an absolute http(s) URL such as 'https://api.example.com/path' (got '${url}')`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `must be an http(s) URL (got scheme '${u.protocol.slice(0, -1)}')`;
  }
  return null;
}

/** Checks a path inside the execution's blob folder: relative, no `..`. Returns a message or null. */
export function relativePathProblem(path: string): string | null {
  const literal = containsTemplate(path) ? path.replace(/\{\{[^{}]*\}\}|\$\{[^{}]+\}/g, 'x') : path;
  if (literal.startsWith('/') || /^[A-Za-z]:[\\/]/.test(literal)) {
    return `must be relative to the execution folder, not absolute (got '${path}')`;
  }
  if (literal.includes('\\')) return "must use '/' as separator";
  if (literal.split('/').some((seg) => seg === '..')) return "must not contain '..' segments";
  return null;
}

/* ------------------------------------------------------------------------------------------------
 * Problem paths: `steps[1].config.headers.X-Api-Key`; keys that are not simple names are quoted
 * JSON-style: `headers["X.Trace"]`. The root is ``.
 * ---------------------------------------------------------------------------------------------- */

export type PathSegment = string | number;

const SIMPLE_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (SIMPLE_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Inverse of formatPath. Throws on malformed paths (they only come from our own code). */
export function parsePath(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  let i = 0;
  while (i < path.length) {
    const ch = path[i];
    if (ch === '.') {
      i++;
      continue;
    }
    if (ch === '[') {
      if (path[i + 1] === '"') {
        // JSON string up to the closing quote that is not escaped
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
        out.push(JSON.parse(path.slice(i + 1, j + 1)) as string);
        i = j + 2; // skip `"]`
      } else {
        const j = path.indexOf(']', i);
        out.push(Number(path.slice(i + 1, j)));
        i = j + 1;
      }
      continue;
    }
    let j = i;
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
    out.push(path.slice(i, j));
    i = j;
  }
  return out;
}
