/**
 * Masks secret values in anything that leaves the engine (step outputs, errors, logs, events): every
 * occurrence of a secret inside a string becomes `***`. This is the second line of defence: the
 * executors record what they sent from the config before secret substitution (ctx.shownConfig),
 * and this pass catches a secret that comes back another way (an upstream echoing it). Besides the
 * plain value it masks the forms a secret commonly travels in: JSON-escaped, URL-encoded
 * (encodeURIComponent, encodeURI, a URL's path and query, application/x-www-form-urlencoded), base64 and base64url (at each of the
 * three byte alignments, so inside a longer encoded text such as a Basic header too), hex, and the
 * hex/base64 SHA-256, SHA-1 and MD5 digests of it.
 */
import { createHash } from 'node:crypto';

export const MASK = '***';

/** Secrets shorter than this are not masked (masking "a" everywhere would destroy every output). */
export const MIN_MASKED_LENGTH = 4;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Encoded fragments shorter than this are not masked (too likely to occur by chance). */
const MIN_ENCODED_LENGTH = 6;

/**
 * The base64 characters that depend only on the secret's bytes when it starts at byte offset 0, 1
 * or 2 of a longer encoded text: the edges, which mix in neighbouring bytes, are cut off.
 */
function base64Fragments(bytes: Buffer, alphabet: 'base64' | 'base64url'): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const enc = Buffer.concat([Buffer.alloc(offset), bytes]).toString(alphabet);
    const start = Math.ceil((offset * 8) / 6);
    const end = Math.floor(((offset + bytes.length) * 8) / 6);
    out.push(enc.slice(start, end));
  }
  return out;
}

function variants(secret: string): string[] {
  const out = [secret];
  out.push(JSON.stringify(secret).slice(1, -1));
  out.push(encodeURIComponent(secret));
  out.push(new URLSearchParams([['', secret]]).toString().slice(1));
  out.push(encodeURI(secret));
  // As a URL parser writes it into a path or a query string (what an upstream echoes as its URL).
  for (const f of [(x: string) => new URL(`http://h/${x}`).pathname.slice(1), (x: string) => new URL(`http://h/?${x}`).search.slice(1)]) {
    try {
      out.push(f(secret));
    } catch {
      /* not URL text */
    }
  }
  const bytes = Buffer.from(secret, 'utf8');
  const hex = bytes.toString('hex');
  const encoded = [...base64Fragments(bytes, 'base64'), ...base64Fragments(bytes, 'base64url'), hex, hex.toUpperCase()];
  for (const alg of ['sha256', 'sha1', 'md5']) {
    const d = createHash(alg).update(bytes).digest();
    encoded.push(d.toString('hex'), d.toString('hex').toUpperCase(), d.toString('base64').replace(/=+$/, ''), d.toString('base64url'));
  }
  out.push(...encoded.filter((e) => e.length >= MIN_ENCODED_LENGTH));
  return [...new Set(out)];
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
  const needles = [...new Set(secretValues.filter((s): s is string => typeof s === 'string' && s.length >= MIN_MASKED_LENGTH).flatMap(variants))].sort(
    (a, b) => b.length - a.length,
  );
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
