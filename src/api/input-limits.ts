/**
 * Bounds on what a request may hold, checked before the body is parsed or right after: nesting
 * depth and member count of JSON (a 100,000-deep array overflowed the stack of every recursive
 * walker; 2.5 M keys took the embedded database out of memory), and text that PostgreSQL cannot
 * store or that is not Unicode (NUL characters, lone UTF-16 surrogates), refused with 400 and the
 * path of the field.
 */
import type { FastifyInstance } from 'fastify';
import { VecronError } from '../errors.ts';

export interface JsonLimits {
  maxDepth: number;
  maxKeys: number;
}

/**
 * Scans JSON text without parsing it: throws validation_failed when arrays/objects nest deeper than
 * `maxDepth` or when the text holds more than `maxKeys` members (object keys plus array elements,
 * counted by their separators). Linear, no recursion, no allocation.
 */
export function checkJsonShape(text: string, limits: JsonLimits): void {
  let depth = 0;
  let members = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > limits.maxDepth) {
        throw new VecronError('validation_failed', `the JSON body nests deeper than ${limits.maxDepth} levels (VECRON_JSON_MAX_DEPTH)`, {
          problems: [{ path: '', message: `nesting deeper than ${limits.maxDepth} levels` }],
        });
      }
    } else if (c === 125 || c === 93) depth--;
    else if (c === 58 /* : */ || c === 44 /* , */) {
      if (++members > limits.maxKeys) {
        throw new VecronError('validation_failed', `the JSON body has more than ${limits.maxKeys} keys and elements (VECRON_JSON_MAX_KEYS)`, {
          problems: [{ path: '', message: `more than ${limits.maxKeys} keys and elements` }],
        });
      }
    }
  }
}

const describePath = (base: string, key: string | number): string =>
  typeof key === 'number' ? `${base}[${key}]` : /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key) ? (base ? `${base}.${key}` : key) : `${base}[${JSON.stringify(key)}]`;

function textProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain NUL characters (\\u0000)';
  if (!(s as string & { isWellFormed(): boolean }).isWellFormed()) return 'must be valid Unicode text (it holds a lone UTF-16 surrogate)';
  return null;
}

/** The first string (value or key) of `value` holding NUL or a lone surrogate: its path and why. Iterative. */
export function findBadText(value: unknown, root = ''): { path: string; message: string } | null {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const m = textProblem(v);
      if (m) return { path, message: m };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], describePath(path, i)]);
    } else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      for (const [k, x] of Object.entries(v)) {
        const at = describePath(path, k);
        const m = textProblem(k);
        if (m) return { path: at, message: `key ${m.replace(/^must/, 'must')}` };
        stack.push([x, at]);
      }
    }
  }
  return null;
}

/** Throws validation_failed naming the field when `value` holds text that cannot be stored. */
export function assertStorableText(value: unknown, root = ''): void {
  const bad = findBadText(value, root);
  if (bad) {
    throw new VecronError('validation_failed', `request is invalid: ${bad.path || '(body)'}: ${bad.message}`, { problems: [bad] });
  }
}

/**
 * Installs the JSON body parser with the shape check before parsing (prototype-poisoning keys
 * stay refused, as with Fastify's default parser) and the text check of body, query string and
 * path parameters before validation, for every route.
 */
export function installInputLimits(app: FastifyInstance, limits: JsonLimits): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    try {
      checkJsonShape(body as string, limits);
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    parseJson(req, body as string, done);
  });
  app.addHook('preValidation', async (req) => {
    assertStorableText(req.params, 'params');
    assertStorableText(req.query, 'querystring');
    if (req.body !== undefined && !Buffer.isBuffer(req.body)) assertStorableText(req.body);
  });
}
