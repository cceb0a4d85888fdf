/**
 * time `{"op": "now"|"format"|"parse"|"add", "tz"?, ...}` (docs/abi.md, "time"): served inside the
 * worker (no I/O, no permission). Zones are IANA names (default Asia/Ho_Chi_Minh); calendar
 * arithmetic and local times follow the zone's rules, daylight-saving changes included (luxon, on
 * the platform's Intl time-zone data).
 *
 * Every answer that names an instant has the same shape: `{"epoch_ms", "iso"` (UTC, `Z`)`, "local"`
 * (ISO 8601 with the zone's offset)`, "tz", "offset_minutes"}`; format adds `"text"`.
 */
import { DateTime, FixedOffsetZone, IANAZone } from 'luxon';
import { IsoClock } from './iso-time.ts';
import { HostCallError, type HostFunction, type HostResponse, type WorkerHostFunction } from './types.ts';

export const DEFAULT_TZ = 'Asia/Ho_Chi_Minh';
export const TIME_OPS = ['now', 'format', 'parse', 'add'] as const;
const ADD_UNITS = ['years', 'months', 'weeks', 'days', 'hours', 'minutes', 'seconds', 'milliseconds'] as const;
/** Bound of one add amount (about 2,700 years of days): keeps results in the representable range. */
const MAX_AMOUNT = 1_000_000;
const MAX_TEXT = 200;

const bad = (message: string) => new HostCallError('bad_request', message);

/**
 * Zone names found valid. luxon's isValidZone builds an Intl.DateTimeFormat on every call (tens of
 * microseconds); a run asks for the same few zones again and again. Bounded: names are the guest's.
 */
const validZones = new Set<string>([DEFAULT_TZ]);
function isValidZone(tz: string): boolean {
  if (validZones.has(tz)) return true;
  if (!IANAZone.isValidZone(tz)) return false;
  if (validZones.size >= 1000) validZones.clear();
  validZones.add(tz);
  return true;
}

function zoneOf(request: Record<string, unknown>): string {
  const tz = request.tz;
  if (tz === undefined || tz === null) return DEFAULT_TZ;
  if (typeof tz !== 'string' || tz.length > 64 || !isValidZone(tz)) {
    throw bad(`tz must be an IANA time zone such as "Asia/Ho_Chi_Minh" or "UTC"; got ${JSON.stringify(tz)?.slice(0, 80)}`);
  }
  return tz;
}

function shape(dt: DateTime, tz: string): HostResponse {
  if (!dt.isValid) throw bad(`the result is not a valid time (${dt.invalidExplanation ?? dt.invalidReason})`);
  return { epoch_ms: dt.toMillis(), iso: dt.toUTC().toISO(), local: dt.toISO(), tz, offset_minutes: dt.offset };
}

/** The instant a request names: `epoch_ms` (a number) or `iso` (ISO 8601; without an offset it is local time in tz). */
function instantOf(request: Record<string, unknown>, tz: string): DateTime {
  const { epoch_ms: ms, iso } = request;
  if (ms !== undefined && iso !== undefined) throw bad('give either epoch_ms or iso, not both');
  if (typeof ms === 'number') {
    if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw bad('epoch_ms must be a finite number of milliseconds since 1970-01-01T00:00:00Z');
    return DateTime.fromMillis(ms, { zone: tz });
  }
  if (ms !== undefined) throw bad('epoch_ms must be a number');
  if (typeof iso === 'string' && iso.length <= MAX_TEXT) {
    const dt = DateTime.fromISO(iso, { zone: tz });
    if (!dt.isValid) throw bad(`iso is not an ISO 8601 time: ${dt.invalidExplanation ?? dt.invalidReason}`);
    return dt;
  }
  if (iso !== undefined) throw bad(`iso must be an ISO 8601 string of at most ${MAX_TEXT} characters`);
  throw bad('epoch_ms or iso is required');
}

function textField(request: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const v = request[field];
  if (v === undefined || v === null) {
    if (required) throw bad(`${field} is required`);
    return undefined;
  }
  if (typeof v !== 'string' || v === '' || v.length > MAX_TEXT) throw bad(`${field} must be a non-empty string of at most ${MAX_TEXT} characters`);
  return v;
}

function localeOf(request: Record<string, unknown>): string {
  const l = textField(request, 'locale', false) ?? 'en-US';
  try {
    if (Intl.DateTimeFormat.supportedLocalesOf([l]).length === 0) throw new Error('unsupported');
  } catch {
    throw bad(`locale must be a BCP 47 locale this server supports, such as "en-US" or "vi-VN"; got ${JSON.stringify(l)}`);
  }
  return l;
}

/**
 * The zone's offset at `ms`, cached per zone and quarter hour: luxon asks Intl for it on every call
 * (about 10 us), and `now` is the call a module makes most. A quarter hour is cached only when the
 * offset is the same at both of its ends (no zone changes offset twice within 15 minutes). The last
 * answer is kept apart too: a run asks for the same zone and quarter hour again and again.
 */
const QUARTER_HOUR = 900_000;
const offsets = new Map<string, number>();
let last = { tz: '', q: Number.NaN, offset: 0 };
export function offsetAt(tz: string, ms: number): number {
  const q = Math.floor(ms / QUARTER_HOUR);
  if (q === last.q && tz === last.tz) return last.offset;
  const key = `${tz}|${q}`;
  const hit = offsets.get(key);
  if (hit !== undefined) {
    last = { tz, q, offset: hit };
    return hit;
  }
  const zone = IANAZone.create(tz);
  const start = zone.offset(q * QUARTER_HOUR);
  if (start !== zone.offset((q + 1) * QUARTER_HOUR - 1)) return zone.offset(ms);
  if (offsets.size >= 10_000) offsets.clear();
  offsets.set(key, start);
  last = { tz, q, offset: start };
  return start;
}

/** `ms` in tz as luxon has it (the same instant and offset as `DateTime.fromMillis(ms).setZone(tz)`), at the offset already known. */
function luxonAt(tz: string, ms: number, offset: number): DateTime {
  // Offset 0 as a fixed zone is UTC itself, written `Z`; the zone's own form is `+00:00`.
  if (offset === 0) return DateTime.fromMillis(ms, { zone: tz });
  return DateTime.fromMillis(ms, { zone: FixedOffsetZone.instance(offset) });
}

/**
 * How luxon writes offset 0 in `tz`'s local time: `Z` for the names it takes as UTC itself (UTC,
 * GMT, ...), `+00:00` for a zone that is at offset 0 (Europe/London in winter). Asked of luxon once per zone.
 */
const zeroSuffixes = new Map<string, string>();
function zeroSuffix(tz: string): string {
  let s = zeroSuffixes.get(tz);
  if (s === undefined) {
    s = DateTime.fromMillis(0, { zone: tz }).toISO()?.endsWith('Z') ? 'Z' : '+00:00';
    if (zeroSuffixes.size >= 1000) zeroSuffixes.clear();
    zeroSuffixes.set(tz, s);
  }
  return s;
}

const utcClock = new IsoClock();
const localClock = new IsoClock();
const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
/** Instants whose UTC and local times both have four-digit years (the form Date#toISOString shares with luxon). */
const FAST_MIN_MS = Date.UTC(1000, 0, 2);
const FAST_MAX_MS = Date.UTC(9999, 11, 30);

/**
 * The answer of `{"op": "now"}` at `ms`: exactly what luxon answers (shape of the DateTime in tz),
 * built from Date#toISOString and the cached offset, because it is the call modules make most
 * and luxon takes tens of microseconds for it. Outside four-digit years, or at an offset that is
 * not whole minutes, luxon answers.
 */
export function nowAt(tz: string, ms: number): HostResponse {
  const offset = offsetAt(tz, ms);
  const localMs = ms + offset * 60_000;
  if (!Number.isInteger(offset) || ms < FAST_MIN_MS || ms > FAST_MAX_MS || localMs < FAST_MIN_MS || localMs > FAST_MAX_MS) {
    return shape(luxonAt(tz, ms, offset), tz);
  }
  const iso = utcClock.iso(ms);
  let local: string;
  if (offset === 0) local = iso.slice(0, 23) + zeroSuffix(tz);
  else {
    const a = Math.abs(offset);
    local = `${localClock.iso(localMs).slice(0, 23)}${offset < 0 ? '-' : '+'}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`;
  }
  return { epoch_ms: ms, iso, local, tz, offset_minutes: offset };
}

export function serveTime(request: Record<string, unknown>): HostResponse {
  const op = request.op;
  const tz = zoneOf(request);
  switch (op) {
    case 'now':
      return nowAt(tz, Date.now());
    case 'format': {
      const dt = instantOf(request, tz);
      const format = textField(request, 'format', false);
      const locale = localeOf(request);
      const text = format === undefined ? dt.toISO() : dt.toFormat(format, { locale });
      return { ...shape(dt, tz), text };
    }
    case 'parse': {
      const text = textField(request, 'text', true)!;
      const format = textField(request, 'format', false);
      const dt = format === undefined ? DateTime.fromISO(text, { zone: tz }) : DateTime.fromFormat(text, format, { zone: tz, locale: localeOf(request) });
      if (!dt.isValid)
        throw bad(`text does not match ${format === undefined ? 'ISO 8601' : `the format "${format}"`}: ${dt.invalidExplanation ?? dt.invalidReason}`);
      return shape(dt, tz);
    }
    case 'add': {
      const dt = instantOf(request, tz);
      const amounts: Partial<Record<(typeof ADD_UNITS)[number], number>> = {};
      for (const unit of ADD_UNITS) {
        const n = request[unit];
        if (n === undefined) continue;
        if (typeof n !== 'number' || !Number.isInteger(n) || Math.abs(n) > MAX_AMOUNT)
          throw bad(`${unit} must be an integer from -${MAX_AMOUNT} to ${MAX_AMOUNT}`);
        amounts[unit] = n;
      }
      return shape(dt.plus(amounts), tz);
    }
    default:
      throw bad(`op must be one of ${TIME_OPS.join(', ')}; got ${JSON.stringify(op)?.slice(0, 60)}`);
  }
}

export const timeWorker: WorkerHostFunction = {
  name: 'time',
  serve: serveTime,
  target(request) {
    const op = typeof request.op === 'string' ? request.op.slice(0, 20) : '?';
    const tz = typeof request.tz === 'string' ? request.tz.slice(0, 64) : DEFAULT_TZ;
    return `${op} ${tz}`;
  },
};

/** The same on the main thread, so a dispatch outside a worker (tests, tools) serves time too. */
export const timeHost: HostFunction = {
  name: 'time',
  async call(request, ctx) {
    ctx.target(timeWorker.target(request) ?? 'time');
    return serveTime(request);
  },
};
