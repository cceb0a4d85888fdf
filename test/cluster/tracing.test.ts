/**
 * Tracing across processes (issue 18): an api, a scheduler and two workers as separate
 * `vecron start` processes on one PostgreSQL, all exporting to one in-process OTLP collector. The
 * trigger's span is made by the process that enqueues (the scheduler at a fire time, the api for
 * a manual trigger), the execution's by whichever worker claims it: the trace context stored with
 * the execution's trigger links them, so each execution is one trace whose root is its fire (or
 * the caller's span), whatever process ran it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { postgresBinDir } from './postgres-server.ts';
import { Cluster, TOKEN, waitFor, type VecronProcess } from './harness.ts';
import { startCollector, type CollectedSpan, type Collector } from '../helpers/otlp-collector.ts';

const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';

describe('cluster: one trace per execution across processes', {
  skip: !postgresBinDir() && 'no PostgreSQL binaries under /usr/lib/postgresql/<version>/bin',
}, () => {
  let collector: Collector;
  let c: Cluster;
  const procs: Record<string, VecronProcess[]> = { api: [], scheduler: [], worker: [] };
  const pidsOf = (role: string) => new Set(procs[role].map((p) => p.child.pid));
  const spansOf = (traceId: string) => collector.spans.filter((s) => s.traceId === traceId);

  before(async () => {
    collector = await startCollector();
    c = new Cluster({ leaseSeconds: 10, pollIntervalMs: 500, env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '100' } });
    await c.start();
    for (const role of ['api', 'scheduler', 'worker', 'worker'] as const) procs[role].push(await c.spawn(role));
    await Promise.all(
      Object.values(procs)
        .flat()
        .map((p) => c.logged(p, /vecron started/)),
    );
  });

  after(async () => {
    await c?.close();
    await collector?.close();
  });

  it("a scheduled execution's span, in a worker process, is the child of its fire in the scheduler process", async () => {
    const jobId = await c.createJob('traced-cluster', 1, 2);
    const done = await waitFor(
      'four finished executions',
      async () => {
        const rows = await c.query<{ id: string }>(`SELECT id FROM executions WHERE job_id = $1 AND status = 'succeeded' ORDER BY fire_time`, [jobId]);
        return rows.length >= 4 ? rows : null;
      },
      60_000,
    );
    await c.api('PATCH', `/api/v1/jobs/${jobId}`, { enabled: false });
    const traceIds = new Set<string>();
    for (const { id } of done) {
      const exec = await waitFor(
        `the span of execution ${id}`,
        async () => collector.spans.find((s) => s.name === 'vecron.execution' && s.attributes['vecron.execution.id'] === id),
        20_000,
      );
      const spans = await waitFor(
        `the fire, execution and 2 step spans of ${id}`,
        async () => (spansOf(exec.traceId).length >= 4 ? spansOf(exec.traceId) : null),
        20_000,
      );
      assert.equal(spans.length, 4, JSON.stringify(spans.map((s) => s.name)));
      const fire = spans.find((s) => s.name === 'vecron.fire') as CollectedSpan;
      assert.ok(fire, 'the trace has its fire span');
      assert.equal(fire.parentSpanId, '');
      assert.equal(fire.attributes['vecron.execution.id'], id);
      assert.ok(pidsOf('scheduler').has(fire.resource['process.pid'] as number), 'the fire span comes from the scheduler process');
      assert.equal(exec.parentSpanId, fire.spanId);
      assert.ok(pidsOf('worker').has(exec.resource['process.pid'] as number), 'the execution span comes from a worker process');
      const steps = spans.filter((s) => s.name === 'vecron.step');
      assert.deepEqual(steps.map((s) => s.attributes['vecron.step.id']).sort(), ['s1', 's2']);
      for (const s of steps) {
        assert.equal(s.parentSpanId, exec.spanId);
        assert.equal(s.resource['process.pid'], exec.resource['process.pid']);
      }
      traceIds.add(exec.traceId);
    }
    assert.equal(traceIds.size, done.length, 'one trace per execution');
  });

  it("a manual trigger on the api process continues the caller's trace into the worker that runs it", async () => {
    const r = await c.api('POST', '/api/v1/jobs', {
      name: 'traced-manual',
      steps: [{ id: 'only', type: 'http', config: { url: `${c.counter.url}/hit?e={{execution.id}}&s=only`, method: 'POST' } }],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const res = await fetch(`${c.apiUrl}/api/v1/jobs/${r.body.id}/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
      body: '{}',
    });
    assert.equal(res.status, 202);
    const spans = await waitFor(
      'trigger, execution and step spans of the caller trace',
      async () => (spansOf(CALLER_TRACE).length >= 3 ? spansOf(CALLER_TRACE) : null),
      30_000,
    );
    const trigger = spans.find((s) => s.name === 'vecron.trigger') as CollectedSpan;
    const exec = spans.find((s) => s.name === 'vecron.execution') as CollectedSpan;
    const step = spans.find((s) => s.name === 'vecron.step') as CollectedSpan;
    assert.ok(trigger && exec && step, JSON.stringify(spans.map((s) => s.name)));
    assert.equal(trigger.parentSpanId, CALLER_SPAN);
    assert.ok(pidsOf('api').has(trigger.resource['process.pid'] as number), 'the trigger span comes from the api process');
    assert.equal(exec.parentSpanId, trigger.spanId);
    assert.ok(pidsOf('worker').has(exec.resource['process.pid'] as number), 'the execution span comes from a worker process');
    assert.equal(step.parentSpanId, exec.spanId);
  });
});
