/** Time zones are IANA names (`Asia/Ho_Chi_Minh`, `Europe/Berlin`, `UTC`), checked against the ICU
 * data Node ships with. Fixed offsets such as `+07:00` are rejected: croner cannot use them, and a
 * fixed offset silently ignores DST. */
export const DEFAULT_TIMEZONE = 'Asia/Ho_Chi_Minh';

const valid = new Set<string>();

export function isValidTimeZone(tz: unknown): tz is string {
  if (typeof tz !== 'string' || tz.trim() === '' || tz !== tz.trim() || /^[+-]/.test(tz)) return false;
  if (valid.has(tz)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    return false;
  }
  // Only valid names are cached, and there are only a few hundred of them.
  valid.add(tz);
  return true;
}

export function timeZoneProblem(tz: string): string {
  return `unknown time zone '${tz}' (use an IANA name such as '${DEFAULT_TIMEZONE}', 'Europe/Berlin' or 'UTC')`;
}
