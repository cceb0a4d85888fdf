import { EventEmitter } from 'node:events';
import type { Database } from '../db/database.ts';
import { EVENTS_CHANNEL } from '../db/channels.ts';
import { eventsAfter, eventsBySeq, oldestEventSeq, latestEventSeq, pruneEvents, type EventFilter, type StatusEvent } from '../state/events.ts';

export type { StatusEvent, EventFilter };

/**
 * Delivers execution and step status events to this process's subscribers (the live stream).
 * Events are written by the transitions in src/state, into `status_events`, by the same statement
 * that sends each on NOTIFY (delivered at commit): so an API process sees the changes made by workers in other processes,
 * in commit order. Nothing is published from here. A process listens only once someone subscribes.
 */
/** How long a skipped-over seq counts as pending (a transaction still running), and how many at most. */
const PENDING_MS = 30_000;
const MAX_PENDING = 1000;

export class EventBus {
  private readonly emitter = new EventEmitter();
  private unlisten: (() => Promise<void>) | null = null;
  private listening: Promise<void> | null = null;
  /** Delivery stays in NOTIFY order even when an event has to be read from the table first. */
  private delivering: Promise<void> = Promise.resolve();
  /** The highest seq received, and the lower ones not received yet (with when they were noticed). */
  private highest = 0;
  private readonly pending = new Map<number, number>();

  constructor(private readonly db: Database) {
    this.emitter.setMaxListeners(0);
    // Events NOTIFYed while the listener was away never arrive: tell the subscribers to catch up.
    this.offReconnect = db.onReconnect(() => this.emitter.emit('resync'));
  }

  private offReconnect: () => void;

  /** Calls `fn` when events may have been missed (the listener was reconnected); returns an unsubscribe function. */
  onResync(fn: () => void): () => void {
    this.emitter.on('resync', fn);
    return () => void this.emitter.off('resync', fn);
  }

  private ensureListening(): Promise<void> {
    this.listening ??= this.db
      .listen(EVENTS_CHANNEL, (payload) => this.receive(payload))
      .then((unlisten) => {
        this.unlisten = unlisten;
      });
    return this.listening;
  }

  private receive(payload: string): void {
    let e: Partial<StatusEvent>;
    try {
      e = JSON.parse(payload);
    } catch {
      return; // not ours
    }
    if (typeof e.seq !== 'number') return;
    const complete = e.kind !== undefined;
    this.delivering = this.delivering.then(async () => {
      // An event too large for a NOTIFY payload arrives as its seq alone.
      const events = complete ? [e as StatusEvent] : await eventsBySeq(this.db, [e.seq!]).catch(() => []);
      for (const ev of events) {
        this.track(ev.seq);
        this.emitter.emit('event', ev);
      }
    });
  }

  /**
   * Seqs are taken when a transition's statement runs and delivered when its transaction commits,
   * so a lower seq may arrive after a higher one (two transactions committing at once, or the
   * scheduler's round, which commits all its fire times together). The seqs skipped over are
   * pending until they arrive, or for PENDING_MS (then they are taken as rolled back).
   */
  private track(seq: number): void {
    const now = Date.now();
    if (this.highest === 0) this.highest = seq;
    else if (seq > this.highest) {
      for (let s = Math.max(this.highest + 1, seq - MAX_PENDING); s < seq; s++) this.pending.set(s, now);
      this.highest = seq;
    } else this.pending.delete(seq);
    for (const [s, at] of this.pending) if (now - at > PENDING_MS || s < this.highest - MAX_PENDING) this.pending.delete(s);
  }

  /** The highest seq this process has received (0 before the first). */
  get highestSeq(): number {
    return this.highest;
  }

  /** The seqs below `high` not received yet (transactions that have not committed), oldest first. */
  pendingBelow(high: number): number[] {
    return [...this.pending.keys()].filter((s) => s < high).sort((a, b) => a - b);
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

  /** The stored events after `afterSeq` matching `filter`, oldest first, one page (for a replay). */
  after(afterSeq: number, filter: EventFilter, limit?: number): Promise<StatusEvent[]> {
    return eventsAfter(this.db, afterSeq, filter, limit);
  }

  /** The stored events among `seqs` matching `filter`, oldest first. */
  bySeq(seqs: number[], filter: EventFilter): Promise<StatusEvent[]> {
    return eventsBySeq(this.db, seqs, filter);
  }

  /** The newest stored event's seq (0 when none is stored): where a new stream stands. */
  latestSeq(): Promise<number> {
    return latestEventSeq(this.db);
  }

  /** The oldest stored event's seq (older ones were pruned), or null when none is stored. */
  oldestSeq(): Promise<number | null> {
    return oldestEventSeq(this.db);
  }

  async stop(): Promise<void> {
    this.offReconnect();
    if (this.listening) await this.listening.catch(() => {});
    await this.unlisten?.();
    this.unlisten = null;
    this.listening = null;
    await this.delivering;
  }
}

/**
 * Deletes stored events older than `retentionSeconds` every `everyMs` (and once at start). Every
 * process may run one; they share the work. Returns the stop function.
 */
export function startEventPruner(db: Database, retentionSeconds: number, onError: (err: unknown) => void, everyMs = 60_000): () => Promise<void> {
  let running: Promise<unknown> | null = null;
  const run = () => {
    running ??= pruneEvents(db, retentionSeconds)
      .catch(onError)
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(run, everyMs);
  timer.unref();
  run();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
