/**
 * The claim of executions with limits (src/state/claim-limited.ts): concurrency per key, rate per
 * key or job, claims racing on several connections, and that the fast path leaves them alone.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/db/database.ts';
import { enqueueExecution } from '../../src/state/enqueue.ts';
import { claimExecutions } from '../../src/state/claim.ts';
import { type LimitedClaim, claimLimitedExecutions, lockKeys, pruneExecutionStarts } from '../../src/state/claim-limited.ts';
import { recordSuccesses } from '../../src/state/finish.ts';
import { isVecronError } from '../../src/errors.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';
import { makeJob } from '../helpers/jobs.ts';

const step = { id: 'only', type: 'http', config: { url: 'http://127.0.0.1:9/' } };
const manual = (payload: unknown = {}) => ({ trigger: { type: 'manual' as const, time: new Date().toISOString(), payload } });

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: claiming executions with limits`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(async () => {
      await db.close();
    });

    const runningByKey = async (): Promise<Record<string, number>> => {
      const { rows } = await db.query<{ key: string; n: number }>(
        `SELECT concurrency_key AS key, count(*)::int AS n FROM executions WHERE status = 'running' AND concurrency_key IS NOT NULL GROUP BY 1`,
      );
      return Object.fromEntries(rows.map((r) => [r.key, r.n]));
    };
    const finishAll = async (worker: string, ids: string[]) => {
      const owned = await recordSuccesses(
        db,
        worker,
        ids.map((executionId) => ({ executionId, lastStep: { stepId: 'only', completedAt: new Date(), outputJson: '{}' } })),
      );
      assert.ok(owned.every(Boolean));
    };

    it('renders the key from the trigger and runs at most concurrency_limit per key, however many claims race', async () => {
      const job = await makeJob(db, { steps: [step], concurrency_key: 'customer-{{trigger.payload.customer}}', concurrency_limit: 2 });
      for (let i = 0; i < 12; i++) await enqueueExecution(db, job, manual({ customer: i % 2 ? 'a' : 'b' }));
      const keys = (
        await db.query<{ concurrency_key: string; concurrency_limit: number }>(
          'SELECT DISTINCT concurrency_key, concurrency_limit FROM executions WHERE job_id = $1',
          [job.id],
        )
      ).rows;
      assert.deepEqual(keys.map((k) => k.concurrency_key).sort(), ['customer-a', 'customer-b']);
      assert.ok(keys.every((k) => k.concurrency_limit === 2));

      // The fast path never takes them.
      assert.deepEqual(await claimExecutions(db, 'fast', 10, 60), []);
      // Six claims at once (on PostgreSQL each on its own connection of the pool).
      const claims = await Promise.all(Array.from({ length: 6 }, (_, i) => claimLimitedExecutions(db, `w${i}`, 3, 60)));
      const claimed = claims.flatMap((c, i) => c.claimed.map((e) => ({ worker: `w${i}`, id: e.id, key: e.concurrency_key })));
      assert.deepEqual(await runningByKey(), { 'customer-a': 2, 'customer-b': 2 });
      assert.equal(claimed.length, 4);
      assert.ok(claims.every((c) => c.waiting));

      // Finishing one of customer-a's frees exactly one slot, for customer-a.
      const a = claimed.find((c) => c.key === 'customer-a')!;
      await finishAll(a.worker, [a.id]);
      const next = await claimLimitedExecutions(db, 'w9', 10, 60);
      assert.deepEqual(
        next.claimed.map((e) => e.concurrency_key),
        ['customer-a'],
      );
      assert.deepEqual(await runningByKey(), { 'customer-a': 2, 'customer-b': 2 });

      // Drain: every execution runs, never more than two per key.
      let rounds = 0;
      for (;;) {
        const running = (
          await db.query<{ id: string; locked_by: string }>(`SELECT id, locked_by FROM executions WHERE job_id = $1 AND status = 'running'`, [job.id])
        ).rows;
        for (const w of new Set(running.map((r) => r.locked_by)))
          await finishAll(
            w,
            running.filter((r) => r.locked_by === w).map((r) => r.id),
          );
        const round = await Promise.all([claimLimitedExecutions(db, 'x1', 5, 60), claimLimitedExecutions(db, 'x2', 5, 60)]);
        for (const [k, n] of Object.entries(await runningByKey())) assert.ok(n <= 2, `${n} running with key ${k}`);
        if (round.every((r) => r.claimed.length === 0)) break;
        assert.ok(++rounds < 20);
      }
      const statuses = (
        await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM executions WHERE job_id = $1 GROUP BY 1', [job.id])
      ).rows;
      assert.deepEqual(statuses, [{ status: 'succeeded', n: 12 }]);
      const after = await claimLimitedExecutions(db, 'x3', 5, 60);
      assert.deepEqual(after, { claimed: [], waiting: false });
    });

    it('a claim waits for a claim of the same key in flight and counts what it committed (the advisory lock)', async () => {
      const job = await makeJob(db, { steps: [step], concurrency_key: 'inflight', concurrency_limit: 1 });
      const ids = [await enqueueExecution(db, job, manual()), await enqueueExecution(db, job, manual())];
      let claim: Promise<LimitedClaim> | undefined;
      // Another worker's claim of the key, held open: it has the key's lock and the later execution
      // running (the earlier one was locked when it looked), not committed yet. A claim that did
      // not wait for the lock would see the earlier one first in line with nothing running, and
      // take it: two running with a limit of 1.
      await db.transaction(async (tx) => {
        await lockKeys(tx, ['inflight']);
        await tx.query(`UPDATE executions SET status = 'running', locked_by = 'other', attempt = 1, started_at = now() WHERE id = $1`, [ids[1]]);
        claim = claimLimitedExecutions(db, 'late', 5, 60);
        await new Promise((r) => setTimeout(r, 300));
      });
      const late = (await claim)!;
      assert.deepEqual(late.claimed, []);
      assert.deepEqual(await runningByKey(), { inflight: 1 });
      await finishAll('other', [ids[1]!]);
      const next = await claimLimitedExecutions(db, 'late', 5, 60);
      assert.deepEqual(
        next.claimed.map((e) => e.id),
        [ids[0]],
      );
      await finishAll('late', [ids[0]!]);
    });

    it('a constant key is shared by every job that names it; a limit without a key applies to the job', async () => {
      const one = await makeJob(db, { steps: [step], concurrency_key: 'erp', concurrency_limit: 1 });
      const two = await makeJob(db, { steps: [step], concurrency_key: 'erp', concurrency_limit: 1 });
      const own = await makeJob(db, { steps: [step], concurrency_limit: 1 });
      for (const j of [one, two, own, own]) await enqueueExecution(db, j, manual());
      const { claimed } = await claimLimitedExecutions(db, 'w', 10, 60);
      assert.deepEqual(claimed.map((e) => e.concurrency_key).sort(), [`erp`, `job:${own.id}`]);
      await finishAll(
        'w',
        claimed.map((e) => e.id),
      );
      const second = await claimLimitedExecutions(db, 'w', 10, 60);
      assert.deepEqual(second.claimed.map((e) => e.job_id).sort(), [two.id, own.id].sort());
      await finishAll(
        'w',
        second.claimed.map((e) => e.id),
      );
    });

    it('a rate limit allows rate_limit starts per interval, retries included, and records each start', async () => {
      const job = await makeJob(db, { steps: [step], rate_limit: { limit: 3, interval_seconds: 3600 } });
      for (let i = 0; i < 5; i++) await enqueueExecution(db, job, manual());
      const first = await claimLimitedExecutions(db, 'w', 10, 60);
      assert.equal(first.claimed.length, 3);
      assert.ok(first.claimed.every((e) => e.rate_key === `job:${job.id}`));
      await finishAll(
        'w',
        first.claimed.map((e) => e.id),
      );
      // Nothing is running, but the three starts hold the job's tokens for the interval.
      assert.deepEqual(await claimLimitedExecutions(db, 'w', 10, 60), { claimed: [], waiting: true });
      const starts = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM execution_starts WHERE key = $1', [`job:${job.id}`])).rows[0].n;
      assert.equal(starts, 3);
      // Tokens that expired are pruned and free the next starts.
      await db.query(`UPDATE execution_starts SET expires_at = now() - interval '1 second' WHERE key = $1`, [`job:${job.id}`]);
      assert.equal(await pruneExecutionStarts(db), 3);
      const second = await claimLimitedExecutions(db, 'w', 10, 60);
      assert.equal(second.claimed.length, 2);
      await finishAll(
        'w',
        second.claimed.map((e) => e.id),
      );
    });

    it("a rate limit per key counts each key's starts apart", async () => {
      const job = await makeJob(db, {
        steps: [step],
        concurrency_key: 'tenant-{{trigger.payload.t}}',
        rate_limit: { limit: 1, interval_seconds: 3600, per: 'key' },
      });
      for (const t of ['x', 'x', 'y', 'y', 'z']) await enqueueExecution(db, job, manual({ t }));
      const { claimed } = await claimLimitedExecutions(db, 'w', 10, 60);
      assert.deepEqual(claimed.map((e) => e.rate_key).sort(), ['tenant-x', 'tenant-y', 'tenant-z']);
      assert.ok(
        claimed.every((e) => e.concurrency_key === null),
        'no concurrency limit: only the rate',
      );
      await finishAll(
        'w',
        claimed.map((e) => e.id),
      );
      assert.deepEqual((await claimLimitedExecutions(db, 'w', 10, 60)).claimed, []);
    });

    it('a manual trigger without the data its key needs is refused with the path; a schedule shares the key with the part left empty', async () => {
      const job = await makeJob(db, { steps: [step], concurrency_key: 'c-{{trigger.payload.customer.id}}', concurrency_limit: 1 });
      await assert.rejects(
        () => enqueueExecution(db, job, manual({ customer: {} })),
        (err: unknown) => {
          assert.ok(isVecronError(err));
          assert.equal(err.code, 'validation_failed');
          assert.deepEqual(
            (err.details as any).problems.map((p: any) => p.path),
            ['customer.id'],
          );
          return true;
        },
      );
      const id = await enqueueExecution(db, job, { trigger: { type: 'schedule', time: new Date().toISOString() }, fireTime: new Date() });
      const row = (await db.query<{ concurrency_key: string }>('SELECT concurrency_key FROM executions WHERE id = $1', [id])).rows[0];
      assert.equal(row.concurrency_key, 'c-');
      await db.query(`UPDATE executions SET status = 'cancelled' WHERE id = $1`, [id]);
    });

    it('keys can use the job and its non-secret variables; a long key is cut with a hash of the whole', async () => {
      await db.query(`INSERT INTO variables (name, value, secret) VALUES ('region', '"south"', false)`);
      const job = await makeJob(db, {
        steps: [step],
        concurrency_key: '{{job.name}}/{{variables.region}}/${shard}',
        concurrency_limit: 1,
        variables: { shard: 7 },
      });
      const long = await makeJob(db, { steps: [step], concurrency_key: '{{trigger.payload.s}}', concurrency_limit: 1 });
      const a = await enqueueExecution(db, job, manual());
      const b = await enqueueExecution(db, long, manual({ s: 'k'.repeat(2000) }));
      const c = await enqueueExecution(db, long, manual({ s: `${'k'.repeat(1999)}j` }));
      const key = async (id: string | null) =>
        (await db.query<{ concurrency_key: string }>('SELECT concurrency_key FROM executions WHERE id = $1', [id])).rows[0].concurrency_key;
      assert.equal(await key(a), `${job.name}/south/7`);
      const [kb, kc] = [await key(b), await key(c)];
      assert.equal(kb.length, 500);
      assert.notEqual(kb, kc);
      await db.query(`UPDATE executions SET status = 'cancelled' WHERE id = ANY($1::uuid[])`, [[a, b, c]]);
    });
  });
});
