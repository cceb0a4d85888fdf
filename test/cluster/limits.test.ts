/**
 * Concurrency keys and rate limits across processes (issue 18): an api and three worker processes
 * on one PostgreSQL. Every run reports its start and end to a loopback server; the most runs of a
 * key open at one moment never exceed the key's limit, and every execution finishes. A rate limit
 * holds across the processes too (from the start times the claims recorded).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { postgresBinDir } from './postgres-server.ts';
import { Cluster, waitFor } from './harness.ts';
import { maxOverlap } from '../helpers/overlap.ts';

/** Records [start, end] of every run by key; answers after `?delay=` ms. */
class RunRecorder {
  readonly runs: { key: string; start: number; end: number }[] = [];
  private server!: Server;
  url = '';
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const start = Date.now();
      req.resume();
      setTimeout(
        () => {
          this.runs.push({ key: u.searchParams.get('k') ?? '', start, end: Date.now() });
          res.end('{}');
        },
        Number(u.searchParams.get('delay') ?? 0),
      );
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('cluster: concurrency keys and rate limits across worker processes', {
  skip: !postgresBinDir() && 'no PostgreSQL binaries under /usr/lib/postgresql/<version>/bin',
}, () => {
  // Four executions at once per worker, three workers: twelve slots for keys of limit 2.
  const c = new Cluster({ leaseSeconds: 15, pollIntervalMs: 200, env: { VECRON_WORKER_CONCURRENCY: '4' } });
  const rec = new RunRecorder();

  before(async () => {
    await rec.start();
    await c.start();
    const procs = await Promise.all((['api', 'worker', 'worker', 'worker'] as const).map((r) => c.spawn(r)));
    await Promise.all(procs.map((p) => c.logged(p, /vecron started/)));
  });
  after(async () => {
    await c.close();
    await rec.stop();
  });

  const finished = (jobId: string, n: number) =>
    waitFor(
      `${n} executions to succeed`,
      async () => {
        const rows = await c.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM executions WHERE job_id = $1 GROUP BY 1', [jobId]);
        const bad = rows.filter((r) => r.status !== 'succeeded' && r.status !== 'queued' && r.status !== 'running');
        if (bad.length) throw new Error(`executions ended ${JSON.stringify(bad)}`);
        return rows.find((r) => r.status === 'succeeded')?.n === n;
      },
      180_000,
    );

  it('never runs more than concurrency_limit per key at once, and runs them all', { timeout: 300_000 }, async () => {
    const job = await c.api('POST', '/api/v1/jobs', {
      name: 'per-customer',
      timeout_seconds: 60,
      concurrency_key: 'customer-{{trigger.payload.customer}}',
      concurrency_limit: 2,
      steps: [{ id: 'call', type: 'http', config: { url: `${rec.url}/run?k={{trigger.payload.customer}}&delay=150`, method: 'POST' } }],
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const keys = ['a', 'b', 'c'];
    // Queued while the workers claim: triggers and claims race.
    await Promise.all(
      Array.from({ length: 36 }, async (_, i) => {
        const r = await c.api('POST', `/api/v1/jobs/${job.body.id}/trigger`, { customer: keys[i % 3] });
        assert.equal(r.status, 202, JSON.stringify(r.body));
      }),
    );
    await finished(job.body.id, 36);
    for (const k of keys) {
      const mine = rec.runs.filter((r) => r.key === k);
      assert.equal(mine.length, 12, `runs of ${k}`);
      assert.ok(maxOverlap(mine) <= 2, `${maxOverlap(mine)} runs of key ${k} at once (limit 2)`);
    }
    // Not a global lock: keys ran beside each other.
    assert.ok(maxOverlap(rec.runs) > 2, `${maxOverlap(rec.runs)} runs at once over all keys`);
    const failed = await c.query(`SELECT id FROM executions WHERE job_id = $1 AND jsonb_array_length(attempts) > 0`, [job.body.id]);
    assert.equal(failed.length, 0, 'no attempt failed or was taken over');
  });

  it('a rate limit holds across the worker processes', { timeout: 300_000 }, async () => {
    const job = await c.api('POST', '/api/v1/jobs', {
      name: 'rate-limited',
      timeout_seconds: 60,
      rate_limit: { limit: 3, interval_seconds: 2 },
      steps: [{ id: 'call', type: 'http', config: { url: `${rec.url}/run?k=rate`, method: 'POST' } }],
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    await Promise.all(Array.from({ length: 10 }, () => c.api('POST', `/api/v1/jobs/${job.body.id}/trigger`, {})));
    await finished(job.body.id, 10);
    const starts = (await c.query<{ at: Date }>('SELECT started_at AS at FROM executions WHERE job_id = $1 ORDER BY started_at', [job.body.id])).map((r) =>
      r.at.getTime(),
    );
    assert.equal(starts.length, 10);
    // In any window of 2 s at most 3 starts: the 4th start after any start is 2 s or more later.
    for (let i = 0; i + 3 < starts.length; i++)
      assert.ok(starts[i + 3] - starts[i] >= 2000, `starts ${i} and ${i + 3} are ${starts[i + 3] - starts[i]} ms apart`);
  });
});
