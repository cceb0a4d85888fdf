/**
 * The chaos run of issue 14, by hand (minutes; not part of `npm test`):
 *   node --import tsx test/cluster/chaos.ts
 * 1 api, 3 schedulers and 3 workers as separate processes on a PostgreSQL of its own; 40 jobs
 * (half every 1 s, half every 5 s) with 3 steps each; 4 PostgreSQL restarts (fast stop, 5 s
 * down, start) 20 s apart. Prints crashed processes, the time until events flowed again after each
 * restart, steps re-run that had finished, duplicates, gaps and unfinished executions.
 * CHAOS_RESTARTS, CHAOS_JOBS, CHAOS_LEASE_SECONDS override the defaults.
 */
import { Cluster, SseClient, lags, median, sleep, verdict, waitFor } from './harness.ts';

const RESTARTS = Number(process.env.CHAOS_RESTARTS ?? 4);
const JOBS = Number(process.env.CHAOS_JOBS ?? 40);
const LEASE = Number(process.env.CHAOS_LEASE_SECONDS ?? 30);

const c = new Cluster({ leaseSeconds: LEASE, pollIntervalMs: 1000 });
const say = (m: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
try {
  await c.start();
  const roles = ['api', 'scheduler', 'scheduler', 'scheduler', 'worker', 'worker', 'worker'] as const;
  const procs = await Promise.all(roles.map((r) => c.spawn(r)));
  await Promise.all(procs.map((p) => c.logged(p, /vecron started/)));
  const every = new Map<string, number>();
  for (let i = 0; i < JOBS; i++) {
    const s = i % 2 === 0 ? 1 : 5;
    every.set(await c.createJob(`chaos-${i}`, s, 3), s);
  }
  const jobIds = [...every.keys()];
  say(`${procs.length} processes up, ${JOBS} jobs created`);
  const sse = new SseClient(c.apiUrl);
  sse.start();
  await waitFor('events', async () => sse.arrivals.length > 0);
  await sleep(15_000);
  const restarts: { stoppedAt: number; backAt: number }[] = [];
  for (let i = 0; i < RESTARTS; i++) {
    const r = await c.restartDatabase(5000);
    restarts.push(r);
    say(`restart ${i + 1}: down ${r.backAt - r.stoppedAt} ms`);
    await sleep(20_000 - (r.backAt - r.stoppedAt));
  }
  await sleep(10_000);
  for (const id of jobIds) await c.api('POST', `/api/v1/jobs/${id}/disable`);
  await waitFor(
    'executions to finish',
    async () => (await c.query(`SELECT count(*)::int AS n FROM executions WHERE status IN ('queued','running')`))[0].n === 0,
    (LEASE * 2 + 30) * 1000,
    1000,
  );
  const v = await verdict(c, jobIds, every, 3);
  const all = await lags(c, jobIds);
  const crashed = c.procs.filter((p) => !p.killed && !c.alive(p)).map((p) => `${p.name} ${JSON.stringify(p.exit)}`);
  const unhandled = c.procs.filter((p) => /Unhandled 'error' event|uncaughtException/.test(c.log(p))).map((p) => p.name);
  const report = {
    processes: c.procs.length,
    crashed,
    unhandled,
    executions: v.executions,
    duplicates: v.duplicates,
    gaps: v.gaps,
    unfinished: v.unfinished,
    not_succeeded: v.notSucceeded,
    finished_steps_rerun: v.rerunsWithoutTakeover.length,
    takeovers: v.takeovers,
    restarts: restarts.map((r, i) => {
      const next = restarts[i + 1]?.stoppedAt ?? Infinity;
      const first = sse.firstAfter(r.backAt);
      const window = all.filter((l) => l.fire >= r.backAt + 2000 && l.fire < Math.min(next, r.backAt + 15_000)).map((l) => l.lag);
      return { events_after_ms: first === null ? null : first - r.backAt, lag_p50_from_2s_ms: median(window) };
    }),
    lag_p50_before_ms: median(all.filter((l) => l.fire < restarts[0].stoppedAt).map((l) => l.lag)),
    // Median lag by 5 s of fire time, from the first restart (seconds relative to it).
    lag_p50_timeline_ms: (() => {
      const out: Record<string, number | null> = {};
      const t0 = restarts[0].stoppedAt;
      const end = Math.max(...all.map((l) => l.fire));
      for (let from = t0 - 15_000; from < end; from += 5000) {
        out[`${Math.round((from - t0) / 1000)}s`] = median(all.filter((l) => l.fire >= from && l.fire < from + 5000).map((l) => l.lag));
      }
      return out;
    })(),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  await sse.stop();
} finally {
  await c.close();
}
