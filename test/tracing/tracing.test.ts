/**
 * Tracing (issue 18): a real app with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an in-process OTLP
 * collector (test/helpers/otlp-collector.ts, protobuf decoded), a loopback HTTP service, and a job
 * of an http step and a wasm step whose module makes a worker-served call (time) and a bridged one
 * (http_request). Checked: the parent/child structure (caller -> trigger -> execution -> step ->
 * host call), one trace per execution, the attributes, no secret in any span, `traceparent` on the
 * outbound requests naming the span that sent them, trace ids in the execution's log lines; then
 * a scheduled run's trace starts at its fire time; and with the endpoint unset nothing of it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startHttpServer, waitFor, type TestServer } from '../helpers/http-server.ts';
import { startCollector, type CollectedSpan, type Collector } from '../helpers/otlp-collector.ts';
import { createLogger } from '../../src/logger.ts';

const MODULE = readFileSync(new URL('../../fixtures/wasm/traced-calls/traced-calls.wasm', import.meta.url));
const SECRET = 'tok-5ecret-value-918273645';
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

/** pino lines, parsed, as the app logs them. */
function captureLogs(): { lines: any[]; stream: Writable } {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

async function upload(t: TestApp): Promise<any> {
  const form = new FormData();
  form.set('file', new Blob([MODULE]), 'traced-calls.wasm');
  form.set('name', 'traced-calls');
  form.set('version', '1.0.0');
  form.set('author', 'tests');
  const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
  const body: any = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  const g = await t.api('PUT', `/api/v1/wasm/modules/${body.id}/permissions`, { body: { permissions: [{ type: 'http:read', resource_pattern: null }] } });
  assert.equal(g.status, 200, JSON.stringify(g.body));
  return body;
}

async function finished(t: TestApp, id: string): Promise<any> {
  return waitFor(
    async () => {
      const r = await t.api('GET', `/api/v1/executions/${id}`);
      return ['succeeded', 'failed', 'dead_lettered', 'cancelled'].includes(r.body.status) ? r.body : null;
    },
    `execution ${id} to finish`,
    30_000,
  );
}

/** The spans of `traceId` once `count` of them have arrived. */
function spansOf(c: Collector, traceId: string, count: number): Promise<CollectedSpan[]> {
  return waitFor(
    async () => {
      const s = c.spans.filter((x) => x.traceId === traceId);
      return s.length >= count ? s : null;
    },
    `${count} spans of trace ${traceId} (have ${c.spans.filter((x) => x.traceId === traceId).map((x) => x.name)})`,
    20_000,
  );
}

const only = (spans: CollectedSpan[], pred: (s: CollectedSpan) => boolean, what: string): CollectedSpan => {
  const m = spans.filter(pred);
  assert.equal(m.length, 1, `exactly one ${what}: ${JSON.stringify(spans.map((s) => [s.name, s.attributes]))}`);
  return m[0];
};

describe('tracing with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  let collector: Collector;
  let service: TestServer;
  let t: TestApp;
  const logs = captureLogs();
  let jobId: string;
  let flaky = 0;

  before(async () => {
    // Short batches, so spans arrive while the test waits (the SDK reads this itself).
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    collector = await startCollector();
    service = await startHttpServer((req, res) => {
      // The first call of /flaky fails: the step retries (a log line inside the step's span).
      if (req.url.startsWith('/flaky') && flaky++ === 0) {
        res.writeHead(503).end('busy');
        return;
      }
      if (req.url.startsWith('/missing')) {
        res.writeHead(404).end('no');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    t = await startTestApp(
      'pglite',
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=k%2F123',
        OTEL_SERVICE_NAME: 'vecron-test',
        VECRON_POLL_INTERVAL_MS: '200',
      },
      { logger: createLogger('info', 'vecron', logs.stream) },
    );
    await upload(t);
    const v = await t.api('PUT', '/api/v1/variables/API_KEY', { body: { value: SECRET, secret: true } });
    assert.ok(v.status === 200 || v.status === 201, JSON.stringify(v.body));
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'traced',
        max_retries: 0,
        retry_backoff_seconds: 0.05,
        steps: [
          { id: 'fetch', type: 'http', max_retries: 1, config: { url: `${service.url}/flaky?key=\${API_KEY}` } },
          {
            id: 'plugin',
            type: 'wasm',
            config: {
              module_id: 'traced-calls@1.0.0',
              function_name: 'run',
              input: { method: 'GET', url: `${service.url}/from-wasm/\${API_KEY}` },
            },
          },
        ],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    jobId = job.body.id;
  });

  after(async () => {
    await t?.close();
    await service?.close();
    await collector?.close();
    delete process.env.OTEL_BSP_SCHEDULE_DELAY;
  });

  it("a manual trigger with a traceparent continues the caller's trace: trigger -> execution -> step -> host call", async () => {
    const r = await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: {}, headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const executionId = r.body.execution_id;
    const e = await finished(t, executionId);
    assert.equal(e.status, 'succeeded', JSON.stringify(e.error));

    // trigger, execution, 2 steps, 2 host calls
    const spans = await spansOf(collector, CALLER_TRACE, 6);
    assert.equal(spans.length, 6, JSON.stringify(spans.map((s) => s.name)));
    const trigger = only(spans, (s) => s.name === 'vecron.trigger', 'trigger span');
    assert.equal(trigger.parentSpanId, CALLER_SPAN);
    assert.equal(trigger.kind, 2); // SERVER
    assert.deepEqual(
      [trigger.attributes['vecron.job.id'], trigger.attributes['vecron.execution.id'], trigger.attributes['vecron.trigger.type']],
      [jobId, executionId, 'manual'],
    );

    const exec = only(spans, (s) => s.name === 'vecron.execution', 'execution span');
    assert.equal(exec.parentSpanId, trigger.spanId);
    assert.equal(exec.attributes['vecron.execution.id'], executionId);
    assert.equal(exec.attributes['vecron.job.id'], jobId);
    assert.equal(exec.attributes['vecron.job.name'], 'traced');
    assert.equal(exec.attributes['vecron.execution.attempt'], 1);
    assert.equal(exec.attributes['vecron.execution.status'], 'succeeded');
    assert.equal(exec.status.code, 0); // unset: no error

    const fetchStep = only(spans, (s) => s.name === 'vecron.step' && s.attributes['vecron.step.id'] === 'fetch', 'fetch step');
    const pluginStep = only(spans, (s) => s.name === 'vecron.step' && s.attributes['vecron.step.id'] === 'plugin', 'plugin step');
    for (const [s, type] of [
      [fetchStep, 'http'],
      [pluginStep, 'wasm'],
    ] as const) {
      assert.equal(s.parentSpanId, exec.spanId);
      assert.equal(s.attributes['vecron.step.type'], type);
      assert.equal(s.attributes['vecron.step.status'], 'succeeded');
      assert.equal(s.attributes['vecron.execution.attempt'], 1);
      assert.ok(s.startMs >= exec.startMs && s.endMs <= exec.endMs, 'a step lies within its execution');
    }
    assert.ok(fetchStep.endMs <= pluginStep.startMs, 'steps in order');

    const time = only(spans, (s) => s.attributes['vecron.host_call.function'] === 'time', 'time host call');
    const http = only(spans, (s) => s.attributes['vecron.host_call.function'] === 'http_request', 'http_request host call');
    for (const h of [time, http]) {
      assert.equal(h.name, 'vecron.host_call');
      assert.equal(h.parentSpanId, pluginStep.spanId);
      assert.equal(h.attributes['vecron.host_call.outcome'], 'ok');
      assert.ok(h.startMs >= pluginStep.startMs && h.endMs <= pluginStep.endMs + 1, `${h.attributes['vecron.host_call.function']} lies within its step`);
    }
    // time was served inside the worker: its span comes from the run's record, at its real time
    assert.equal(time.attributes['vecron.host_call.served'], 'worker');
    assert.equal(time.attributes['vecron.host_call.seq'], 0);
    assert.equal(time.attributes['vecron.host_call.target'], 'now UTC');
    assert.ok(time.endMs <= http.startMs, 'time was called before http_request');
    assert.equal(http.attributes['vecron.host_call.served'], 'host');
    // the target is the URL the guest called, with the secret masked
    assert.equal(http.attributes['vecron.host_call.target'], `${service.url}/from-wasm/***`);

    // outbound: the http step and the http_request call each send the span that made the request
    const fromStep = service.seen.filter((s) => s.url.startsWith('/flaky'));
    assert.equal(fromStep.length, 2, 'the http step ran twice (one in-step retry), in one step span');
    for (const s of fromStep) {
      const m = TRACEPARENT.exec(String(s.headers.traceparent));
      assert.ok(m, `traceparent on the http step's request: ${s.headers.traceparent}`);
      assert.deepEqual([m[1], m[2]], [CALLER_TRACE, fetchStep.spanId]);
    }
    const fromWasm = service.seen.filter((s) => s.url.startsWith('/from-wasm'));
    assert.equal(fromWasm.length, 1);
    const m = TRACEPARENT.exec(String(fromWasm[0].headers.traceparent));
    assert.ok(m, `traceparent on the http_request call: ${fromWasm[0].headers.traceparent}`);
    assert.deepEqual([m[1], m[2]], [CALLER_TRACE, http.spanId]);

    // no secret in any span, in any form the masker knows
    const dump = JSON.stringify(collector.spans);
    assert.ok(!dump.includes(SECRET), 'the secret reached a span');
    assert.ok(!dump.includes(encodeURIComponent(SECRET).replace(/-/g, '%2D')) && !dump.includes(Buffer.from(SECRET).toString('base64')));

    // resource and export headers
    assert.equal(exec.resource['service.name'], 'vecron-test');
    assert.equal(exec.resource['process.pid'], process.pid);
    assert.ok(
      collector.requests.every((h) => h['x-collector-key'] === 'k/123'),
      'OTEL_EXPORTER_OTLP_HEADERS sent with every export',
    );

    // the log line of the retry carries the step span's ids
    const retryLine = logs.lines.find((l) => l.msg === 'step failed; retrying' && l.execution === executionId);
    assert.ok(retryLine, 'the retry was logged');
    assert.equal(retryLine.trace_id, CALLER_TRACE);
    assert.equal(retryLine.span_id, fetchStep.spanId);
    assert.equal(retryLine.step, 'fetch');
  });

  it("a signed webhook with a traceparent continues the caller's trace", async () => {
    const secret = 'webhook-secret-0123456789';
    const job = await t.api('POST', '/api/v1/jobs', {
      body: { name: 'traced-webhook', webhook: { secret }, steps: [{ id: 'ping', type: 'http', config: { url: `${service.url}/ok` } }] },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const body = JSON.stringify({ order: 7 });
    const ts = String(Math.floor(Date.now() / 1000));
    const trace = 'a'.repeat(31) + '1';
    const res = await fetch(`${t.url}/api/v1/webhooks/${job.body.id}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-vecron-timestamp': ts,
        'x-vecron-signature': `sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`,
        traceparent: `00-${trace}-${CALLER_SPAN}-01`,
        tracestate: 'vendor=abc',
      },
      body,
    });
    const accepted: any = await res.json();
    assert.equal(res.status, 202, JSON.stringify(accepted));
    const e = await finished(t, accepted.execution_id);
    // the stored context names the trigger's span (the caller's header stays in trigger.headers)
    const stored = TRACEPARENT.exec(e.trigger.traceparent);
    assert.ok(stored, `trigger.traceparent: ${e.trigger.traceparent}`);
    assert.equal(e.trigger.tracestate, 'vendor=abc');
    assert.equal(e.trigger.headers.traceparent, `00-${trace}-${CALLER_SPAN}-01`);
    const spans = await spansOf(collector, trace, 3);
    const trigger = only(spans, (s) => s.name === 'vecron.trigger', 'trigger span');
    assert.equal(trigger.parentSpanId, CALLER_SPAN);
    assert.equal(trigger.attributes['vecron.trigger.type'], 'webhook');
    assert.equal(stored[2], trigger.spanId);
    const exec = only(spans, (s) => s.name === 'vecron.execution', 'execution span');
    assert.equal(exec.parentSpanId, trigger.spanId);
    assert.equal(exec.attributes['vecron.trigger.type'], 'webhook');
  });

  it('without a traceparent each execution is a trace of its own; a failure carries its error code', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: {} });
      assert.equal(r.status, 202);
      ids.push(r.body.execution_id);
      await finished(t, r.body.execution_id);
    }
    const traces = await Promise.all(
      ids.map((id) =>
        waitFor(async () => collector.spans.find((s) => s.name === 'vecron.execution' && s.attributes['vecron.execution.id'] === id), `the span of ${id}`),
      ),
    );
    assert.notEqual(traces[0].traceId, traces[1].traceId);
    for (const exec of traces) {
      const spans = await spansOf(collector, exec.traceId, 6);
      const trigger = only(spans, (s) => s.name === 'vecron.trigger', 'trigger span');
      assert.equal(trigger.parentSpanId, '', 'the trigger starts the trace');
      assert.equal(exec.parentSpanId, trigger.spanId);
      assert.equal(spans.filter((s) => s.name === 'vecron.step').length, 2);
    }

    // a job that fails: the step and the execution spans say why, by code
    const bad = await t.api('POST', '/api/v1/jobs', {
      body: { name: 'traced-failing', max_retries: 0, steps: [{ id: 'get', type: 'http', config: { url: `${service.url}/missing` } }] },
    });
    assert.equal(bad.status, 201, JSON.stringify(bad.body));
    const r = await t.api('POST', `/api/v1/jobs/${bad.body.id}/trigger`, { body: {} });
    const e = await finished(t, r.body.execution_id);
    assert.equal(e.status, 'failed');
    const exec = await waitFor(
      async () => collector.spans.find((s) => s.name === 'vecron.execution' && s.attributes['vecron.execution.id'] === r.body.execution_id),
      'the failed execution span',
    );
    const step = only(await spansOf(collector, exec.traceId, 3), (s) => s.name === 'vecron.step', 'failed step');
    assert.equal(step.attributes['vecron.step.status'], 'failed');
    assert.equal(step.attributes['vecron.error.code'], e.error.code);
    assert.equal(step.status.code, 2); // ERROR
    assert.equal(exec.attributes['vecron.execution.status'], 'failed');
    assert.equal(exec.attributes['vecron.error.code'], e.error.code);
    assert.equal(exec.status.code, 2);
  });

  it('a retried execution stays one trace: one execution span per attempt, both children of the trigger', async () => {
    let calls = 0;
    const retryService = await startHttpServer((_r, res) => {
      res.writeHead(calls++ === 0 ? 503 : 200).end('{}');
    });
    try {
      const job = await t.api('POST', '/api/v1/jobs', {
        body: {
          name: 'traced-retried',
          max_retries: 1,
          retry_backoff_seconds: 0.05,
          steps: [{ id: 'get', type: 'http', config: { url: `${retryService.url}/x` } }],
        },
      });
      assert.equal(job.status, 201, JSON.stringify(job.body));
      const r = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`, { body: {} });
      const e = await finished(t, r.body.execution_id);
      assert.equal(e.status, 'succeeded');
      assert.equal(e.attempt, 2);
      const first = await waitFor(
        async () => collector.spans.find((s) => s.name === 'vecron.execution' && s.attributes['vecron.execution.id'] === r.body.execution_id),
        'an execution span',
      );
      const spans = await spansOf(collector, first.traceId, 5); // trigger, 2 executions, 2 steps
      const trigger = only(spans, (s) => s.name === 'vecron.trigger', 'trigger span');
      const attempts = spans
        .filter((s) => s.name === 'vecron.execution')
        .sort((a, b) => Number(a.attributes['vecron.execution.attempt']) - Number(b.attributes['vecron.execution.attempt']));
      assert.deepEqual(
        attempts.map((a) => [a.attributes['vecron.execution.attempt'], a.attributes['vecron.execution.status'], a.parentSpanId]),
        [
          [1, 'queued', trigger.spanId],
          [2, 'succeeded', trigger.spanId],
        ],
      );
      const steps = spans.filter((s) => s.name === 'vecron.step');
      assert.deepEqual(steps.map((s) => s.parentSpanId).sort(), attempts.map((a) => a.spanId).sort(), 'each attempt has its step run');
    } finally {
      await retryService.close();
    }
  });

  it("a scheduled execution's trace starts at its fire time", async () => {
    const job = await t.api('POST', '/api/v1/jobs', {
      body: {
        name: 'traced-scheduled',
        schedule: { type: 'cron', expression: '* * * * * *' },
        steps: [{ id: 'ping', type: 'http', config: { url: `${service.url}/ok` } }],
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const fire = await waitFor(
      async () => collector.spans.find((s) => s.name === 'vecron.fire' && s.attributes['vecron.job.id'] === job.body.id && s.attributes['vecron.execution.id']),
      'a fire span',
    );
    await t.api('PATCH', `/api/v1/jobs/${job.body.id}`, { body: { enabled: false } });
    assert.equal(fire.parentSpanId, '', 'the fire starts the trace');
    assert.equal(fire.attributes['vecron.trigger.type'], 'schedule');
    const executionId = fire.attributes['vecron.execution.id'] as string;
    const e = await finished(t, executionId);
    assert.equal(Date.parse(fire.attributes['vecron.fire_time'] as string), Date.parse(e.fire_time));
    assert.equal(fire.startMs, Date.parse(e.fire_time), 'the span starts at the fire time');
    const spans = await spansOf(collector, fire.traceId, 3);
    const exec = only(spans, (s) => s.name === 'vecron.execution', 'execution span');
    assert.equal(exec.parentSpanId, fire.spanId);
    assert.equal(exec.attributes['vecron.trigger.type'], 'schedule');
    assert.equal(only(spans, (s) => s.name === 'vecron.step', 'step').parentSpanId, exec.spanId);
  });
});

describe('tracing with OTEL_EXPORTER_OTLP_ENDPOINT unset', () => {
  it('sends no traceparent, stores no trace context and logs no trace ids', async () => {
    const service = await startHttpServer((_r, res) => res.writeHead(503).end('busy'));
    const logs = captureLogs();
    const t = await startTestApp('pglite', { VECRON_POLL_INTERVAL_MS: '200' }, { logger: createLogger('info', 'vecron', logs.stream) });
    try {
      const job = await t.api('POST', '/api/v1/jobs', {
        body: {
          name: 'untraced',
          max_retries: 0,
          retry_backoff_seconds: 0.05,
          steps: [{ id: 'get', type: 'http', max_retries: 1, config: { url: `${service.url}/x` } }],
        },
      });
      const r = await t.api('POST', `/api/v1/jobs/${job.body.id}/trigger`, { body: {}, headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` } });
      const e = await finished(t, r.body.execution_id);
      assert.equal(e.status, 'dead_lettered'); // 503 is retryable; max_retries 0
      assert.equal(service.seen.length, 2);
      for (const s of service.seen) assert.equal(s.headers.traceparent, undefined);
      assert.equal(e.trigger.traceparent, undefined);
      const lines = logs.lines.filter((l) => l.execution === r.body.execution_id);
      assert.ok(lines.length >= 2, 'the execution logged its retry and its failure');
      for (const l of lines) assert.ok(!('trace_id' in l) && !('span_id' in l), JSON.stringify(l));
    } finally {
      await t.close();
      await service.close();
    }
  });
});
