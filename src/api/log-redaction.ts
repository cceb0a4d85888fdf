/**
 * What the API writes to its log about a request: the URL with credential-named query values
 * (`access_token`, `token`, `signature`, ...) as `***`, and no headers at all (Authorization,
 * Cookie and the webhook signature never reach a log line). Refused requests are logged the same.
 */
import type { FastifyRequest } from 'fastify';
import { isCredentialName } from '../engine/credentials.ts';

/** A request path with query string, credential-named values replaced by `***`. */
export function redactRequestUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url
    .slice(q + 1)
    .split('&')
    .map((p) => {
      const eq = p.indexOf('=');
      if (eq < 0) return p;
      let name = p.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        /* keep as sent */
      }
      return isCredentialName(name) ? `${p.slice(0, eq)}=***` : p;
    });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

export function serializeRequest(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: redactRequestUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}
