import { useEffect, useRef, useState } from 'react';
import { tokenStore } from './api.ts';

/** A value that follows `value` after `ms` without changes (search boxes). */
export function useDebounced<T>(value: T, ms = 250): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}

export interface StatusEvent {
  kind: 'execution' | 'step';
  execution_id: string;
  job_id: string;
  step_id?: string;
  status: string;
  at: string;
  error?: unknown;
}

/**
 * Live status events (SSE at /api/v1/events). EventSource cannot send headers, so the token goes in
 * `?access_token=`. Returns whether the stream is open. The browser reconnects by itself.
 */
export function useStatusEvents(filter: { job_id?: string; execution_id?: string }, onEvent: (e: StatusEvent) => void): boolean {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const [open, setOpen] = useState(false);
  const { job_id, execution_id } = filter;
  useEffect(() => {
    const token = tokenStore.get();
    if (!token) return;
    const p = new URLSearchParams({ access_token: token });
    if (job_id) p.set('job_id', job_id);
    if (execution_id) p.set('execution_id', execution_id);
    const es = new EventSource(`/api/v1/events?${p}`);
    const receive = (m: MessageEvent) => {
      try {
        handler.current(JSON.parse(m.data) as StatusEvent);
      } catch {
        /* a malformed event is ignored */
      }
    };
    es.addEventListener('execution', receive);
    es.addEventListener('step', receive);
    es.onopen = () => setOpen(true);
    es.onerror = () => setOpen(false);
    return () => {
      es.close();
      setOpen(false);
    };
  }, [job_id, execution_id]);
  return open;
}
