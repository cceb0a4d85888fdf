/**
 * Which destinations are "internal" for the `network:external` permission: a host call to any other
 * address needs `network:external` for the host name in addition to its http permission.
 *
 * Internal by default: loopback (127.0.0.0/8, ::1), the private ranges (10.0.0.0/8, 172.16.0.0/12,
 * 192.168.0.0/16) and IPv6 unique-local addresses (fc00::/7), also when an IPv6 form carries such
 * an IPv4 address (::ffff:10.1.2.3, NAT64, 6to4). Link-local and metadata addresses never get here:
 * the egress policy refuses them first. An operator whose internal services live elsewhere (e.g.
 * the shared 100.64.0.0/10 range) sets the list (configureInternalNetworks).
 */
import { type Cidr, embeddedV4, inCidr, parseCidr, parseIp } from '../../egress/address.ts';

export const DEFAULT_INTERNAL_NETWORKS = '127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7';

const parse = (list: string): Cidr[] =>
  list
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((c) => {
      const cidr = parseCidr(c);
      if (!cidr) throw new Error(`'${c}' is not a CIDR range or an address`);
      return cidr;
    });

let internal: Cidr[] = parse(DEFAULT_INTERNAL_NETWORKS);

/** Throws, naming the entry, when `list` is not a list of CIDR ranges and addresses (the config's check). */
export function checkInternalNetworks(list: string): void {
  parse(list);
}

/** Sets the internal ranges (comma- or space-separated CIDRs); null restores the default. Throws on a bad entry. */
export function configureInternalNetworks(list: string | null): void {
  internal = parse(list ?? DEFAULT_INTERNAL_NETWORKS);
}

/** True when `address` (an IP literal) is in an internal range, itself or the IPv4 address it carries. */
export function isInternalAddress(address: string): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  const v4 = embeddedV4(ip);
  return internal.some((c) => inCidr(ip, c) || (v4 !== null && inCidr(v4, c)));
}
