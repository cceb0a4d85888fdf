/**
 * Masks secret values in anything that leaves the engine (step outputs, errors, logs, events): every
 * occurrence of a secret inside a string becomes `***`. Besides the plain value, its JSON-escaped
 * and URL-encoded forms are masked too (a secret echoed in a JSON text or a query string).
 */
export const MASK = '***';

/** Secrets shorter than this are not masked (masking "a" everywhere would destroy every output). */
export const MIN_MASKED_LENGTH = 4;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function variants(secret: string): string[] {
  const out = [secret];
  const json = JSON.stringify(secret).slice(1, -1);
  if (json !== secret) out.push(json);
  const url = encodeURIComponent(secret);
  if (url !== secret) out.push(url);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export type Masker = (value: unknown) => unknown;

/**
 * Returns a function that deep-copies a JSON value with every secret inside its strings (values and
 * object keys) replaced by `***`, longest secrets first. Without secrets it returns values unchanged.
 */
export function createMasker(secretValues: readonly string[]): Masker {
  const needles = [
    ...new Set(
      secretValues
        .filter((s): s is string => typeof s === 'string' && s.length >= MIN_MASKED_LENGTH)
        .flatMap(variants),
    ),
  ].sort((a, b) => b.length - a.length);
  if (needles.length === 0) return (value) => value;

  // Alternation tries the alternatives in order: longest first, so a secret that contains another
  // one is masked as a whole.
  const re = new RegExp(needles.map(escapeRegExp).join('|'), 'g');
  const maskString = (s: string): string => (s.length < MIN_MASKED_LENGTH ? s : s.replace(re, MASK));
  const mask = (v: unknown): unknown => {
    if (typeof v === 'string') return maskString(v);
    if (Array.isArray(v)) return v.map(mask);
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [maskString(k), mask(x)]));
    return v;
  };
  return mask;
}
