/**
 * The one database interface the rest of vecron talks to. Two implementations: embedded PGlite
 * (default, nothing to install) and PostgreSQL through node-postgres (`DATABASE_URL`). Both speak
 * the same SQL dialect, so every query in the code base runs on both.
 */
export type Row = Record<string, unknown>;

export interface QueryResult<T = Row> {
  rows: T[];
  rowCount: number;
}

export interface Queryable {
  /** One statement with `$1`-style parameters. */
  query<T = Row>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** What a process knows about its database connection, for /health and /ready. */
export interface ConnectionState {
  /** False from a connection failure until the database answers again. */
  ok: boolean;
  /** Why it is not ok (the last connection error), null when ok. */
  reason: string | null;
  /** When the current failure started (epoch ms), null when ok. */
  since: number | null;
  /** The LISTEN connection: 'idle' (nobody listens), 'connected', or 'reconnecting' (wake-ups are lost meanwhile). */
  listener: 'idle' | 'connected' | 'reconnecting';
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` inside BEGIN/COMMIT on one connection; ROLLBACK when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs `fn` on one dedicated connection (session-level locks, LISTEN). */
  withSession<T>(fn: (session: Queryable) => Promise<T>): Promise<T>;
  /**
   * Subscribes to NOTIFY on `channel`; returns an unsubscribe function. The subscription survives a
   * lost connection: the listener reconnects (with backoff, until it succeeds) and LISTENs again.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  /**
   * Calls `fn` each time the LISTEN connection is back after a loss: notifications sent meanwhile
   * are gone, so listeners catch up (a worker polls, a scheduler runs a round). Returns an
   * unsubscribe function.
   */
  onReconnect(fn: () => void): () => void;
  /** The connection's state as this process last saw it. */
  connectionState(): ConnectionState;
  close(): Promise<void>;
}
