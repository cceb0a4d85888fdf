import { EventEmitter } from 'node:events';
import type { Database } from '../db/database.ts';

/** Execution and step status changes, for the live event stream and the dashboard. */
export interface StatusEvent {
  kind: 'execution' | 'step';
  execution_id: string;
  job_id: string;
  step_id?: string;
  status: string;
  at: string;
  error?: unknown;
}

export const EVENTS_CHANNEL = 'vecron_events';

/**
 * Events cross process boundaries through NOTIFY, so an API process sees the status changes made
 * by workers in other processes. Payloads stay small (NOTIFY's limit is 8000 bytes): ids and
 * status only; clients fetch details from the API. Events published in the same tick leave in one
 * statement, so a busy worker does not spend a round trip per status change.
 */
export class EventBus {
  private readonly emitter = new EventEmitter();
  private unlisten: (() => Promise<void>) | null = null;
  private pending: string[] = [];
  private flushing: Promise<void> | null = null;

  constructor(private readonly db: Database) {
    this.emitter.setMaxListeners(0);
  }

  private listening: Promise<void> | null = null;

  /** Nothing to do until someone subscribes: a worker-only process never listens to its own events. */
  async start(): Promise<void> {}

  private ensureListening(): Promise<void> {
    this.listening ??= this.db
      .listen(EVENTS_CHANNEL, (payload) => {
        try {
          this.emitter.emit('event', JSON.parse(payload) as StatusEvent);
        } catch {
          /* ignore malformed payloads */
        }
      })
      .then((unlisten) => {
        this.unlisten = unlisten;
      });
    return this.listening;
  }

  /** Queues the event; it is sent with the others of this tick. Resolves once it was sent. */
  publish(e: StatusEvent): Promise<void> {
    const small = e.error === undefined ? e : { ...e, error: summarize(e.error) };
    this.pending.push(JSON.stringify(small));
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    return this.flushing;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.flushing = null;
    if (batch.length === 1) await this.db.notify(EVENTS_CHANNEL, batch[0]);
    else await this.db.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [EVENTS_CHANNEL, batch]);
  }

  /** Delivers every event from now on (after `ready()` resolves, also those of other processes). */
  subscribe(fn: (e: StatusEvent) => void): () => void {
    this.emitter.on('event', fn);
    void this.ensureListening().catch(() => {
      this.listening = null;
    });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.emitter.off('event', fn);
    };
  }

  /** Resolves once this bus receives NOTIFY events (the first subscription starts listening). */
  ready(): Promise<void> {
    return this.listening ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.flushing) await this.flushing.catch(() => {});
    if (this.listening) await this.listening.catch(() => {});
    await this.unlisten?.();
    this.unlisten = null;
    this.listening = null;
  }
}

function summarize(error: unknown): unknown {
  const s = JSON.stringify(error);
  return s.length > 2000 ? { truncated: s.slice(0, 2000) } : error;
}
