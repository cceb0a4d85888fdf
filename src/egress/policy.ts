/**
 * The one egress policy: every connection a step opens on a job's behalf (http, database, sftp, and
 * the WASM host functions) asks this module first. A destination is checked by name (host globs,
 * cloud metadata names), then resolved, and every address is checked (default-refused classes,
 * the operator's CIDR lists, vecron's own listen address). The socket is then connected to the
 * checked address itself (see connect.ts), so a second DNS answer cannot swap it (DNS rebinding).
 *
 * Order: vecron's own listen address is always refused; an address in VECRON_EGRESS_ALLOW is
 * allowed; an address in VECRON_EGRESS_DENY is refused unless the host name matches an ALLOW glob;
 * an address of a default-refused class (link-local, metadata, multicast, unspecified, broadcast,
 * and the IPv4-mapped/compatible/NAT64/6to4 forms of those) is refused; anything else is allowed
 * (private and loopback ranges included: internal services are the normal target in a bank).
 */
import { lookup as dnsLookup } from 'node:dns';
import { networkInterfaces } from 'node:os';
import { StepError } from '../engine/step-error.ts';
import { type Bytes, type Cidr, embeddedV4, formatIp, inCidr, isMappedV4, parseCidr, parseIp } from './address.ts';
import { EMPTY_RULES, type EgressRules, normalizeHost, parseEgressRules } from './rules.ts';

export const ALLOW_SETTING = 'VECRON_EGRESS_ALLOW';
export const DENY_SETTING = 'VECRON_EGRESS_DENY';

/** Address classes refused unless VECRON_EGRESS_ALLOW lists them. */
const DEFAULT_REFUSED: { cidr: Cidr; reason: string }[] = (
  [
    ['0.0.0.0/8', 'unspecified address'],
    ['::/128', 'unspecified address'],
    ['169.254.0.0/16', 'link-local address (cloud metadata lives at 169.254.169.254)'],
    ['fe80::/10', 'link-local address'],
    ['224.0.0.0/4', 'multicast address'],
    ['ff00::/8', 'multicast address'],
    ['255.255.255.255/32', 'broadcast address'],
    ['100.100.100.200/32', 'cloud metadata address (Alibaba Cloud)'],
    ['192.0.0.192/32', 'cloud metadata address (Oracle Cloud)'],
    ['fd00:ec2::254/128', 'cloud metadata address (AWS, IPv6)'],
  ] as const
).map(([c, reason]) => ({ cidr: parseCidr(c)!, reason }));

/** Host names of cloud metadata services, refused before any DNS lookup. */
export const METADATA_HOSTS = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'metadata.azure.internal',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
]);

export interface EgressSettings {
  allow: EgressRules;
  deny: EgressRules;
}

let settings: EgressSettings = { allow: EMPTY_RULES, deny: EMPTY_RULES };

/** Sets the operator's lists (at start, from the config; tests set their own). */
export function configureEgress(s: { allow?: string | EgressRules | null; deny?: string | EgressRules | null }): void {
  const rules = (r: string | EgressRules | null | undefined): EgressRules => (r == null ? EMPTY_RULES : typeof r === 'string' ? parseEgressRules(r) : r);
  settings = { allow: rules(s.allow), deny: rules(s.deny) };
  allowedLiterals.clear();
}

export function egressSettings(): EgressSettings {
  return settings;
}

/* ------------------------------------------------------------------------------------------------
 * vecron's own listen addresses
 * ---------------------------------------------------------------------------------------------- */

interface OwnAddress {
  cidr: Cidr;
  port: number;
}
const own = new Set<OwnAddress>();

/**
 * Registers an address this process's API listens on (a job must not call vecron's own API with
 * the worker's network position). A wildcard host (0.0.0.0, ::) covers loopback and every local
 * interface address. Returns the function that removes it again (when the server closes).
 */
export function registerOwnListenAddress(host: string, port: number): () => void {
  const added: OwnAddress[] = [];
  const add = (c: string) => {
    const cidr = parseCidr(c);
    if (cidr) added.push({ cidr, port });
  };
  const h = normalizeHost(host);
  if (h === '0.0.0.0' || h === '::' || h === '') {
    add('127.0.0.0/8');
    add('::1');
    add('0.0.0.0/8');
    add('::/128');
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) add(a.address.split('%')[0]);
  } else if (h === 'localhost') {
    add('127.0.0.0/8');
    add('::1');
  } else {
    add(h);
    const b = parseIp(h);
    if (b && isMappedV4(b) && b[12] === 127) add('127.0.0.0/8');
  }
  for (const a of added) own.add(a);
  allowedLiterals.clear();
  return () => {
    for (const a of added) own.delete(a);
    allowedLiterals.clear();
  };
}

/**
 * The policy as plain data, for a worker thread: its own copy of this module starts with no lists
 * and no listen addresses, and must decide exactly as this thread does (the WASM host functions
 * served in a guest's worker). Sent with each run that may use it; applied when it changed.
 */
export interface EgressSnapshot {
  allow: string;
  deny: string;
  own: { cidr: string; port: number }[];
}
const rulesText = (r: EgressRules): string => [...r.cidrs.map((c) => c.text), ...r.hosts.map((h) => h.text)].join(',');
export function egressSnapshot(): EgressSnapshot {
  return { allow: rulesText(settings.allow), deny: rulesText(settings.deny), own: [...own].map((o) => ({ cidr: o.cidr.text, port: o.port })) };
}
let applied = '';
/** Makes this thread's policy the one of the snapshot (a no-op when it is the one applied last). */
export function applyEgressSnapshot(s: EgressSnapshot): void {
  const key = JSON.stringify(s);
  if (key === applied) return;
  configureEgress({ allow: s.allow, deny: s.deny });
  own.clear();
  for (const o of s.own) {
    const cidr = parseCidr(o.cidr);
    if (cidr) own.add({ cidr, port: o.port });
  }
  allowedLiterals.clear();
  applied = key;
}

/* ------------------------------------------------------------------------------------------------
 * Decisions
 * ---------------------------------------------------------------------------------------------- */

export interface Refusal {
  reason: string;
  /** The setting that refused it or that would permit it. */
  setting: string;
  rule?: string;
}

/** The step error for a refused destination; never retried (the policy will not change by itself). */
export class EgressDenied extends StepError {
  constructor(
    readonly host: string,
    readonly address: string | null,
    readonly port: number,
    readonly refusal: Refusal,
  ) {
    const where = address && address !== host ? `${host} (${address}):${port}` : `${host}:${port}`;
    super(
      'egress_denied',
      `egress policy refused the connection to ${where}: ${refusal.reason}` + (refusal.rule ? ` (${refusal.rule})` : '') + `; setting: ${refusal.setting}`,
      { retryable: false, details: { host, address, port, reason: refusal.reason, rule: refusal.rule ?? null, setting: refusal.setting } },
    );
  }
}

const matchAny = (ip: Bytes, cidrs: Cidr[]): Cidr | undefined => cidrs.find((c) => inCidr(ip, c));

/** The forms an address is judged under: itself and the IPv4 address it carries, if any. */
function forms(ip: Bytes): Bytes[] {
  const v4 = embeddedV4(ip);
  return v4 && v4 !== ip ? [ip, v4] : [ip];
}

/** Null when the name may be connected to (its addresses are checked after resolution). */
export function checkHostName(host: string): Refusal | null {
  const h = normalizeHost(host);
  if (settings.allow.hosts.some((g) => g.re.test(h))) return null;
  const denied = settings.deny.hosts.find((g) => g.re.test(h));
  if (denied) return { reason: 'host name is on the deny list', setting: DENY_SETTING, rule: denied.text };
  if (METADATA_HOSTS.has(h)) {
    return { reason: 'cloud metadata host name', setting: `refused by default; list the name in ${ALLOW_SETTING} to permit it` };
  }
  return null;
}

/** Null when `address:port` (reached through the name `host`) may be connected to. */
export function checkAddress(address: string, port: number, host = address): Refusal | null {
  const ip = parseIp(address);
  if (!ip) return { reason: `'${address}' is not an IP address`, setting: 'egress policy' };
  const all = forms(ip);
  for (const o of own) {
    if (o.port === port && all.some((f) => inCidr(f, o.cidr))) {
      return { reason: "vecron's own API listen address", setting: 'HOST/PORT (always refused: call the API from outside the job)' };
    }
  }
  for (const f of all) {
    const allowed = matchAny(f, settings.allow.cidrs);
    if (allowed) return null;
  }
  const hostAllowed = settings.allow.hosts.some((g) => g.re.test(normalizeHost(host)));
  if (!hostAllowed) {
    for (const f of all) {
      const denied = matchAny(f, settings.deny.cidrs);
      if (denied) return { reason: 'address is on the deny list', setting: DENY_SETTING, rule: denied.text };
    }
  }
  for (const f of all) {
    const hit = DEFAULT_REFUSED.find((d) => inCidr(f, d.cidr));
    if (hit) {
      const mappedNote = f !== ip ? ` carried by ${formatIp(ip)}` : '';
      return {
        reason: hit.reason + (mappedNote ? ` (${formatIp(f)}${mappedNote})` : ''),
        rule: hit.cidr.text,
        setting: `refused by default; add the address to ${ALLOW_SETTING} to permit it`,
      };
    }
  }
  return null;
}

export interface EgressTarget {
  host: string;
  address: string;
  family: 4 | 6;
  port: number;
}

/**
 * Literal addresses the policy allowed, by port and host as given: a module calls the same few
 * addresses call after call, and the verdict depends only on the address, the port, the operator's
 * lists and vecron's own listen addresses, so a change of either clears it. Refusals are not kept
 * (each one is judged, and reported, again).
 */
const allowedLiterals = new Map<string, EgressTarget>();
const MAX_ALLOWED_LITERALS = 1024;

const familyOf = (address: string): 4 | 6 => (isMappedV4(parseIp(address)!) && !address.includes(':') ? 4 : 6);

/** Checks a literal address or a name before resolution; throws EgressDenied. Returns the literal's target, or null for a name. */
export function checkBeforeResolution(host: string, port: number): EgressTarget | null {
  const key = `${port} ${host}`;
  const hit = allowedLiterals.get(key);
  if (hit !== undefined) return hit;
  const h = normalizeHost(host);
  const ip = parseIp(h);
  if (ip) {
    const r = checkAddress(h, port, h);
    if (r) throw new EgressDenied(h, formatIp(ip), port, r);
    const target: EgressTarget = Object.freeze({ host: h, address: h, family: familyOf(h), port });
    if (allowedLiterals.size >= MAX_ALLOWED_LITERALS) allowedLiterals.clear();
    allowedLiterals.set(key, target);
    return target;
  }
  const r = checkHostName(h);
  if (r) throw new EgressDenied(h, null, port, r);
  return null;
}

/**
 * Resolves `host` and returns the first address the policy allows (the one to connect to); throws
 * EgressDenied when the name or every address it resolves to is refused, and the resolver's error
 * (ENOTFOUND, ...) when it does not resolve.
 */
export async function resolveEgress(host: string, port: number): Promise<EgressTarget> {
  const literal = checkBeforeResolution(host, port);
  if (literal) return literal;
  const h = normalizeHost(host);
  const addrs = await new Promise<{ address: string; family: number }[]>((resolve, reject) =>
    dnsLookup(h, { all: true, verbatim: true }, (err, a) => (err ? reject(err) : resolve(a))),
  );
  let first: { address: string; refusal: Refusal } | null = null;
  for (const a of addrs) {
    const r = checkAddress(a.address, port, h);
    if (!r) return { host: h, address: a.address, family: a.family === 6 ? 6 : 4, port };
    first ??= { address: a.address, refusal: r };
  }
  if (first) throw new EgressDenied(h, first.address, port, first.refusal);
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND', hostname: h });
}

/**
 * A `lookup` for net.connect / tls.connect (and undici's connector): resolves through the policy,
 * so the socket connects to exactly the address that was checked. Literal addresses never reach a
 * lookup: connect.ts checks them before connecting.
 */
export function egressLookup(port: number) {
  return (hostname: string, options: { all?: boolean } | number | undefined, callback: (err: Error | null, address: any, family?: number) => void): void => {
    resolveEgress(hostname, port).then(
      (t) => {
        if (typeof options === 'object' && options?.all) callback(null, [{ address: t.address, family: t.family }]);
        else callback(null, t.address, t.family);
      },
      (err) => callback(err, undefined),
    );
  };
}

/** The EgressDenied somewhere in an error's cause chain (fetch wraps socket errors), or null. */
export function egressDeniedIn(err: unknown): EgressDenied | null {
  for (let e: any = err, i = 0; e && i < 8; e = e.cause, i++) if (e instanceof EgressDenied) return e;
  return null;
}

/* ------------------------------------------------------------------------------------------------
 * Save-time checks (no DNS: names are checked, literal addresses fully)
 * ---------------------------------------------------------------------------------------------- */

/** A message when the policy refuses this literal host (no templates in it), else null. */
export function egressHostProblem(host: string, port: number): string | null {
  try {
    checkBeforeResolution(host, port);
    if (normalizeHost(host) === 'localhost') {
      const r = checkAddress('127.0.0.1', port, 'localhost');
      if (r) throw new EgressDenied('localhost', '127.0.0.1', port, r);
    }
    return null;
  } catch (err) {
    if (err instanceof EgressDenied) return err.message;
    throw err;
  }
}

/** A message when the policy refuses the host of this literal http(s) URL, else null. */
export function egressUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null; // the URL check reports it
  }
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return egressHostProblem(u.hostname, port);
}
