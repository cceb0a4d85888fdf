/**
 * A readable difference of two JSON values: one line per place where they differ, named by its
 * JSON path (`$.customers[0].tier: expected "gold", got "silver"`), so a failing test case says
 * what to fix without printing both documents.
 */
const show = (v: unknown): string => (v === undefined ? '(missing)' : JSON.stringify(v));
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const key = (path: string, k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`);

export function jsonDiff(expected: unknown, actual: unknown, path = '$', out: string[] = [], max = 20): string[] {
  if (out.length >= max) return out;
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) out.push(`${path}: expected ${expected.length} item(s), got ${actual.length}`);
    for (let i = 0; i < Math.min(expected.length, actual.length); i++) jsonDiff(expected[i], actual[i], `${path}[${i}]`, out, max);
    for (let i = actual.length; i < expected.length && out.length < max; i++) out.push(`${path}[${i}]: expected ${show(expected[i])}, missing`);
    for (let i = expected.length; i < actual.length && out.length < max; i++) out.push(`${path}[${i}]: unexpected ${show(actual[i])}`);
    return out;
  }
  if (isObject(expected) && isObject(actual)) {
    for (const k of Object.keys(expected)) {
      if (!Object.hasOwn(actual, k)) out.push(`${key(path, k)}: expected ${show(expected[k])}, missing`);
      else jsonDiff(expected[k], actual[k], key(path, k), out, max);
      if (out.length >= max) return out;
    }
    for (const k of Object.keys(actual)) if (!Object.hasOwn(expected, k) && out.length < max) out.push(`${key(path, k)}: unexpected ${show(actual[k])}`);
    return out;
  }
  if (JSON.stringify(expected) !== JSON.stringify(actual)) out.push(`${path}: expected ${show(expected)}, got ${show(actual)}`);
  return out;
}
