/**
 * The operator's egress lists (VECRON_EGRESS_ALLOW / VECRON_EGRESS_DENY): comma- or space-separated
 * entries, each a CIDR range (`10.0.0.0/8`, `fd00::/8`), a single address, or a host-name glob
 * (`*.corp.example`, `db-??.internal`; `*` matches any characters, dots included, `?` one).
 */
import { type Cidr, parseCidr } from './address.ts';

export interface HostGlob {
  text: string;
  re: RegExp;
}

export interface EgressRules {
  cidrs: Cidr[];
  hosts: HostGlob[];
}

export const EMPTY_RULES: EgressRules = { cidrs: [], hosts: [] };

const HOST_GLOB = /^[a-z0-9*?_.-]+$/;

/** Lower-case, without a trailing dot or IPv6 brackets: the form host rules are matched against. */
export const normalizeHost = (host: string): string =>
  host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Parses a list; throws an Error naming the first entry that is neither a CIDR nor a host glob. */
export function parseEgressRules(raw: string): EgressRules {
  const rules: EgressRules = { cidrs: [], hosts: [] };
  for (const entry of raw.split(/[\s,]+/).filter(Boolean)) {
    const cidr = parseCidr(entry);
    if (cidr) {
      rules.cidrs.push(cidr);
      continue;
    }
    if (entry.includes('/') || entry.includes(':')) throw new Error(`'${entry}' is not a valid CIDR range or address`);
    const host = normalizeHost(entry);
    if (!HOST_GLOB.test(host)) throw new Error(`'${entry}' is neither a CIDR range nor a host name glob`);
    rules.hosts.push({ text: host, re: globToRegExp(host) });
  }
  return rules;
}
