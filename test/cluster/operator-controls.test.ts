/**
 * Issue 18's maintenance mode and retention on a cluster: 1 api, 3 schedulers and 2 workers as
 * separate processes on one PostgreSQL. A pause through the api stops every scheduler at once
 * (nothing fires between the answer and the resume), a job's pause holds only that job, and on
 * resume the misfire policy decides about the missed fire times. Retention runs in the scheduler
 * processes, one at a time, and prunes exactly the expired executions and their files.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresBinDir } from './postgres-server.ts';
import { Cluster, sleep, waitFor } from './harness.ts';

describe('cluster: maintenance mode and retention across processes', {
  skip: !postgresBinDir() && 'no PostgreSQL binaries under /usr/lib/postgresql/<version>/bin',
}, () => {
  const c = new Cluster({
    leaseSeconds: 15,
    pollIntervalMs: 500,
    // Retention asks for its turn every second in each scheduler process, 40 rows per statement.
    env: { VECRON_RETENTION_INTERVAL_SECONDS: '1', VECRON_RETENTION_BATCH_SIZE: '40' },
  });
  let paused: string;
  let free: string;

  before(async () => {
    await c.start();
    const roles = ['api', 'scheduler', 'scheduler', 'scheduler', 'worker', 'worker'] as const;
    const procs = await Promise.all(roles.map((r) => c.spawn(r)));
    await Promise.all(procs.map((p) => c.logged(p, /vecron started/)));
    paused = await c.createJob('controls-paused', 1, 1);
    free = await c.createJob('controls-free', 1, 1);
  });

  after(() => c.close());

  const scheduled = async (jobId: string) =>
    c.query<{ fire_time: Date; status: string; trigger: any; error: any }>(
      `SELECT fire_time, status, trigger, error FROM executions WHERE job_id = $1 AND trigger_type = 'schedule' ORDER BY fire_time`,
      [jobId],
    );

  it('a cluster-wide pause stops all three schedulers; resume applies the misfire policy (fire_once)', { timeout: 120_000 }, async () => {
    await waitFor('both jobs to fire', async () => (await scheduled(paused)).length >= 2 && (await scheduled(free)).length >= 2);
    const on = await c.api('POST', '/api/v1/maintenance', { paused: true, reason: 'cluster test' });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    const before = { paused: (await scheduled(paused)).length, free: (await scheduled(free)).length };
    const metrics = await (await fetch(`${c.apiUrl}/metrics`)).text();
    assert.match(metrics, /^vecron_scheduling_paused 1$/m);
    await sleep(4000); // four fire times of each job come due meanwhile
    assert.deepEqual({ paused: (await scheduled(paused)).length, free: (await scheduled(free)).length }, before, 'no scheduler fired during the pause');

    const off = await c.api('POST', '/api/v1/maintenance', { paused: false });
    const resumedAt = new Date(off.body.resumed_at);
    await waitFor('firing to go on after the resume', async () => (await scheduled(free)).some((e) => e.fire_time >= resumedAt && e.status === 'succeeded'));
    for (const id of [paused, free]) {
      const all = await scheduled(id);
      const missed = all.filter((e) => e.fire_time < resumedAt).slice(id === paused ? before.paused : before.free);
      // The missed fire times gave at most one run (misfired) or one skipped record, never a burst.
      const ran = missed.filter((e) => e.status !== 'skipped');
      assert.ok(ran.length <= 1, `at most one late run: ${JSON.stringify(missed)}`);
      assert.ok(ran.every((e) => e.trigger.misfired === true));
      assert.ok(missed.filter((e) => e.status === 'skipped').every((e) => e.error.code === 'misfire'));
      assert.equal(ran.length + missed.filter((e) => e.status === 'skipped').length, 1, JSON.stringify(missed));
    }
  });

  it("a job's pause holds it on every scheduler while the other job fires on", { timeout: 120_000 }, async () => {
    const p = await c.api('POST', `/api/v1/jobs/${paused}/pause`, { reason: 'partner down' });
    assert.equal(p.status, 200);
    const held = (await scheduled(paused)).length;
    const freeBefore = (await scheduled(free)).length;
    await waitFor('the other job to fire 3 more times', async () => (await scheduled(free)).length >= freeBefore + 3);
    assert.equal((await scheduled(paused)).length, held, 'the paused job did not fire');
    assert.equal((await c.api('POST', `/api/v1/jobs/${paused}/resume`)).status, 200);
    await waitFor('the resumed job to fire again', async () => (await scheduled(paused)).length > held + 1);
  });

  it('retention prunes exactly the expired executions and their files, one process at a time', { timeout: 120_000 }, async () => {
    for (const id of [paused, free]) assert.equal((await c.api('POST', `/api/v1/jobs/${id}/disable`)).status, 200);
    const filesRoot = join(c.dataDir, 'blobs');
    const jobOf = new Map<string, string>();
    // Files first, then the rows (with ids chosen here): retention runs every second meanwhile,
    // and must never find a row whose files are not written yet.
    const seed = async (jobId: string, days: number, status: string, n: number) => {
      const ids = Array.from({ length: n }, () => randomUUID());
      for (const id of ids) {
        jobOf.set(id, jobId);
        const dir = join(filesRoot, 'jobs', jobId, 'executions', id);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'out.csv'), 'a,b\n');
      }
      await c.query(
        `INSERT INTO executions (id, job_id, job_version, job_snapshot, status, trigger_type, created_at, finished_at, run_at)
         SELECT id, $1, 1, '{}', $2, 'manual', now() - make_interval(days => $3), CASE WHEN $2 = 'queued' THEN NULL ELSE now() - make_interval(days => $3) END,
                now() + interval '1 year'
         FROM unnest($4::uuid[]) AS id`,
        [jobId, status, days, ids],
      );
      return ids;
    };
    const file = (id: string) => join(filesRoot, 'jobs', jobOf.get(id)!, 'executions', id, 'out.csv');
    const expired = [...(await seed(free, 120, 'succeeded', 150)), ...(await seed(paused, 91, 'failed', 50))];
    const young = await seed(free, 30, 'succeeded', 20);
    // Queued long ago (to run in a year): never pruned, however old.
    const queued = await seed(free, 200, 'queued', 3);

    await waitFor(
      'retention to prune the expired executions',
      async () => (await c.query(`SELECT count(*)::int AS n FROM executions WHERE id = ANY($1::uuid[])`, [expired]))[0].n === 0,
      90_000,
      500,
    );
    const left = await c.query<{ id: string }>(`SELECT id FROM executions WHERE id = ANY($1::uuid[])`, [[...young, ...queued]]);
    assert.equal(left.length, young.length + queued.length);
    assert.deepEqual(
      expired.filter((id) => existsSync(file(id))),
      [],
      'no file of a pruned execution is left',
    );
    for (const id of [...young, ...queued]) assert.ok(existsSync(file(id)), `kept file of ${id}`);

    // Each execution pruned once, by one process at a time: the runs' spans do not overlap.
    const runs = await c.query<{ details: any }>(`SELECT details FROM audit_log WHERE action = 'retention.prune' ORDER BY id`);
    assert.equal(
      runs.reduce((n, r) => n + r.details.counts.executions, 0),
      expired.length,
    );
    assert.equal(
      runs.reduce((n, r) => n + r.details.counts.files, 0),
      expired.length,
    );
    const spans = runs.map((r) => [Date.parse(r.details.started_at), Date.parse(r.details.finished_at)]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++)
      assert.ok(spans[i][0] >= spans[i - 1][1], `runs ${i - 1} and ${i} overlap: ${JSON.stringify(runs.map((r) => r.details.node))}`);
    const node = runs[0].details.node as string;
    assert.match(node, /:\d+$/);
  });
});
