/**
 * fetch through the egress policy: one undici Agent whose connector checks every connection (every
 * redirect hop opens its connection through it too). The http step, its OAuth2 token requests and
 * the WASM host functions use this, never the global fetch.
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
