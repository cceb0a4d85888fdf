/**
 * A client of the server-sent event stream (/api/v1/events), read incrementally with fetch.
 */
import type { StatusEvent } from '../../src/state/events.ts';

export interface Frame {
  event?: string;
  id?: string;
  data?: string;
  retry?: string;
  comments: string[];
}

/** A server-sent event stream read incrementally with fetch. */
export interface Stream {
  status: number;
  headers: Headers;
  /** The next frame (skipping none), within `ms`. */
  next(ms?: number): Promise<Frame>;
  /** The next frame that carries an event. */
  nextEvent(ms?: number): Promise<Frame & { json: StatusEvent }>;
  close(): void;
}

export async function openStream(
  t: { url: string; adminToken: string },
  path: string,
  token: string | null = t.adminToken,
  headers: Record<string, string> = {},
): Promise<Stream> {
  const ac = new AbortController();
  const res = await fetch(t.url + path, {
    headers: { ...(token ? { authorization: `Bearer ${token}`, accept: 'text/event-stream' } : {}), ...headers },
    signal: ac.signal,
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const frames: Frame[] = [];
  let pending: ReturnType<typeof reader.read> | null = null;

  const parse = () => {
    for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const f: Frame = { comments: [] };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) f.comments.push(line.slice(1).trim());
        else {
          const c = line.indexOf(':');
          const field = line.slice(0, c) as 'event' | 'id' | 'data' | 'retry';
          f[field] = line.slice(c + 1).replace(/^ /, '');
        }
      }
      frames.push(f);
    }
  };

  const next = async (ms = 5000): Promise<Frame> => {
    const deadline = Date.now() + ms;
    while (frames.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event-stream frame within ${ms} ms`);
      // A read still pending after a timeout is kept for the next call, so no chunk is lost.
      pending ??= reader.read();
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([pending, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), left)))]).finally(() =>
        clearTimeout(timer),
      );
      if (r === null) continue;
      pending = null;
      if (r.done) throw new Error('the event stream ended');
      buffer += decoder.decode(r.value, { stream: true });
      parse();
    }
    return frames.shift()!;
  };

  return {
    status: res.status,
    headers: res.headers,
    next,
    async nextEvent(ms = 5000) {
      for (;;) {
        const f = await next(ms);
        if (f.data !== undefined) return { ...f, json: JSON.parse(f.data) };
      }
    },
    close: () => ac.abort(),
  };
}
