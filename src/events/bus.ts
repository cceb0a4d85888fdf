import { EventEmitter } from 'node:events';
import type { Database } from '../db/database.ts';
import { startPeriodic } from '../periodic.ts';
import {
  EVENTS_PER_ROW,
  eventsFrom,
  loggedEventsAfter,
  oldestEventSeq,
  latestEventSeq,
  logPosition,
  pruneEvents,
  rowEvents,
  type EventFilter,
  type LoggedEvent,
  type StatusEvent,
} from '../state/events.ts';

export type { StatusEvent, EventFilter, LoggedEvent };

/**
 * Delivers execution and step status events to this process's subscribers (the live stream).
 * Events are written by the transitions in src/state into `status_events`, one row per statement,
 * in the same statement as the change. While this process has subscribers it reads the rows
 * committed since the last read every EVENT_POLL_MS (one primary-key range read; nothing while
 * nobody subscribes), so it sees the changes made by workers in other processes, in order. The
 * table is the only channel: a connection that drops loses nothing (the next read picks up where
 * the last one stopped), and the transitions on the queue's hot path send no NOTIFY for events
 * (issue 13: with one, every claim and success commit took PostgreSQL's notify lock and woke every
 * listening backend, whose reading of the queue counted as one more transaction per commit).
 */
/** How often the stored events are read while someone subscribes: the live stream's added delay at most. */
export const EVENT_POLL_MS = 100;
/** Rows read at most per poll (a backlog is read page after page without waiting). */
const POLL_ROWS = 200;
/** How long a skipped-over row counts as pending (a transaction still running), and how many rows at most. */
const PENDING_MS = 30_000;
const MAX_PENDING = 1000;

export class EventBus {
  private readonly emitter = new EventEmitter();
  /** Set while polling: resolves once the bus knows where the log stands. */
  private started: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> = Promise.resolve();
  private stopped = false;
  /** The highest event id delivered, the seq of the highest row read, and the rows below it not read yet (with when they were noticed). */
  private highest = 0;
  private highestRow = 0;
  private readonly pending = new Map<number, number>();

  constructor(
    private readonly db: Database,
    private readonly pollMs = EVENT_POLL_MS,
  ) {
    this.emitter.setMaxListeners(0);
  }

  private start(): Promise<void> {
    this.started ??= (async () => {
      // Delivery starts where the log stands when the first subscriber comes; rows missing among
      // the newest ones may belong to transactions still running: they are pending.
      const at = await logPosition(this.db);
      this.pending.clear();
      const now = Date.now();
      for (const s of at.pending) this.pending.set(s, now);
      this.highestRow = at.row;
      this.highest = at.high;
      this.schedule(this.pollMs);
    })().catch((err) => {
      this.started = null;
      throw err;
    });
    return this.started;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.emitter.listenerCount('event') === 0) {
      // nobody listens any more: stop reading; the next subscriber starts from where the log stands then
      this.started = null;
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.read().then((full) => this.schedule(full ? 0 : this.pollMs));
    }, ms);
    this.timer.unref();
  }

  /** Reads the rows committed since the last read (one read at a time); true when there may be more. */
  private read(): Promise<boolean> {
    const r = this.reading.then(async () => {
      try {
        const { rows } = await this.db.query<{ seq: string | number; events: Omit<StatusEvent, 'seq'>[] | string }>(
          'SELECT seq, events FROM status_events WHERE seq > $1 OR seq = ANY($2::bigint[]) ORDER BY seq LIMIT $3',
          [this.highestRow, [...this.pending.keys()], POLL_ROWS],
        );
        for (const row of rows) this.deliver(Number(row.seq), typeof row.events === 'string' ? JSON.parse(row.events) : row.events);
        this.expirePending();
        return rows.length === POLL_ROWS;
      } catch {
        return false; // the database is away: the rows stay in the table; the next read gets them
      }
    });
    this.reading = r.then(() => {});
    return r;
  }

  private deliver(row: number, events: Omit<StatusEvent, 'seq'>[]): void {
    const late = this.track(row);
    for (const l of rowEvents(row, events)) {
      if (late) l.late = true;
      // While a row's events go out one by one, the highest id delivered is the one going out.
      if (row === this.highestRow) this.highest = Math.max(this.highest, l.event.seq);
      this.emitter.emit('event', l.event, l);
    }
  }

  /**
   * A row's seq is taken when a transition's statement runs and the row is visible when its
   * transaction commits, so a lower row may appear after a higher one (two transactions committing
   * at once, or the scheduler's round, which commits all its fire times together). Rows start at
   * multiples of EVENTS_PER_ROW: those skipped over are pending, and read again, until they appear
   * or for PENDING_MS (then they are taken as rolled back).
   */
  private track(row: number): boolean {
    if (row > this.highestRow) {
      const now = Date.now();
      const first = Math.max(Math.floor(this.highestRow / EVENTS_PER_ROW) + 1, Math.ceil(row / EVENTS_PER_ROW) - MAX_PENDING) * EVENTS_PER_ROW;
      for (let s = first; s < row; s += EVENTS_PER_ROW) this.pending.set(s, now);
      this.highestRow = row;
      return false;
    }
    return this.pending.delete(row);
  }

  private expirePending(): void {
    const now = Date.now();
    for (const [s, at] of this.pending) if (now - at > PENDING_MS || s < this.highestRow - MAX_PENDING * EVENTS_PER_ROW) this.pending.delete(s);
  }

  /** The highest event id this process has delivered (0 before the first). */
  get highestSeq(): number {
    return this.highest;
  }

  /** The first ids of the rows below `high` not read yet (transactions that have not committed), oldest first. */
  pendingBelow(high: number): number[] {
    return [...this.pending.keys()].filter((s) => s < high).sort((a, b) => a - b);
  }

  /**
   * Delivers every event committed from now on (once `ready()` resolves), in order, with its place
   * in the log: the events of one row come one after the other.
   */
  subscribe(fn: (e: StatusEvent, logged: LoggedEvent) => void): () => void {
    this.emitter.on('event', fn);
    void this.start().catch(() => {});
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.emitter.off('event', fn);
    };
  }

  /**
   * Resolves once this bus delivers events (the first subscription starts reading the log) and has
   * read what was committed before the call: `highestSeq` and `pendingBelow` are up to date then.
   */
  async ready(): Promise<void> {
    await this.start();
    await this.read();
  }

  /** Where the log stands (for a stream that starts without Last-Event-ID). */
  position(): Promise<{ high: number; pending: number[] }> {
    return logPosition(this.db);
  }

  /** The stored events after `afterSeq` (up to `upTo`) matching `filter`, oldest first, one page (for a replay). */
  after(afterSeq: number, filter: EventFilter, limit?: number, upTo?: number): Promise<LoggedEvent[]> {
    return loggedEventsAfter(this.db, afterSeq, filter, limit, upTo);
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
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.started?.catch(() => {});
    await this.reading;
  }
}

/**
 * Deletes stored events older than `retentionSeconds` every `everyMs` (and once at start). Every
 * process may run one; they share the work. Returns the stop function.
 */
export function startEventPruner(db: Database, retentionSeconds: number, onError: (err: unknown) => void, everyMs = 60_000): () => Promise<void> {
  return startPeriodic(() => pruneEvents(db, retentionSeconds), everyMs, onError);
}
