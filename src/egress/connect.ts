/**
 * Sockets that obey the egress policy: a literal address is checked before connecting, a name is
 * resolved through the policy's lookup, so the socket connects to the address that was checked.
 * A refused destination never sees a SYN.
 */
import { Socket, type NetConnectOpts } from 'node:net';
import { buildConnector } from 'undici';
import { checkBeforeResolution, egressLookup } from './policy.ts';
import { normalizeHost } from './rules.ts';

/** A net.Socket whose connect() goes through the policy (for drivers that call socket.connect(port, host)). */
export class EgressSocket extends Socket {
  override connect(...args: any[]): this {
    let port: number;
    let host: string;
    let listener: (() => void) | undefined;
    if (typeof args[0] === 'object' && args[0] !== null) {
      port = Number(args[0].port);
      host = args[0].host ?? 'localhost';
      listener = args[1];
    } else {
      port = Number(args[0]);
      host = typeof args[1] === 'string' ? args[1] : 'localhost';
      listener = typeof args[1] === 'function' ? args[1] : args[2];
    }
    try {
      const literal = checkBeforeResolution(host, port);
      const opts: NetConnectOpts = literal
        ? { port, host: literal.address }
        : { port, host: normalizeHost(host), lookup: egressLookup(port) as any, autoSelectFamily: false };
      return super.connect(opts, listener);
    } catch (err) {
      process.nextTick(() => this.destroy(err as Error));
      return this;
    }
  }
}

/** A connecting socket to host:port through the policy; a refusal arrives as its 'error' event. */
export function egressConnect(host: string, port: number): Socket {
  return new EgressSocket().connect(port, host);
}

type Connector = ReturnType<typeof buildConnector>;

/**
 * An undici connector (for `new Agent({ connect })`) whose every connection, redirects included,
 * passes the policy: literal hosts are checked here, names through the policy's lookup.
 */
export function egressConnector(options: buildConnector.BuildOptions = {}): Connector {
  const lookups = new Map<number, ReturnType<typeof egressLookup>>();
  const byPort = (port: number) => {
    let l = lookups.get(port);
    if (!l) lookups.set(port, (l = egressLookup(port)));
    return l;
  };
  const connectors = new Map<number, Connector>();
  return ((opts, callback) => {
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    try {
      checkBeforeResolution(opts.hostname, port);
    } catch (err) {
      callback(err as Error, null);
      return;
    }
    let c = connectors.get(port);
    if (!c) connectors.set(port, (c = buildConnector({ ...options, lookup: byPort(port), autoSelectFamily: false } as any)));
    return c(opts, callback);
  }) as Connector;
}
