/**
 * Names that carry credentials. Request and response headers and query parameters with such a name
 * are shown as `***` in stored output whatever their value: the value may be a transformed secret
 * (a Basic header is base64 of `user:password`, a signature a hash of it) that no masking by value
 * can recognise.
 */
import { MASK } from './masking.ts';

const CREDENTIAL_NAME = /token|key|secret|passw|pwd|signature|credential|session|cookie|^auth|^proxy-auth|^(sig|code|pass)$/i;

export const isCredentialName = (name: string): boolean => CREDENTIAL_NAME.test(name);

/** A copy of a header record with every credential-named header's value replaced by `***`. */
export function redactHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    Object.defineProperty(out, k, { value: isCredentialName(k) ? MASK : v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The URL without userinfo, with the values of credential-named query parameters replaced by `***`. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(invalid URL)';
  }
  u.username = '';
  u.password = '';
  if (u.search) {
    const parts = u.search
      .slice(1)
      .split('&')
      .map((p) => {
        const eq = p.indexOf('=');
        const name = eq < 0 ? p : p.slice(0, eq);
        let decoded = name;
        try {
          decoded = decodeURIComponent(name.replace(/\+/g, ' '));
        } catch {
          /* keep */
        }
        return eq >= 0 && isCredentialName(decoded) ? `${name}=${MASK}` : p;
      });
    u.search = `?${parts.join('&')}`;
  }
  return u.toString();
}

/**
 * An executor may return an output whose stored form differs from what later steps see: a login
 * step's `set-cookie` or `x-auth-token` header must reach the next step, but not the execution
 * record that viewers read. The stored form hangs off the output under this symbol (not JSON, so
 * it never travels by itself); the engine stores it (masked) instead of the output.
 */
export const STORED_FORM = Symbol('vecron.storedForm');

export function withStoredForm<T extends object>(output: T, stored: unknown): T {
  Object.defineProperty(output, STORED_FORM, { value: stored, enumerable: false });
  return output;
}

/** What to store for an output: its stored form when the executor gave one, else the output. */
export function storedFormOf(output: unknown): unknown {
  return output !== null && typeof output === 'object' && STORED_FORM in output ? (output as any)[STORED_FORM] : output;
}
