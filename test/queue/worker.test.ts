import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { PGlite } from '@electric-sql/pglite';
import type { Database } from '../../src/db/database.ts';
import { enqueueExecution as enqueue } from '../../src/state/enqueue.ts';
import { retryDelayMs } from '../../src/queue/backoff.ts';
import { wrapPglite } from '../../src/db/pglite.ts';
import { migrate } from '../../src/db/migrate.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';
import { makeJob, makeWorker } from '../helpers/jobs.ts';
import { json, startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';

const manual = () => ({ trigger: { type: 'manual' as const, time: new Date().toISOString(), user: 'test' } });
const execution = async (db: Database, id: string) => (await db.query<any>('SELECT * FROM executions WHERE id = $1', [id])).rows[0];
const stepRuns = async (db: Database, id: string) => (await db.query<any>('SELECT * FROM step_runs WHERE execution_id = $1 ORDER BY position', [id])).rows;
/** Back in the queue after a shutdown: unlocked, the attempt not counted. */
async function assertHandedBack(db: Database, id: string): Promise<void> {
  const e = await execution(db, id);
  assert.equal(e.status, 'queued');
  assert.equal(e.attempt, 0);
  assert.equal(e.locked_by, null);
}
const finished = (db: Database, id: string, timeoutMs = 20000) =>
  waitFor(
    async () => {
      const e = await execution(db, id);
      return ['succeeded', 'failed', 'dead_lettered', 'cancelled'].includes(e.status) ? e : null;
    },
    `execution ${id} to finish`,
    timeoutMs,
  );

describe('retry backoff', () => {
  it('grows exponentially with jitter between half and the full delay, capped at an hour', () => {
    assert.equal(
      retryDelayMs(2, 1, () => 0),
      1000,
    );
    assert.equal(
      retryDelayMs(2, 1, () => 1),
      2000,
    );
    assert.equal(
      retryDelayMs(2, 3, () => 0),
      4000,
    );
    assert.equal(
      retryDelayMs(2, 3, () => 1),
      8000,
    );
    assert.equal(
      retryDelayMs(60, 20, () => 1),
      3_600_000,
    );
  });
});

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: workers and the engine`, () => {
    let db: Database;
    let server: TestServer;
    before(async () => {
      db = await openTestDb(kind);
      server = await startHttpServer();
    });
    after(async () => {
      await db.close();
      await server.close();
    });

    it('resolves templates across three steps calling a real HTTP server, persisting each output', async () => {
      server.handler = (r, res) => {
        if (r.url === '/customers') return json(res, 200, { data: { items: [{ id: 'C-42', name: 'Lan' }] } });
        if (r.url === '/orders' && r.method === 'POST') return json(res, 201, { order: { id: 7, customer: JSON.parse(r.body).customer } });
        if (r.url?.startsWith('/notify')) return json(res, 200, { ok: true });
        res.writeHead(404).end();
      };
      const job = await makeJob(db, {
        variables: { region: 'south' },
        steps: [
          { id: 'a', type: 'http', config: { url: `${server.url}/customers` } },
          {
            id: 'b',
            type: 'http',
            config: { method: 'POST', url: `${server.url}/orders`, body: { customer: '{{steps.a.output.body.data.items[0].id}}', region: '${region}' } },
          },
          { id: 'c', type: 'http', config: { url: `${server.url}/notify`, query: { order: '{{steps.b.output.body.order.id}}', by: '{{trigger.user}}' } } },
        ],
      });
      const id = (await enqueue(db, job, manual()))!;
      const w = makeWorker(db);
      await w.start();
      const e = await finished(db, id);
      await w.stop(1000);
      assert.equal(e.status, 'succeeded', JSON.stringify(e.error));
      const post = server.seen.find((s) => s.url === '/orders')!;
      assert.deepEqual(JSON.parse(post.body), { customer: 'C-42', region: 'south' });
      const notify = new URL(server.seen.find((s) => s.url.startsWith('/notify'))!.url, server.url);
      assert.equal(notify.searchParams.get('order'), '7');
      assert.equal(notify.searchParams.get('by'), 'test');
      const steps = await stepRuns(db, id);
      assert.deepEqual(
        steps.map((s) => s.status),
        ['succeeded', 'succeeded', 'succeeded'],
      );
      assert.equal(steps[1].output.body.order.customer, 'C-42');
      assert.ok(steps.every((s) => s.started_at && s.completed_at && s.completed_at >= s.started_at));
    });

    it('a missing template reference fails the step with a message naming it, without retrying', async () => {
      server.handler = (_r, res) => json(res, 200, { data: {} });
      const job = await makeJob(db, {
        max_retries: 3,
        steps: [
          { id: 'a', type: 'http', config: { url: `${server.url}/x` } },
          { id: 'b', type: 'http', config: { url: `${server.url}/y/{{steps.a.output.body.data.items[0].id}}` } },
        ],
      });
      const id = (await enqueue(db, job, manual()))!;
      const w = makeWorker(db);
      await w.start();
      const e = await finished(db, id);
      await w.stop(1000);
      assert.equal(e.status, 'failed');
      assert.equal(e.attempt, 1, 'not retried: a template error does not heal by itself');
      assert.equal(e.error.code, 'template_error');
      assert.match(e.error.message, /steps\.a\.output\.body\.data\.items\[0\]\.id/);
      assert.equal(e.error.step_id, 'b');
    });

    it('retries with growing backoff and ends dead-lettered, keeping every attempt', async () => {
      server.handler = (r, res) => (r.url === '/flaky' ? json(res, 503, { error: 'down' }) : res.end('ok'));
      const job = await makeJob(db, {
        max_retries: 2,
        retry_backoff_seconds: 0.2,
        steps: [{ id: 'call', type: 'http', config: { url: `${server.url}/flaky` } }],
      });
      const before = server.seen.length;
      const id = (await enqueue(db, job, manual()))!;
      const w = makeWorker(db, { pollIntervalMs: 50 });
      await w.start();
      const e = await finished(db, id);
      await w.stop(1000);
      assert.equal(e.status, 'dead_lettered');
      assert.equal(e.attempt, 3);
      assert.equal(e.attempts.length, 3);
      assert.deepEqual(
        e.attempts.map((a: any) => a.error.code),
        ['http_status', 'http_status', 'http_status'],
      );
      const calls = server.seen
        .slice(before)
        .filter((s) => s.url === '/flaky')
        .map((s) => s.at);
      assert.equal(calls.length, 3);
      // Backoff lower bounds (equal jitter): >= 0.1 s after the first failure, >= 0.2 s after the second.
      assert.ok(calls[1] - calls[0] >= 100, `first retry after ${calls[1] - calls[0]} ms`);
      assert.ok(calls[2] - calls[1] >= 200, `second retry after ${calls[2] - calls[1]} ms`);
      const list = await db.query(`SELECT id FROM executions WHERE status = 'dead_lettered' AND id = $1`, [id]);
      assert.equal(list.rows.length, 1, 'visible as dead-lettered');
    });

    it('a non-retryable failure (404) fails at once; a step timeout is reported as step_timeout', async () => {
      server.handler = (r, res) => (r.url === '/slow' ? setTimeout(() => res.end('late'), 3000) : res.writeHead(404).end());
      const job = await makeJob(db, { max_retries: 3, steps: [{ id: 'gone', type: 'http', config: { url: `${server.url}/missing` } }] });
      const slow = await makeJob(db, { max_retries: 0, steps: [{ id: 'slow', type: 'http', timeout_seconds: 1, config: { url: `${server.url}/slow` } }] });
      const w = makeWorker(db);
      await w.start();
      const a = await finished(db, (await enqueue(db, job, manual()))!);
      const b = await finished(db, (await enqueue(db, slow, manual()))!);
      await w.stop(1000);
      assert.equal(a.status, 'failed');
      assert.equal(a.attempt, 1);
      assert.equal(a.error.code, 'http_status');
      assert.equal(b.status, 'dead_lettered');
      assert.ok(['step_timeout', 'timeout'].includes(b.error.code), b.error.code);
      const steps = await stepRuns(db, b.id);
      assert.equal(steps[0].status, 'failed');
    });

    it('on shutdown, an execution that outlives the grace period goes back to the queue without losing an attempt', async () => {
      server.handler = (r, res) => (r.url === '/long' ? setTimeout(() => res.end('done'), 1500) : res.end('ok'));
      const job = await makeJob(db, { steps: [{ id: 'long', type: 'http', config: { url: `${server.url}/long` } }] });
      const id = (await enqueue(db, job, manual()))!;
      const w = makeWorker(db);
      await w.start();
      await waitFor(async () => (await execution(db, id)).status === 'running', 'running');
      await w.stop(100);
      await assertHandedBack(db, id);
      assert.equal((await stepRuns(db, id))[0].status, 'pending');
      const w2 = makeWorker(db);
      await w2.start();
      assert.equal((await finished(db, id)).status, 'succeeded');
      await w2.stop(1000);
    });

    it('claims ahead: an execution due soon is claimed before its run_at, held, and its step starts at its run_at', async () => {
      server.handler = (_r, res) => res.end('ok');
      const job = await makeJob(db, { steps: [{ id: 'call', type: 'http', config: { url: `${server.url}/ahead` } }] });
      const runAt = new Date(Date.now() + 1500);
      const id = (await enqueue(db, job, { ...manual(), runAt }))!;
      const w = makeWorker(db, { claimAheadMs: 3000 });
      await w.start();
      try {
        await waitFor(async () => (await execution(db, id)).status === 'running', 'claimed ahead');
        const held = await execution(db, id);
        const claimedAt = Date.now();
        if (claimedAt < runAt.getTime() - 100) {
          // Held, not started: no step row yet, and its start time is the time it is due.
          assert.deepEqual(await stepRuns(db, id), []);
          assert.equal(new Date(held.started_at).getTime(), runAt.getTime());
        }
        const done = await finished(db, id);
        assert.equal(done.status, 'succeeded');
        assert.equal(done.attempt, 1);
        const [step] = await stepRuns(db, id);
        assert.ok(new Date(step.started_at).getTime() >= runAt.getTime(), `the step started at ${step.started_at}, before its run_at ${runAt.toISOString()}`);
      } finally {
        await w.stop(1000);
      }
    });

    it('claims ahead: a held execution goes back to the queue at shutdown, not started and without losing an attempt', async () => {
      server.handler = (_r, res) => res.end('ok');
      const job = await makeJob(db, { steps: [{ id: 'call', type: 'http', config: { url: `${server.url}/held` } }] });
      const id = (await enqueue(db, job, { ...manual(), runAt: new Date(Date.now() + 4000) }))!;
      const w = makeWorker(db, { claimAheadMs: 8000 });
      await w.start();
      await waitFor(async () => (await execution(db, id)).status === 'running', 'claimed ahead');
      // A grace period longer than the wait: a held execution is handed back, not started during it.
      await w.stop(10_000);
      await assertHandedBack(db, id);
      assert.deepEqual(await stepRuns(db, id), []);
      const w2 = makeWorker(db, { claimAheadMs: 8000 });
      await w2.start();
      try {
        assert.equal((await finished(db, id)).status, 'succeeded');
      } finally {
        await w2.stop(1000);
      }
    });

    it('a worker process killed (SIGKILL) in the middle of a step loses nothing: another worker finishes the execution', async () => {
      let url: string;
      let socketServer: PGLiteSocketServer | null = null;
      let own: Database = db;
      if (kind === 'postgres') {
        url = (db as any).url;
      } else {
        // The child process reaches this test's PGlite through PGlite's PostgreSQL wire server.
        const pgl = await PGlite.create();
        own = wrapPglite(pgl);
        await migrate(own);
        socketServer = new PGLiteSocketServer({ db: pgl, port: 0, host: '127.0.0.1', maxConnections: 8 } as any);
        await socketServer.start();
        const port = (socketServer as any).server?.address()?.port ?? Number(((socketServer as any).getServerConn?.() ?? '').split(':').pop());
        url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
      }
      let release: (() => void) | null = null;
      server.handler = (r, res) => {
        if (r.url === '/hang') release = () => res.end('finally');
        else res.end('ok');
      };
      const job = await makeJob(own, {
        max_retries: 2,
        steps: [
          { id: 'first', type: 'http', config: { url: `${server.url}/first` } },
          { id: 'stuck', type: 'http', config: { url: `${server.url}/hang` } },
          { id: 'last', type: 'http', config: { url: `${server.url}/last` } },
        ],
      });
      const id = (await enqueue(own, job, manual()))!;
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/worker-process.ts'], {
        env: { ...process.env, DATABASE_URL: url, LEASE_SECONDS: '2', POOL_SIZE: kind === 'pglite' ? '2' : '3' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        await waitFor(async () => release !== null, 'the child worker to reach the hanging step', 30000);
        const during = await execution(own, id);
        assert.equal(during.locked_by, 'doomed-worker');
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        server.handler = (_r, res) => res.end('ok'); // the next attempt's call answers
        const w = makeWorker(own, { leaseSeconds: 2, pollIntervalMs: 100 });
        await w.start();
        const e = await finished(own, id, 30000);
        await w.stop(1000);
        assert.equal(e.status, 'succeeded');
        assert.equal(e.attempt, 2);
        assert.equal(e.attempts[0].error.code, 'lease_expired');
        assert.match(e.attempts[0].worker, /doomed-worker/);
        const steps = await stepRuns(own, id);
        assert.deepEqual(
          steps.map((s: any) => s.status),
          ['succeeded', 'succeeded', 'succeeded'],
        );
        assert.equal(steps[0].attempt, 1, 'the step finished before the crash was not run again');
        assert.equal(steps[1].attempt, 2, 'the interrupted step ran again on the new worker');
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        (release as (() => void) | null)?.();
        if (socketServer) {
          await socketServer.stop();
          await own.close();
        }
      }
    });
  });
});
