/**
 * Templates in step configs: `{{ steps.fetch.output.data.items[0].id }}`, `{{variables.name}}`,
 * `{{trigger.payload.x}}`, `{{job.name}}`, `{{execution.id}}`, and `${NAME}` as a shorthand for
 * `{{variables.NAME}}`.
 *
 * - A string that is exactly one template resolves to the referenced value itself (object, number,
 *   array, ...); a template inside a longer string is replaced by the value as text (strings as they
 *   are, anything else JSON-encoded, null as `null`).
 * - `\{{` is a literal `{{`, `\${` a literal `${`. A `{{` without a closing `}}` is literal text, and
 *   so is a `${` that is not followed by `NAME}`.
 * - Substituted values are never scanned again: a trigger payload that contains `{{variables.x}}`
 *   stays as it is.
 * - Only own properties are visible (`constructor`, `__proto__` of a plain object and the like are
 *   "missing"); arrays are indexed with `[n]` (or `.n`).
 * - A reference that cannot be resolved is an error naming the reference and where lookup stopped.
 */
import { StepError } from './step-error.ts';

/** One step of a reference path: a property name or an array index. */
export type PathSegment = { kind: 'key'; key: string } | { kind: 'index'; index: number };

const IDENT_START = /[A-Za-z_$]/;
const KEY_CHAR = /[A-Za-z0-9_$-]/;
const VAR_SHORTHAND = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}/;

const templateError = (message: string): StepError => new StepError('template_error', message, { retryable: false });

/**
 * Parses a reference such as `steps.a.output["key with spaces"].items[0]` into segments; throws a
 * template_error on bad syntax.
 */
export function parseReference(ref: string): PathSegment[] {
  const segs: PathSegment[] = [];
  const s = ref;
  let i = 0;
  const fail = (why: string): never => {
    throw templateError(`template {{${ref}}}: invalid reference: ${why}; write \\{{ for a literal '{{'`);
  };
  const readKey = (): string => {
    const start = i;
    while (i < s.length && KEY_CHAR.test(s[i])) i++;
    if (i === start) fail(i >= s.length ? 'it ends with a dot' : `unexpected character '${s[i]}' at position ${i + 1}`);
    return s.slice(start, i);
  };
  if (!s.length) fail('it is empty');
  if (!IDENT_START.test(s[0])) fail(`it must start with a name like steps, variables, trigger, job or execution`);
  segs.push({ kind: 'key', key: readKey() });
  while (i < s.length) {
    const c = s[i];
    if (c === '.') {
      i++;
      const key = readKey();
      segs.push(/^\d+$/.test(key) ? { kind: 'index', index: Number(key) } : { kind: 'key', key });
    } else if (c === '[') {
      i++;
      while (s[i] === ' ') i++;
      const q = s[i];
      if (q === '"' || q === "'") {
        i++;
        let key = '';
        for (;;) {
          if (i >= s.length) fail(`unclosed string in [ ]`);
          const ch = s[i];
          if (ch === '\\' && i + 1 < s.length) {
            key += s[i + 1];
            i += 2;
          } else if (ch === q) {
            i++;
            break;
          } else {
            key += ch;
            i++;
          }
        }
        segs.push({ kind: 'key', key });
      } else {
        const start = i;
        while (i < s.length && s[i] >= '0' && s[i] <= '9') i++;
        if (i === start) fail(`expected an index like [0] or a quoted key like ["name"] at position ${start + 1}`);
        const index = Number(s.slice(start, i));
        if (!Number.isSafeInteger(index)) fail(`index ${s.slice(start, i)} is too large`);
        segs.push({ kind: 'index', index });
      }
      while (s[i] === ' ') i++;
      if (s[i] !== ']') fail(`missing ']' at position ${i + 1}`);
      i++;
    } else {
      fail(`unexpected character '${c}' at position ${i + 1}`);
    }
  }
  return segs;
}

/** Canonical text of a path: `a.b[0]["c d"]`. */
export function formatPath(segs: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segs) {
    if (seg.kind === 'index') out += `[${seg.index}]`;
    else if (out === '') out = seg.key;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg.key)) out += `.${seg.key}`;
    else out += `[${JSON.stringify(seg.key)}]`;
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return `a ${typeof v}`;
}

const hasOwn = (o: object, k: string): boolean => Object.hasOwn(o, k);

/** Looks a parsed reference up in the context; throws a template_error saying where it failed. */
function lookup(ref: string, segs: PathSegment[], context: Record<string, unknown>): unknown {
  const fail = (why: string): never => {
    throw templateError(`template {{${ref}}}: ${why}`);
  };
  const root = segs[0] as { kind: 'key'; key: string };
  if (!hasOwn(context, root.key) || context[root.key] === undefined) {
    const known = Object.keys(context).filter((k) => context[k] !== undefined);
    fail(`unknown name '${root.key}' (known: ${known.join(', ') || 'none'})`);
  }
  let cur: unknown = context[root.key];
  for (let n = 1; n < segs.length; n++) {
    const seg = segs[n];
    const at = formatPath(segs.slice(0, n));
    if (cur === null || typeof cur !== 'object') {
      fail(`'${at}' is ${describe(cur)}, so it has no ${seg.kind === 'index' ? `index ${seg.index}` : `property '${seg.key}'`}`);
    }
    const obj = cur as Record<string, unknown>;
    if (Array.isArray(obj)) {
      if (seg.kind !== 'index') fail(`'${at}' is ${describe(obj)}, not an object: it has no property '${seg.key}'`);
      const { index } = seg as { index: number };
      if (index >= obj.length) fail(`'${at}': index ${index} is out of range (length ${obj.length})`);
      cur = obj[index];
      if (cur === undefined) fail(`'${at}' has no element ${index}`);
      continue;
    }
    const key = seg.kind === 'index' ? String(seg.index) : seg.key;
    if (!hasOwn(obj, key) || obj[key] === undefined) {
      if (n === 1 && root.key === 'steps') {
        const known = Object.keys(obj).filter((k) => obj[k] !== undefined);
        fail(`unknown step '${key}' (known: ${known.join(', ') || 'none'})`);
      }
      if (n === 1 && root.key === 'variables') fail(`unknown variable '${key}'`);
      if (seg.kind === 'index') fail(`'${at}' is ${describe(obj)}, not an array: it has no index ${seg.index}`);
      fail(`'${at}' has no property '${key}'`);
    }
    cur = obj[key];
  }
  return cur;
}

export function stringifyValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null) return 'null';
  if (typeof v === 'bigint') return v.toString();
  const json = JSON.stringify(v);
  return json === undefined ? String(v) : json;
}

type Part = { text: string } | { ref: string; segs: PathSegment[] };

/** Splits a string into literal text and references. */
function tokenize(s: string): Part[] {
  const parts: Part[] = [];
  let text = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\' && (s.startsWith('{{', i + 1) || s.startsWith('${', i + 1))) {
      text += s.slice(i + 1, i + 3);
      i += 3;
    } else if (c === '{' && s[i + 1] === '{') {
      const end = s.indexOf('}}', i + 2);
      if (end < 0) {
        text += s.slice(i);
        break;
      }
      const ref = s.slice(i + 2, end).trim();
      if (text) parts.push({ text });
      text = '';
      parts.push({ ref, segs: parseReference(ref) });
      i = end + 2;
    } else if (c === '$' && s[i + 1] === '{') {
      const m = VAR_SHORTHAND.exec(s.slice(i, i + 132));
      if (!m) {
        text += c;
        i++;
        continue;
      }
      if (text) parts.push({ text });
      text = '';
      parts.push({
        ref: `variables.${m[1]}`,
        segs: [
          { kind: 'key', key: 'variables' },
          { kind: 'key', key: m[1] },
        ],
      });
      i += m[0].length;
    } else {
      text += c;
      i++;
    }
  }
  if (text) parts.push({ text });
  return parts;
}

const mayContainTemplate = (s: string): boolean => s.includes('{{') || s.includes('${');

function resolveString(s: string, context: Record<string, unknown>): unknown {
  if (!mayContainTemplate(s)) return s;
  const parts = tokenize(s);
  if (parts.length === 1 && 'ref' in parts[0]) return lookup(parts[0].ref, parts[0].segs, context);
  let out = '';
  for (const p of parts) out += 'ref' in p ? stringifyValue(lookup(p.ref, p.segs, context)) : p.text;
  return out;
}

/**
 * Renders a string's templates as text (a value that is not a string JSON-encoded, as inside a
 * longer string). A reference that cannot be resolved goes to `onMissing` with its template_error,
 * which returns the text to use instead or throws; without it, the error is thrown.
 */
export function renderTemplateText(s: string, context: Record<string, unknown>, onMissing?: (ref: string, err: StepError) => string): string {
  if (!mayContainTemplate(s)) return s;
  let out = '';
  for (const p of tokenize(s)) {
    if (!('ref' in p)) {
      out += p.text;
      continue;
    }
    try {
      out += stringifyValue(lookup(p.ref, p.segs, context));
    } catch (err) {
      if (!onMissing || !(err instanceof StepError)) throw err;
      out += onMissing(p.ref, err);
    }
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Resolves every template in the strings of a JSON value (object keys are left alone) and returns a
 * new value; the input is not modified. Throws StepError('template_error') for a missing reference.
 */
export function resolveTemplates(value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value === 'string') return resolveString(value, context);
  if (Array.isArray(value)) return value.map((v) => resolveTemplates(v, context));
  if (isPlainObject(value)) {
    // fromEntries defines own properties, so a key named "__proto__" stays an ordinary key.
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveTemplates(v, context)]));
  }
  return value;
}

/**
 * Every reference in the strings of a JSON value, in order of appearance, without duplicates;
 * `${NAME}` is reported as `variables.NAME`. Throws a template_error for a malformed reference.
 */
export function findTemplateReferences(value: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      if (!mayContainTemplate(v)) return;
      for (const p of tokenize(v)) if ('ref' in p) found.add(p.ref);
    } else if (Array.isArray(v)) {
      v.forEach(walk);
    } else if (isPlainObject(v)) {
      Object.values(v).forEach(walk);
    }
  };
  walk(value);
  return [...found];
}

/** A reference found in a JSON value, with where it is written (keys and array indexes from the value's root). */
export type LocatedReference = { at: (string | number)[]; ref: string; segs: PathSegment[] } | { at: (string | number)[]; error: string };

/**
 * Every reference in the strings of a JSON value with the path of the string it is written in, in
 * document order; a malformed template is reported at its path instead of thrown (the job
 * validator reports them all at once).
 */
export function locateTemplateReferences(value: unknown): LocatedReference[] {
  const out: LocatedReference[] = [];
  const walk = (v: unknown, at: (string | number)[]): void => {
    if (typeof v === 'string') {
      if (!mayContainTemplate(v)) return;
      let parts: Part[];
      try {
        parts = tokenize(v);
      } catch (err) {
        out.push({ at, error: (err as Error).message });
        return;
      }
      for (const p of parts) if ('ref' in p) out.push({ at, ref: p.ref, segs: p.segs });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, [...at, i]));
    } else if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    }
  };
  walk(value, []);
  return out;
}
