/**
 * IP addresses as 16 bytes (IPv4 as its IPv4-mapped IPv6 form), CIDR ranges over them, and the
 * IPv4 address hidden in IPv6 forms that reach it (mapped, compatible, NAT64, 6to4), so one rule
 * such as 169.254.0.0/16 also catches `::ffff:169.254.169.254` and `64:ff9b::a9fe:a9fe`.
 */
import { isIP } from 'node:net';

export type Bytes = Uint8Array; // always 16 bytes

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function parseV4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

function parseV6(s: string): Bytes | null {
  let text = s.replace(/^\[|\]$/g, '');
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (!v4) return null;
    tail = v4;
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const group = (h: string) => (h === '' ? [] : h.split(':'));
  const head = group(halves[0]);
  const rest = halves.length === 2 ? group(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return null;
    const n = parseInt(groups[i], 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (tail.length) out.set(tail, 12);
  return out;
}

/** 16 bytes for an IPv4 or IPv6 literal (brackets and zone ids allowed), or null. */
export function parseIp(s: string): Bytes | null {
  const text = s.trim();
  if (isIP(text) === 4) {
    const v4 = parseV4(text);
    return v4 ? Uint8Array.from([...MAPPED_PREFIX, ...v4]) : null;
  }
  const inner = text.replace(/^\[|\]$/g, '');
  if (isIP(inner.split('%')[0]) === 6) return parseV6(inner);
  return null;
}

export const isIpLiteral = (s: string): boolean => parseIp(s) !== null;

const startsWith = (b: Bytes, prefix: number[]): boolean => prefix.every((x, i) => b[i] === x);

export function isMappedV4(b: Bytes): boolean {
  return startsWith(b, MAPPED_PREFIX);
}

/** Canonical text: dotted quad for IPv4 (and IPv4-mapped), compressed lower-case IPv6 otherwise. */
export function formatIp(b: Bytes): string {
  if (isMappedV4(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i] << 8) | b[i + 1]);
  // Longest run of zero groups (2 or more) becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

const mapped = (a: number, b: number, c: number, d: number): Bytes => Uint8Array.from([...MAPPED_PREFIX, a, b, c, d]);

/**
 * The IPv4 address an IPv6 address carries and reaches: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks), NAT64 (64:ff9b::/96 and
 * the local-use 64:ff9b:1::/48) and 6to4 (2002:aabb:ccdd::/16). Null for other addresses.
 */
export function embeddedV4(b: Bytes): Bytes | null {
  if (isMappedV4(b)) return b;
  const zeros12 = b.subarray(0, 12).every((x) => x === 0);
  if (zeros12 && !(b[12] === 0 && b[13] === 0 && b[14] === 0 && b[15] <= 1)) return mapped(b[12], b[13], b[14], b[15]);
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0])) return mapped(b[12], b[13], b[14], b[15]);
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, 0, 1])) return mapped(b[12], b[13], b[14], b[15]);
  if (b[0] === 0x20 && b[1] === 0x02) return mapped(b[2], b[3], b[4], b[5]);
  return null;
}

export interface Cidr {
  /** As written in the setting (for messages). */
  text: string;
  base: Bytes;
  /** Prefix length over the 16-byte form (an IPv4 /n is 96 + n). */
  bits: number;
}

/** `10.0.0.0/8`, `fe80::/10`, or a single address (a /32 or /128). Null when it is not one. */
export function parseCidr(text: string): Cidr | null {
  const [addr, len, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const base = parseIp(addr);
  if (!base) return null;
  const v4 = isIP(addr.trim()) === 4;
  const max = v4 ? 32 : 128;
  let n = max;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len)) return null;
    n = Number(len);
    if (n > max) return null;
  }
  return { text: text.trim(), base, bits: v4 ? 96 + n : n };
}

export function inCidr(ip: Bytes, c: Cidr): boolean {
  let bits = c.bits;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i] & mask) !== (c.base[i] & mask)) return false;
  }
  return true;
}
