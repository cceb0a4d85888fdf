/**
 * Idempotency keys for triggers (issue 18): a client that sends `Idempotency-Key` on a manual or
 * webhook trigger, and sends it again (a retry after a timeout, a webhook redelivered), gets the
 * execution of its first request instead of a second run, for VECRON_IDEMPOTENCY_WINDOW_SECONDS.
 *
 * Race-safe by the primary key of `idempotency_keys` (migration 015), not by a read before the
 * write: the key is inserted first, in the transaction that creates the execution. Of concurrent
 * requests with one key (on any API process) one insert wins; the others wait on the unique index
 * until the winner commits, then find its row and answer with its execution. If the winner rolls
 * back, a waiting insert goes ahead instead.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Database, Queryable } from '../db/database.ts';
import { VecronError, validationFailed } from '../errors.ts';
import { startPeriodic } from '../periodic.ts';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Answer header of a repeat: the execution is the one the first request made. */
export const REPLAYED_HEADER = 'Idempotent-Replayed';
/** As Stripe: long enough for a UUID with a prefix, or a content hash. */
export const MAX_KEY_LENGTH = 255;

export type KeySource = 'manual' | 'webhook';

export interface KeyScope {
  jobId: string;
  source: KeySource;
  key: string;
  /** sha256 of what the request asks for (see fingerprint()). */
  fingerprint: string;
}

export interface TriggerOutcome {
  executionId: string;
  /** The status now (a repeat may find the first execution finished). */
  status: string;
  /** True when the key was seen before: nothing new was queued. */
  replayed: boolean;
}

const PATH = `headers.${IDEMPOTENCY_HEADER}`;

/**
 * The request's Idempotency-Key, or null without one. A key is 1 to 255 printable ASCII characters
 * (spaces allowed inside): anything else is a 400 naming the header, never a silent second run.
 */
export function readIdempotencyKey(req: FastifyRequest): string | null {
  const raw = req.headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return null;
  if (Array.isArray(raw)) throw validationFailed([{ path: PATH, message: 'must be sent once' }], 'request');
  const key = raw.trim();
  if (key === '') throw validationFailed([{ path: PATH, message: 'must not be empty' }], 'request');
  if (key.length > MAX_KEY_LENGTH)
    throw validationFailed([{ path: PATH, message: `must be at most ${MAX_KEY_LENGTH} characters, got ${key.length}` }], 'request');
  if (!/^[\x20-\x7e]+$/.test(key)) throw validationFailed([{ path: PATH, message: 'must be printable ASCII characters' }], 'request');
  return key;
}

/** A JSON value with its object keys sorted, so that `{"a":1,"b":2}` and `{"b":2,"a":1}` are one request. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** sha256 of the parts that say what a request asks for, each canonical JSON or raw bytes. */
export function fingerprint(...parts: (unknown | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const bytes = Buffer.isBuffer(p) ? p : Buffer.from(canonical(p));
    h.update(`${bytes.length}:`).update(bytes);
  }
  return h.digest('hex');
}

const reused = (scope: KeyScope, first: { execution_id: string | null }) =>
  new VecronError(
    'idempotency_key_reused',
    `Idempotency-Key '${scope.key}' was already used with a different request for this job; use a new key for a new request`,
    { path: PATH, key: scope.key, execution_id: first.execution_id },
  );

/** The live (unexpired) key of `scope`, with its execution's status; throws when its request differs. */
export async function findKey(db: Queryable, scope: KeyScope): Promise<TriggerOutcome | null> {
  const { rows } = await db.query<{ fingerprint: string; execution_id: string | null; status: string | null }>(
    `SELECT k.fingerprint, k.execution_id, e.status
     FROM idempotency_keys k LEFT JOIN executions e ON e.id = k.execution_id
     WHERE k.job_id = $1 AND k.source = $2 AND k.key = $3 AND k.expires_at > now()`,
    [scope.jobId, scope.source, scope.key],
  );
  const row = rows[0];
  if (!row) return null;
  if (row.fingerprint !== scope.fingerprint) throw reused(scope, row);
  // A committed key always has its execution (same transaction); a deleted execution takes the key along.
  if (!row.execution_id || !row.status)
    throw new VecronError('conflict', `Idempotency-Key '${scope.key}' is being used by a request in progress; retry in a moment`);
  return { executionId: row.execution_id, status: row.status, replayed: true };
}

/**
 * Runs `enqueue` once per key: inside the caller's transaction `tx`, claims the key (a new one, or
 * one whose window has passed) and records the execution `enqueue` creates; a live key answers
 * with its execution instead (replayed), or throws idempotency_key_reused when it came with another
 * request. `enqueue` returning null (nothing queued) throws, which rolls the key back with it.
 */
export async function triggerOnce(tx: Queryable, scope: KeyScope, windowSeconds: number, enqueue: () => Promise<string | null>): Promise<TriggerOutcome> {
  const claimed = await tx.query(
    `INSERT INTO idempotency_keys (job_id, source, key, fingerprint, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
     ON CONFLICT (job_id, source, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, execution_id = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
       WHERE idempotency_keys.expires_at <= now()
     RETURNING key`,
    [scope.jobId, scope.source, scope.key, scope.fingerprint, windowSeconds],
  );
  if (claimed.rowCount === 0) {
    const first = await findKey(tx, scope);
    if (!first) throw new VecronError('conflict', `Idempotency-Key '${scope.key}' could not be claimed; retry in a moment`);
    return first;
  }
  const executionId = await enqueue();
  if (!executionId) throw new VecronError('conflict', 'the execution could not be queued');
  await tx.query('UPDATE idempotency_keys SET execution_id = $4 WHERE job_id = $1 AND source = $2 AND key = $3', [
    scope.jobId,
    scope.source,
    scope.key,
    executionId,
  ]);
  return { executionId, status: 'queued', replayed: false };
}

/** Deletes expired keys, `batch` rows per statement (short locks), until none is left; returns the count. */
export async function pruneIdempotencyKeys(db: Queryable, batch = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await db.query(
      `DELETE FROM idempotency_keys WHERE (job_id, source, key) IN (
         SELECT job_id, source, key FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)`,
      [batch],
    );
    total += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < batch) return total;
  }
}

/** Prunes expired keys now and every `everyMs` (each process; a second pruner finds nothing to do). */
export function startIdempotencyPruner(db: Database, onError: (err: unknown) => void, onPruned?: (n: number) => void, everyMs = 60_000): () => Promise<void> {
  return startPeriodic(async () => onPruned?.(await pruneIdempotencyKeys(db)), everyMs, onError);
}
