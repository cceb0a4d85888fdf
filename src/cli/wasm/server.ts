/** How wasm-cli talks to a vecron server: base URL and token from options or the environment. */
export interface ServerOptions {
  server?: string;
  token?: string;
}

export class CliError extends Error {}

export function serverOf(o: ServerOptions): { base: string; headers: Record<string, string> } {
  const base = (o.server ?? process.env.VECRON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
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
  return new CliError(`${what} failed: ${detail}`);
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
