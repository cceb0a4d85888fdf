import type { Queryable } from '../db/database.ts';
import { EVENTS_CHANNEL } from '../db/channels.ts';
import type { ExecutionStatus, StepStatus } from './statuses.ts';

/**
 * An execution or step status change, as stored in `status_events` (migration 008) and sent on
 * NOTIFY vecron_events and the live stream. `seq` orders all events of the cluster.
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
 * The one definition of an event's JSON shape, over a `status_events` row named `row`: for the
 * NOTIFY of each event and for replays. (Written out here rather than as a SQL function: PostgreSQL
 * does not inline that one in RETURNING, and calling it cost about a third of an event's insert.)
 */
function eventJson(row: string): string {
  const fields = ['seq', 'kind', 'execution_id', 'job_id', 'step_id', 'status', 'at', 'reason', 'error'];
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
 * A CTE `ev` that appends the events of one transition, in order, in the same statement as the
 * change itself (so an event exists exactly when its change committed), and sends each on NOTIFY
 * vecron_events from its RETURNING, row by row in seq order (delivered at commit). A data-modifying
 * CTE always runs to completion, so the statement need not read it. An event larger than a NOTIFY
 * payload allows (8000 bytes) is announced by its seq alone; listeners read it from the table.
 *
 * (A statement-level trigger on status_events could send the NOTIFYs too, but it cost 0.1-0.2 ms
 * per statement on PostgreSQL 15 here, 2026-12-01, and every claim and success pays it; so did a
 * separate CTE that collected the events to notify.)
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
  // The variable parts decide whether the payload fits: ids, status and time take under 250 bytes.
  const small = `octet_length(coalesce(status_events.error::text, '')) + octet_length(coalesce(status_events.reason, ''))
                 + octet_length(coalesce(status_events.step_id, '')) < 7500`;
  return `ev AS (
    INSERT INTO status_events (kind, execution_id, job_id, step_id, status, at, reason, error)
    SELECT kind, execution_id, job_id, step_id, status, at, reason, error
    FROM (${selects.join('\n UNION ALL ')}) evs ORDER BY n, o, p
    RETURNING seq, pg_notify('${EVENTS_CHANNEL}', CASE WHEN ${small} THEN ${eventJson('status_events')}::text
                                                  ELSE json_build_object('seq', status_events.seq)::text END) AS notified
  )`;
}

/**
 * Appends events that no row change goes with (tests of the stream use it); the transitions
 * write theirs with `eventsCte`. Returns them as stored.
 */
export async function appendEvents(
  db: Queryable,
  events: { kind: 'execution' | 'step'; execution_id: string; job_id: string; step_id?: string; status: string; reason?: string; error?: unknown }[],
): Promise<StatusEvent[]> {
  const { rows } = await db.query<{ seq: number }>(
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
  return eventsBySeq(
    db,
    rows.map((r) => r.seq),
  );
}

export interface EventFilter {
  jobId?: string;
  executionId?: string;
}

/** Events after `afterSeq`, oldest first, at most `limit` (a page of a replay). */
export async function eventsAfter(db: Queryable, afterSeq: number, filter: EventFilter, limit = 1000): Promise<StatusEvent[]> {
  const { rows } = await db.query<{ j: StatusEvent }>(
    `SELECT ${eventJson('e')} AS j FROM status_events e
     WHERE e.seq > $1 AND ($2::uuid IS NULL OR e.job_id = $2) AND ($3::uuid IS NULL OR e.execution_id = $3)
     ORDER BY e.seq LIMIT $4`,
    [afterSeq, filter.jobId ?? null, filter.executionId ?? null, limit],
  );
  return rows.map((r) => r.j);
}

/** Events by seq (those too large for a NOTIFY payload; those a reconnecting client had not received yet). */
export async function eventsBySeq(db: Queryable, seqs: number[], filter: EventFilter = {}): Promise<StatusEvent[]> {
  if (seqs.length === 0) return [];
  const { rows } = await db.query<{ j: StatusEvent }>(
    `SELECT ${eventJson('e')} AS j FROM status_events e
     WHERE e.seq = ANY($1::bigint[]) AND ($2::uuid IS NULL OR e.job_id = $2) AND ($3::uuid IS NULL OR e.execution_id = $3)
     ORDER BY e.seq`,
    [seqs, filter.jobId ?? null, filter.executionId ?? null],
  );
  return rows.map((r) => r.j);
}

/** The oldest event still kept, or null when there is none. */
export async function oldestEventSeq(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ seq: string | number | null }>('SELECT min(seq) AS seq FROM status_events');
  return rows[0]?.seq == null ? null : Number(rows[0].seq);
}

/** The newest stored event's seq, or 0 when none is stored. */
export async function latestEventSeq(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ seq: string | number | null }>('SELECT max(seq) AS seq FROM status_events');
  return rows[0]?.seq == null ? 0 : Number(rows[0].seq);
}

/**
 * Deletes events older than `retentionSeconds`, oldest first, `batch` at a time (each round reads
 * at most `batch` rows by the primary key, so it costs little when there is nothing to delete).
 * Several processes may prune at once. Returns how many were deleted.
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
