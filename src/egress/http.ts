/**
 * The egress-checked dispatcher: one undici Agent whose connector checks every connection (every
 * redirect hop opens its connection through it too), and fetch through it. The http step sends its
 * requests through this dispatcher with `request` (./request.ts), its OAuth2 token requests with
 * egressFetch; the WASM host functions dispatch on it too. Never the global fetch.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { egressConnector } from './connect.ts';

let agent: Agent | null = null;

/** The process's egress-checked dispatcher (created on first use). */
export function egressDispatcher(): Agent {
  return (agent ??= new Agent({ connect: egressConnector() }));
}

/** `fetch` whose connections pass the egress policy; same arguments and answer as the global fetch. */
export function egressFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  return undiciFetch(input, { ...(init as any), dispatcher: egressDispatcher() }) as unknown as Promise<Response>;
}
