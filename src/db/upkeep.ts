/**
 * Keeps the planner's view of the busy tables current as they grow, and, on PGlite, their dead rows
 * vacuumed: what autovacuum does on a PostgreSQL server, where autovacuum does not (yet) do it.
 *
 * Why: the queue's statements are named prepared statements (src/db/postgres.ts), and PostgreSQL
 * keeps a statement's generic plan until the statistics of its tables change. A plan made while
 * `step_runs` held a few rows reads it whole (a sequential scan is the cheapest plan for a table
 * of one page) and keeps doing so as it grows: measured here, a claim went from 0.6 ms to 1.5 ms
 * of server time within 4,500 executions on a new database, and back to 0.5 ms once ANALYZE ran
 * (which invalidates the cached plans of every session). On PostgreSQL, autovacuum analyzes a table
 * only after its naptime (a minute) once 10 % of it changed; PGlite runs in single-user mode, where
 * autovacuum never runs at all: without this, an embedded installation would never analyze or
 * vacuum its tables, and every statement on them would slow down with the history it keeps.
 *
 * How: every `intervalMs`, one query compares each table's size on disk with the size the last
 * ANALYZE (or VACUUM) recorded in pg_class. A table that grew past GROWTH_FACTOR (and at least
 * MIN_GROWTH_PAGES) since is analyzed; on PGlite it is vacuumed and analyzed, which also lets its
 * dead rows' space be used again (a table whose dead rows are not vacuumed grows, and so comes back
 * here). Size is shared state, so any number of processes agree; on PostgreSQL one of them at a
 * time does it (a transaction-scoped advisory lock), and one that finds the lock taken skips.
 */
import type { Database } from './database.ts';
import { startPeriodic } from '../periodic.ts';

/**
 * The tables written on the hot paths: by every execution (its row, its steps, their events, WASM
 * logs and records, rate-limit starts), by every fire time (`schedules`) and by API requests
 * under rate limits (`request_counters`); `jobs` for the sake of the scheduler's reads.
 */
export const UPKEEP_TABLES = [
  'executions',
  'step_runs',
  'status_events',
  'schedules',
  'jobs',
  'wasm_execution_logs',
  'wasm_run_records',
  'execution_starts',
  'request_counters',
] as const;
/**
 * Growth (a share of the pages at the last analyze) past which a table is analyzed again. On
 * PostgreSQL, twice its size: autovacuum still does its own 10 % a minute later; what it is too
 * slow for is a table that doubles (a new database, a burst), where a cached plan's estimates are
 * off by that much. An ANALYZE reads up to 30,000 sampled rows (measured: 91-185 ms for the three
 * queue tables at a few thousand executions), so a tenth would have cost the queue benchmark's
 * young database one every round. On PGlite it
 * is the only vacuum there is: a fifth, which bounds the dead space to about that share.
 */
export const GROWTH_FACTOR = { postgres: 1, pglite: 0.2 } as const;
/** And at least this many pages (8 KiB each): a young table is analyzed after every 64 KiB it grows. */
export const MIN_GROWTH_PAGES = 8;
/** pg_try_advisory_xact_lock key: one process of a cluster analyzes at a time. */
const UPKEEP_LOCK = 0x7665_6b70; // 'vekp'

export interface TableSize {
  table: string;
  /** Pages pg_class recorded at the last ANALYZE / VACUUM (0 before the first). */
  recordedPages: number;
  /** Pages on disk now. */
  pages: number;
}

export interface UpkeepRun {
  /** Tables analyzed (on PGlite: vacuumed and analyzed) by this run. */
  tables: string[];
  /** Set when another process held the lock (PostgreSQL): nothing was done. */
  skipped?: boolean;
  ms: number;
}

/** Whether a table grew enough since its statistics were taken to take them again. */
export function needsAnalyze(t: TableSize, kind: Database['kind']): boolean {
  return t.pages - t.recordedPages > Math.max(MIN_GROWTH_PAGES, t.recordedPages * GROWTH_FACTOR[kind]);
}

/** The sizes of `tables` (those that exist). */
export async function tableSizes(db: Database, tables: readonly string[] = UPKEEP_TABLES): Promise<TableSize[]> {
  const { rows } = await db.query<{ table: string; recorded: number; pages: number }>(
    `SELECT t AS table, c.relpages AS recorded, (pg_relation_size(c.oid) / current_setting('block_size')::int)::int AS pages
       FROM unnest($1::text[]) AS t
       JOIN pg_class c ON c.oid = to_regclass(t)`,
    [tables],
  );
  return rows.map((r) => ({ table: r.table, recordedPages: Math.max(0, Number(r.recorded)), pages: Number(r.pages) }));
}

/** One round: analyzes (on PGlite, vacuums and analyzes) the tables that grew. */
export async function runUpkeep(db: Database, tables: readonly string[] = UPKEEP_TABLES): Promise<UpkeepRun> {
  const t0 = performance.now();
  const due = (await tableSizes(db, tables)).filter((t) => needsAnalyze(t, db.kind)).map((t) => t.table);
  if (due.length === 0) return { tables: [], ms: performance.now() - t0 };
  // Names come from UPKEEP_TABLES (or a test's own list), checked by to_regclass above; quoted anyway.
  const list = due.map((t) => `"${t.replace(/"/g, '""')}"`).join(', ');
  if (db.kind === 'pglite') {
    // One process, one connection: no lock needed. VACUUM cannot run inside a transaction.
    await db.exec(`VACUUM (ANALYZE) ${list}`);
    return { tables: due, ms: performance.now() - t0 };
  }
  const done = await db.transaction(async (tx) => {
    const { rows } = await tx.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS got', [UPKEEP_LOCK]);
    if (!rows[0]?.got) return false;
    await tx.exec(`ANALYZE ${list}`);
    return true;
  });
  return done ? { tables: due, ms: performance.now() - t0 } : { tables: [], skipped: true, ms: performance.now() - t0 };
}

/**
 * Runs `runUpkeep` every `intervalMs` (the first round one interval after start, so that it never
 * competes with a cold start), never two at once; `onRun` hears of the rounds that did something.
 * Returns the stop function (which waits for a round in progress).
 */
export function startTableUpkeep(
  db: Database,
  intervalMs: number,
  onError: (err: unknown) => void,
  onRun: (run: UpkeepRun) => void = () => {},
): () => Promise<void> {
  const round = async () => {
    const r = await runUpkeep(db);
    if (r.tables.length) onRun(r);
  };
  return startPeriodic(round, intervalMs, onError, { atStart: false });
}
