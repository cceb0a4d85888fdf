import { EventEmitter } from 'node:events';
import type { Database } from '../db/database.ts';
import { EVENTS_CHANNEL } from '../db/channels.ts';
import {
  EVENTS_PER_ROW,
  eventsFrom,
  loggedEventsAfter,
  oldestEventSeq,
  latestEventSeq,
  pruneEvents,
  rowEvents,
  type EventFilter,
  type LoggedEvent,
  type StatusEvent,
} from '../state/events.ts';

export type { StatusEvent, EventFilter, LoggedEvent };

/**
 * Delivers execution and step status events to this process's subscribers (the live stream).
 * Events are written by the transitions in src/state, into `status_events`, one row per statement,
 * by the same statement that sends the row on NOTIFY (delivered at commit): so an API process sees
 * the changes made by workers in other processes, in commit order. Nothing is published from here.
 * A process listens only once someone subscribes.
 */
/** How long a skipped-over row counts as pending (a transaction still running), and how many rows at most. */
const PENDING_MS = 30_000;
const MAX_PENDING = 1000;

export class EventBus {
  private readonly emitter = new EventEmitter();
  private unlisten: (() => Promise<void>) | null = null;
  private listening: Promise<void> | null = null;
  /** Delivery stays in NOTIFY order even when an event has to be read from the table first. */
  private delivering: Promise<void> = Promise.resolve();
  /** The highest event id delivered, the seq of the highest row received, and the rows below it not received yet (with when they were noticed). */
  private highest = 0;
  private highestRow = 0;
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
    let r: { seq?: unknown; events?: Omit<StatusEvent, 'seq'>[] };
    try {
      r = JSON.parse(payload);
    } catch {
      return; // not ours
    }
    if (typeof r.seq !== 'number') return;
    const row = r.seq;
    const inline = Array.isArray(r.events) ? r.events : null;
    this.delivering = this.delivering.then(async () => {
      // A row too large for a NOTIFY payload arrives as its seq alone.
      const events = inline ? rowEvents(row, inline) : await eventsFrom(this.db, [row]).catch(() => []);
      this.track(row);
      for (const l of events) {
        // While a row's events go out one by one, the highest id delivered is the one going out.
        if (row === this.highestRow) this.highest = Math.max(this.highest, l.event.seq);
        this.emitter.emit('event', l.event, l);
      }
    });
  }

  /**
   * A row's seq is taken when a transition's statement runs and the row is delivered when its
   * transaction commits, so a lower row may arrive after a higher one (two transactions committing
   * at once, or the scheduler's round, which commits all its fire times together). Rows start at
   * multiples of EVENTS_PER_ROW: those skipped over are pending until they arrive, or for PENDING_MS
   * (then they are taken as rolled back).
   */
  private track(row: number): void {
    const now = Date.now();
    if (this.highestRow === 0) this.highestRow = row;
    else if (row > this.highestRow) {
      const first = Math.max(Math.floor(this.highestRow / EVENTS_PER_ROW) + 1, Math.ceil(row / EVENTS_PER_ROW) - MAX_PENDING) * EVENTS_PER_ROW;
      for (let s = first; s < row; s += EVENTS_PER_ROW) this.pending.set(s, now);
      this.highestRow = row;
    } else this.pending.delete(row);
    for (const [s, at] of this.pending) if (now - at > PENDING_MS || s < this.highestRow - MAX_PENDING * EVENTS_PER_ROW) this.pending.delete(s);
  }

  /** The highest event id this process has delivered (0 before the first). */
  get highestSeq(): number {
    return this.highest;
  }

  /** The first ids of the rows below `high` not received yet (transactions that have not committed), oldest first. */
  pendingBelow(high: number): number[] {
    return [...this.pending.keys()].filter((s) => s < high).sort((a, b) => a - b);
  }

  /**
   * Delivers every event from now on (after `ready()` resolves, also those of other processes), in
   * order, with its place in the log: the events of one row come one after the other.
   */
  subscribe(fn: (e: StatusEvent, logged: LoggedEvent) => void): () => void {
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
  after(afterSeq: number, filter: EventFilter, limit?: number): Promise<LoggedEvent[]> {
    return loggedEventsAfter(this.db, afterSeq, filter, limit);
  }

  /** The stored events matching `filter` from each of `seqs` to the end of its row, oldest first. */
  from(seqs: number[], filter: EventFilter): Promise<LoggedEvent[]> {
    return eventsFrom(this.db, seqs, filter);
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
