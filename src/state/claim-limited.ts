import type { Database, Queryable } from '../db/database.ts';
import { type ClaimedExecution, SERIAL_READY, claimSql } from './claim.ts';
import { execFrom } from './statuses.ts';

/**
 * `claim` for executions with limits (src/limits): a concurrency key (at most `concurrency_limit`
 * running with the same key, cluster-wide) and/or a rate limit (at most `rate_limit` starts with
 * the same key in `rate_interval_seconds`).
 *
 * A count of running executions is only true when no other claim of the same key is in flight, and
 * in READ COMMITTED a statement's snapshot is taken when it starts, before any lock it takes. So
 * the claim runs in a transaction that first takes a transaction-level advisory lock per key it
 * will claim for (in one order, so two claims never deadlock), and only then runs the claim
 * statement, whose fresh snapshot sees every claim of those keys committed before. Ending a run
 * (success, failure, retry, reaper, cancel) only lowers the counts, so a count that is stale that
 * way errs on the safe side: a slot freed meanwhile is taken by the next claim. Nothing needs to
 * release a slot: a slot is a running execution, a rate token a row of `execution_starts` that
 * expires.
 *
 * graphile-worker serializes a named queue with a lock row per queue and pg-boss keeps one active
 * job per singleton key with a unique index; both allow one running job per key. A limit of N
 * needs the count, hence the lock.
 */

export interface LimitedClaim {
  claimed: ClaimedExecution[];
  /** Whether any execution with limits is queued (claimable now or not): the worker keeps looking. */
  waiting: boolean;
}

/** The namespace of the advisory locks, hashed with the key (hashtextextended: 64 bits). */
const LOCK_PREFIX = 'vecron.limit.';

/**
 * CTEs `t` (the statement's clock: clock_timestamp(), not now(), which is when the transaction
 * began and may be earlier than the starts the previous holder of a key's lock recorded), `queue` (queued, due executions with limits and their place in
 * line per key), `ready` (those a slot and a rate token are free for now, at most `limit`, a
 * parameter reference). With `lockedKeys` (one too), only executions whose every key is in it.
 */
function readyCtes(limit: string, lockedKeys?: string): string {
  const keys = lockedKeys
    ? `AND (e.concurrency_key IS NULL OR e.concurrency_key = ANY(${lockedKeys})) AND (e.rate_key IS NULL OR e.rate_key = ANY(${lockedKeys}))`
    : '';
  return `t AS (SELECT clock_timestamp() AS now),
     queue AS (
       SELECT e.id, e.run_at, e.created_at, e.concurrency_key, e.concurrency_limit, e.rate_key, e.rate_limit,
              row_number() OVER (PARTITION BY e.concurrency_key ORDER BY e.run_at, e.created_at, e.id) AS in_line,
              row_number() OVER (PARTITION BY e.rate_key ORDER BY e.run_at, e.created_at, e.id) AS in_rate_line
       FROM executions e, t
       WHERE e.status IN (${execFrom('claim')}) AND (e.concurrency_key IS NOT NULL OR e.rate_key IS NOT NULL) AND e.run_at <= t.now
         AND ${SERIAL_READY} ${keys}
     ), running AS (
       SELECT concurrency_key AS key, count(*) AS n FROM executions
       WHERE status = 'running' AND concurrency_key IS NOT NULL GROUP BY 1
     ), tokens AS (
       SELECT s.key, count(*) AS n FROM execution_starts s, t WHERE s.expires_at > t.now GROUP BY 1
     ), ready AS (
       -- an execution starts when the ones running plus those ahead of it in line leave it a slot
       -- (and a rate token): the claim of several with one key stays within the limit
       SELECT q.* FROM queue q
       LEFT JOIN running r ON r.key = q.concurrency_key
       LEFT JOIN tokens k ON k.key = q.rate_key
       WHERE (q.concurrency_limit IS NULL OR coalesce(r.n, 0) + q.in_line <= q.concurrency_limit)
         AND (q.rate_limit IS NULL OR coalesce(k.n, 0) + q.in_rate_line <= q.rate_limit)
       ORDER BY q.run_at, q.created_at
       LIMIT ${limit}
     )`;
}

/**
 * Claims up to `limit` executions with limits for `workerId`. First, without locks, which keys
 * have an execution that looks ready; then, in a transaction: lock those keys, claim with a fresh
 * snapshot, record the starts of rate-limited ones. Returns what it claimed and whether executions
 * with limits are still queued.
 */
export async function claimLimitedExecutions(db: Database, workerId: string, limit: number, leaseSeconds: number): Promise<LimitedClaim> {
  const found = await db.query<{ waiting: boolean; keys: string[] | null }>(
    `WITH ${readyCtes('$1')}
     SELECT EXISTS (SELECT 1 FROM executions WHERE status = 'queued' AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)) AS waiting,
            (SELECT array_agg(DISTINCT k.key) FROM ready, LATERAL (VALUES (ready.concurrency_key), (ready.rate_key)) AS k(key)
             WHERE k.key IS NOT NULL) AS keys`,
    [limit],
  );
  const { waiting, keys } = found.rows[0];
  if (!keys?.length) return { claimed: [], waiting };
  const claimed = await db.transaction(async (tx) => {
    await lockKeys(tx, keys);
    const { rows } = await tx.query<ClaimedExecution>(
      claimSql(
        `${readyCtes('$2', '$4::text[]')}, candidates AS (
           SELECT e.id FROM executions e JOIN ready ON ready.id = e.id
           WHERE e.status IN (${execFrom('claim')})
           FOR UPDATE OF e SKIP LOCKED
         )`,
        {
          startedAt: '(SELECT now FROM t)',
          more: `starts AS (
             INSERT INTO execution_starts (key, execution_id, started_at, expires_at)
             SELECT claimed.rate_key, claimed.id, t.now, t.now + make_interval(secs => claimed.rate_interval_seconds)
             FROM claimed, t WHERE claimed.rate_key IS NOT NULL
           )`,
        },
      ),
      [workerId, limit, leaseSeconds, keys],
    );
    return rows;
  });
  return { claimed, waiting: true };
}

/** Takes the transaction's advisory lock of each key, in the order of their hashes (no deadlock between two claims). */
export async function lockKeys(tx: Queryable, keys: string[]): Promise<void> {
  await tx.query(
    `SELECT l.h, pg_advisory_xact_lock(l.h) FROM (
       SELECT DISTINCT hashtextextended('${LOCK_PREFIX}' || k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY 1
     ) l`,
    [keys],
  );
}

/** Deletes expired rate tokens (any worker, now and then); skips rows another statement holds. */
export async function pruneExecutionStarts(db: Queryable, batch = 5000): Promise<number> {
  const r = await db.query(
    `DELETE FROM execution_starts WHERE ctid = ANY (ARRAY(
       SELECT ctid FROM execution_starts WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED))`,
    [batch],
  );
  return r.rowCount;
}
