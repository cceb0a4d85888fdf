import { it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/index.ts';
import { VecronError } from '../../src/errors.ts';

it('tracing settings: off by default, parsed when set', () => {
  const off = loadConfig({});
  assert.equal(off.otelEndpoint, null);
  assert.deepEqual(off.otelHeaders, {});
  assert.equal(off.otelServiceName, 'vecron');
  assert.equal(off.otelSampler, 'parentbased_always_on');
  const on = loadConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com:4318',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=a%3Db%2Cc, tenant = bank ',
    OTEL_SERVICE_NAME: 'vecron-prod',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
  });
  assert.equal(on.otelEndpoint, 'https://otel.example.com:4318');
  assert.deepEqual(on.otelHeaders, { 'x-api-key': 'a=b,c', tenant: 'bank' });
  assert.equal(on.otelServiceName, 'vecron-prod');
  assert.equal(on.otelSampler, 'parentbased_traceidratio');
  assert.equal(on.otelSamplerArg, 0.25);
});

it('bad tracing settings are refused at start, each with its variable, never echoing a header value', () => {
  let err: unknown;
  try {
    loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%ZZsecret-token',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_TRACES_SAMPLER_ARG: '2',
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof VecronError && err.code === 'invalid_config', String(err));
  const problems = (err.details as { problems: { path: string; message: string }[] }).problems;
  assert.deepEqual(problems.map((p) => p.path).sort(), [
    'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_HEADERS',
    'OTEL_EXPORTER_OTLP_PROTOCOL',
    'OTEL_TRACES_SAMPLER',
    'OTEL_TRACES_SAMPLER_ARG',
  ]);
  assert.ok(!JSON.stringify(problems).includes('secret-token'), 'a header value was echoed');
  assert.ok(!err.message.includes('secret-token'));
});
