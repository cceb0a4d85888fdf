/**
 * Turns tracing on for this process (docs/operations.md, "Tracing"): a tracer provider with a
 * batching OTLP/HTTP exporter (protobuf), the W3C trace-context propagator and an
 * AsyncLocalStorage context manager, all registered as the process's OpenTelemetry globals. Called
 * by startApp only when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing here is loaded and
 * @opentelemetry/api stays on its no-op implementation.
 *
 * The endpoint, headers, service name and sampler come from the config (src/config); the SDK reads
 * the batching variables (OTEL_BSP_*) itself.
 */
import { hostname } from 'node:os';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import type { OtelSampler } from '../config/index.ts';
import { VERSION } from '../version.ts';
import { setTracer } from './state.ts';

export interface TracingOptions {
  /** OTLP base URL; spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  /** Sent with every export (OTEL_EXPORTER_OTLP_HEADERS): e.g. a collector's API key. */
  headers?: Record<string, string>;
  serviceName: string;
  sampler?: OtelSampler;
  /** The ratio of the traceidratio samplers. */
  samplerArg?: number;
}

function samplerFor(name: OtelSampler, ratio: number): Sampler {
  const root = name.endsWith('always_off')
    ? new AlwaysOffSampler()
    : name.endsWith('traceidratio')
      ? new TraceIdRatioBasedSampler(ratio)
      : new AlwaysOnSampler();
  return name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

export interface Tracing {
  /** Sends the spans ended so far. */
  flush(): Promise<void>;
  /** Flushes and turns tracing off (when the last user of this process's tracing stops). */
  shutdown(): Promise<void>;
}

/** One provider per process (OpenTelemetry's globals are per process); apps in one process share it. */
let current: { provider: BasicTracerProvider; users: number } | null = null;

export function startTracing(opts: TracingOptions): Tracing {
  if (!current) {
    const exporter = new OTLPTraceExporter({ url: `${opts.endpoint.replace(/\/+$/, '')}/v1/traces`, headers: opts.headers });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': opts.serviceName, 'service.version': VERSION, 'host.name': hostname(), 'process.pid': process.pid }),
      sampler: samplerFor(opts.sampler ?? 'parentbased_always_on', opts.samplerArg ?? 1),
      spanProcessors: [new BatchSpanProcessor(exporter)],
    });
    const cm = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(cm);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    setTracer(provider.getTracer('vecron', VERSION));
    current = { provider, users: 0 };
  }
  const mine = current;
  mine.users++;
  let stopped = false;
  return {
    flush: () => mine.provider.forceFlush(),
    async shutdown() {
      if (stopped) return;
      stopped = true;
      if (--mine.users > 0) return void (await mine.provider.forceFlush());
      if (current === mine) current = null;
      setTracer(null);
      await mine.provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
