/** How wasm-cli talks to a vecron server: base URL and token from options or the environment. */
import { CliError } from './errors.ts';

export { CliError };

export interface ServerOptions {
  /** `--url` (the seed's name) or `--server`. */
  url?: string;
  server?: string;
  token?: string;
}

export function serverOf(o: ServerOptions): { base: string; headers: Record<string, string> } {
  const base = (o.url ?? o.server ?? process.env.VECRON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const token = o.token ?? process.env.VECRON_TOKEN;
  if (!token) throw new CliError('no API token: pass --token or set VECRON_TOKEN (vecron token create --role operator prints one)');
  return { base, headers: { authorization: `Bearer ${token}` } };
}

/** Turns a vecron error answer into one line a user can act on. */
export async function failure(res: Response, what: string): Promise<CliError> {
  let detail = `${res.status} ${res.statusText}`;
  try {
    const body: any = await res.json();
    if (body?.error) detail = `${body.error.code}: ${body.error.message}`;
  } catch {
    /* not JSON */
  }
  // What the user does next: the two answers that say the token is the problem.
  const hint =
    res.status === 401
      ? ' (check --token or VECRON_TOKEN: `vecron token create --role operator` prints a new one)'
      : res.status === 403
        ? " (the token's role may not do this: ask an admin for an operator token, or an admin for the permissions)"
        : '';
  return new CliError(`${what} failed: ${detail}${hint}`);
}

export async function call(url: string, init: RequestInit, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`${what} failed: cannot reach ${new URL(url).origin} (${cause?.code ?? cause?.message ?? (err as Error).message})`);
  }
  if (!res.ok) throw await failure(res, what);
  return res;
}
