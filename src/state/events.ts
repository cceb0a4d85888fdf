import type { Queryable } from '../db/database.ts';
import type { ExecutionStatus, StepStatus } from './statuses.ts';

/**
 * An execution or step status change, as stored in `status_events` (migrations 008, 013) and sent
 * on the live stream. `seq` orders all events of the cluster.
 */
export interface StatusEvent {
  seq: number;
  kind: 'execution' | 'step';
  execution_id: string;
  job_id: string;
  step_id?: string;
  status: ExecutionStatus | StepStatus;
  at: string;
  /** Why a step or execution was skipped ('an earlier step failed', 'misfire', ...). */
  reason?: string;
  /** The error of a failed step or attempt, cut to about 2 KB. */
  error?: unknown;
}

/** Largest error JSON kept in an event; the full error is in the execution record. */
const MAX_EVENT_ERROR_CHARS = 2000;

/** The error as an event carries it: as is when small, else its first 2,000 characters. */
export function eventError(error: unknown): string | null {
  if (error === undefined || error === null) return null;
  const s = JSON.stringify(error);
  return s.length > MAX_EVENT_ERROR_CHARS ? JSON.stringify({ truncated: s.slice(0, MAX_EVENT_ERROR_CHARS) }) : s;
}

/**
 * The event log keeps one row per statement (migration 013): `status_events.events` is the JSON
 * array of the events that statement produced, in order. An event's id (`seq`) is its row's `seq`
 * plus its index in the array; the row sequence steps by EVENTS_PER_ROW, so a row owns the ids
 * seq .. seq + EVENTS_PER_ROW - 1, and a statement with more events writes several rows. One row
 * per statement instead of one per event: a claim of eight executions writes one row, not sixteen
 * (the queue benchmark, issue 13).
 */
export const EVENTS_PER_ROW = 1000;

/** Where an event sits in the log: its row owns the ids `row` .. `end - 1` (`end`: one past its last event). */
export interface LoggedEvent {
  event: StatusEvent;
  row: number;
  end: number;
  /** Its row was read after a higher one (its transaction committed late). */
  late?: boolean;
}

/** The JSON of one event inside a row (its seq is implied by its place), over the columns of `row`. */
function eventJson(row: string): string {
  const fields = ['kind', 'execution_id', 'job_id', 'step_id', 'status', 'at', 'reason', 'error'];
  return `json_strip_nulls(json_build_object(${fields.map((f) => `'${f}', ${row}.${f}`).join(', ')}))`;
}

/** One source of events inside a transition's statement: a SELECT over a CTE that changed rows. */
export interface EventSource {
  /** FROM clause (and WHERE) the values below are read from. */
  from: string;
  kind: 'execution' | 'step';
  executionId: string;
  jobId: string;
  stepId?: string;
  /** SQL expression of the new status. */
  status: string;
  at?: string;
  reason?: string;
  error?: string;
  /** Sort keys: events of one statement are numbered by (order, phase, position). */
  order?: string;
  phase: number;
  position?: string;
}

/**
 * A CTE `ev` that appends the events of one transition, in order, as one row of `status_events`
 * (several when there are more than EVENTS_PER_ROW), in the same statement as the change itself (so
 * an event exists exactly when its change committed). A statement that changed nothing writes no
 * row. A data-modifying CTE always runs to completion, so the statement need not read it. Readers
 * (src/events/bus.ts) poll the table; no NOTIFY is sent (it cost every claim and success a
 * notifying commit, issue 13).
 */
export function eventsCte(sources: EventSource[]): string {
  const selects = sources.map(
    (s) =>
      `SELECT (${s.order ?? '0'})::bigint AS n, ${s.phase}::int AS o, (${s.position ?? '0'})::int AS p, '${s.kind}'::text AS kind,
              ${s.executionId}::uuid AS execution_id, ${s.jobId}::uuid AS job_id, ${s.stepId ?? 'NULL'}::text AS step_id,
              ${s.status}::text AS status, coalesce(${s.at ?? 'NULL'}::timestamptz, now()) AS at,
              ${s.reason ?? 'NULL'}::text AS reason, ${s.error ?? 'NULL'}::jsonb AS error
       FROM ${s.from}`,
  );
  return `ev AS (
    INSERT INTO status_events (events)
    SELECT json_agg(x.j ORDER BY x.i) FROM (
      SELECT ${eventJson('evs')} AS j, row_number() OVER (ORDER BY evs.n, evs.o, evs.p) AS i
      FROM (${selects.join('\n UNION ALL ')}) evs
    ) x
    GROUP BY (x.i - 1) / ${EVENTS_PER_ROW} ORDER BY (x.i - 1) / ${EVENTS_PER_ROW}
    RETURNING seq
  )`;
}

/** The events of stored rows as the stream sends them: `{seq, ...event}` with seq = row seq + index. */
export function rowEvents(row: number, events: Omit<StatusEvent, 'seq'>[]): LoggedEvent[] {
  const end = row + events.length;
  return events.map((e, i) => ({ event: { seq: row + i, ...e } as StatusEvent, row, end }));
}

/**
 * Appends events that no row change goes with (tests of the stream use it); the transitions
 * write theirs with `eventsCte`. Returns them as stored.
 */
export async function appendEvents(
  db: Queryable,
  events: { kind: 'execution' | 'step'; execution_id: string; job_id: string; step_id?: string; status: string; reason?: string; error?: unknown }[],
): Promise<StatusEvent[]> {
  const { rows } = await db.query<{ seq: string | number }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::jsonb[]) WITH ORDINALITY
         AS i(kind, execution_id, job_id, step_id, status, reason, error, n)
     ), ${eventsCte([
       {
         from: 'input',
         kind: 'execution',
         executionId: 'input.execution_id',
         jobId: 'input.job_id',
         stepId: 'input.step_id',
         status: 'input.status',
         reason: 'input.reason',
         error: 'input.error',
         order: 'input.n',
         phase: 0,
       },
     ]).replace(`'execution'::text AS kind`, 'input.kind AS kind')}
     SELECT ev.seq FROM ev ORDER BY ev.seq`,
    [
      events.map((e) => e.kind),
      events.map((e) => e.execution_id),
      events.map((e) => e.job_id),
      events.map((e) => e.step_id ?? null),
      events.map((e) => e.status),
      events.map((e) => e.reason ?? null),
      events.map((e) => (e.error === undefined ? null : JSON.stringify(e.error))),
    ],
  );
  if (rows.length === 0) return [];
  return (await eventsAfterInternal(db, Number(rows[0].seq) - 1, {}, events.length)).map((l) => l.event);
}

export interface EventFilter {
  jobId?: string;
  executionId?: string;
}

/** Rows unnested into events, with their ids and where their row ends, as LoggedEvent columns. */
const UNNEST = `SELECT r.seq + e.i - 1 AS seq, e.j, r.seq AS row, r.seq + json_array_length(r.events) AS "end"
  FROM status_events r CROSS JOIN LATERAL json_array_elements(r.events) WITH ORDINALITY AS e(j, i)`;
const FILTER = `($2::uuid IS NULL OR (e.j->>'job_id')::uuid = $2) AND ($3::uuid IS NULL OR (e.j->>'execution_id')::uuid = $3)`;

type UnnestedRow = { seq: string | number; j: Omit<StatusEvent, 'seq'>; row: string | number; end: string | number };
const logged = (rows: UnnestedRow[]): LoggedEvent[] =>
  rows.map((r) => ({ event: { seq: Number(r.seq), ...r.j } as StatusEvent, row: Number(r.row), end: Number(r.end) }));

async function eventsAfterInternal(db: Queryable, afterSeq: number, filter: EventFilter, limit: number, upTo?: number): Promise<LoggedEvent[]> {
  // A row holds fewer than EVENTS_PER_ROW events, so the first event after `afterSeq` is in a row
  // starting above afterSeq - EVENTS_PER_ROW (the primary key finds those).
  const { rows } = await db.query<UnnestedRow>(
    `${UNNEST}
     WHERE r.seq > $1::bigint - ${EVENTS_PER_ROW} AND r.seq + e.i - 1 > $1 AND ${FILTER}
       AND ($5::bigint IS NULL OR (r.seq <= $5 AND r.seq + e.i - 1 <= $5))
     ORDER BY r.seq, e.i LIMIT $4`,
    [afterSeq, filter.jobId ?? null, filter.executionId ?? null, limit, upTo ?? null],
  );
  return logged(rows);
}

/** Events after `afterSeq` (and up to `upTo` when given), oldest first, at most `limit` (a page of a replay), with their place in the log. */
export function loggedEventsAfter(db: Queryable, afterSeq: number, filter: EventFilter, limit = 1000, upTo?: number): Promise<LoggedEvent[]> {
  return eventsAfterInternal(db, afterSeq, filter, limit, upTo);
}

/** The newest rows looked at for gaps (rows of transactions still running) by logPosition. */
const POSITION_ROWS = 100;

/**
 * Where the log stands: the newest row, the id of its last event (`high`), and the rows missing
 * among the newest ones (`pending`: their seqs were taken by transactions that may still commit).
 */
export async function logPosition(db: Queryable): Promise<{ row: number; high: number; pending: number[] }> {
  const { rows } = await db.query<{ seq: string | number; n: number }>(
    `SELECT seq, json_array_length(events) AS n FROM status_events ORDER BY seq DESC LIMIT ${POSITION_ROWS}`,
  );
  if (rows.length === 0) return { row: 0, high: 0, pending: [] };
  const row = Number(rows[0].seq);
  const seqs = new Set(rows.map((r) => Number(r.seq)));
  const pending: number[] = [];
  for (let s = (Math.floor(Number(rows[rows.length - 1].seq) / EVENTS_PER_ROW) + 1) * EVENTS_PER_ROW; s < row; s += EVENTS_PER_ROW) {
    if (!seqs.has(s)) pending.push(s);
  }
  return { row, high: row + Number(rows[0].n) - 1, pending };
}

/** Events after `afterSeq`, oldest first, at most `limit`. */
export async function eventsAfter(db: Queryable, afterSeq: number, filter: EventFilter, limit = 1000): Promise<StatusEvent[]> {
  return (await eventsAfterInternal(db, afterSeq, filter, limit)).map((l) => l.event);
}

/**
 * For each id in `fromSeqs`, the events from that id to the end of its row, oldest first (the rest
 * of a row a client had not received all of; the rows a reconnecting client was still owed). An id no stored row owns (not committed yet, rolled
 * back, pruned) gives nothing.
 */
export async function eventsFrom(db: Queryable, fromSeqs: number[], filter: EventFilter = {}): Promise<LoggedEvent[]> {
  if (fromSeqs.length === 0) return [];
  const { rows } = await db.query<UnnestedRow>(
    `SELECT DISTINCT ON (r.seq, e.i) r.seq + e.i - 1 AS seq, e.j, r.seq AS row, r.seq + json_array_length(r.events) AS "end"
     FROM unnest($1::bigint[]) AS f(seq)
     CROSS JOIN LATERAL (SELECT * FROM status_events r WHERE r.seq <= f.seq AND r.seq > f.seq - ${EVENTS_PER_ROW} ORDER BY r.seq DESC LIMIT 1) r
     CROSS JOIN LATERAL json_array_elements(r.events) WITH ORDINALITY AS e(j, i)
     WHERE r.seq + e.i - 1 >= f.seq AND ${FILTER}
     ORDER BY r.seq, e.i`,
    [fromSeqs, filter.jobId ?? null, filter.executionId ?? null],
  );
  return logged(rows);
}

/** The oldest event still kept (the first of the oldest row), or null when there is none. */
export async function oldestEventSeq(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ seq: string | number | null }>('SELECT min(seq) AS seq FROM status_events');
  return rows[0]?.seq == null ? null : Number(rows[0].seq);
}

/** The newest stored event's seq, or 0 when none is stored. */
export async function latestEventSeq(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ seq: string | number | null }>(
    'SELECT seq + json_array_length(events) - 1 AS seq FROM status_events ORDER BY seq DESC LIMIT 1',
  );
  return rows[0]?.seq == null ? 0 : Number(rows[0].seq);
}

/**
 * Deletes the rows of events older than `retentionSeconds`, oldest first, `batch` rows at a time
 * (each round reads at most `batch` rows by the primary key, so it costs little when there is
 * nothing to delete). Several processes may prune at once. Returns how many rows were deleted.
 */
export async function pruneEvents(db: Queryable, retentionSeconds: number, batch = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await db.query(
      `WITH oldest AS (SELECT seq, at FROM status_events ORDER BY seq LIMIT $2)
       DELETE FROM status_events e USING oldest o
       WHERE e.seq = o.seq AND o.at < now() - make_interval(secs => $1)
       RETURNING e.seq`,
      [retentionSeconds, batch],
    );
    total += r.rows.length;
    if (r.rows.length < batch) return total;
  }
}
