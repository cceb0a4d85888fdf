import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one vecron process. A registry per app (not prom-client's global one), so
 * tests can start several apps in one process.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vecron_process_' });
  const httpRequests = new Counter({
    name: 'vecron_http_requests_total',
    help: 'HTTP requests answered, by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'vecron_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const executionsFinished = new Counter({
    name: 'vecron_executions_finished_total',
    help: 'Executions that reached a final status, by status',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const executionsStarted = new Counter({
    name: 'vecron_executions_started_total',
    help: 'Execution attempts started by this process',
    registers: [registry],
  });
  const stepDuration = new Histogram({
    name: 'vecron_step_duration_seconds',
    help: 'Step run duration, by step type and outcome',
    labelNames: ['type', 'status'] as const,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const scheduleLag = new Histogram({
    name: 'vecron_schedule_lag_seconds',
    help: 'Delay from a fire time to the start of its execution',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [registry],
  });
  const runningExecutions = new Gauge({
    name: 'vecron_running_executions',
    help: 'Executions this process is running now',
    registers: [registry],
  });
  const securityAlerts = new Counter({
    name: 'vecron_security_alerts_total',
    help: 'Security alerts raised (e.g. a module whose bytes no longer match their hash)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const moduleLoads = new Counter({
    name: 'vecron_wasm_module_loads_total',
    help: 'WASM module loads for a run or a download, by result (ok, or refused by the integrity check)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const wasmHostDenied = new Counter({
    name: 'vecron_wasm_host_denied_total',
    help: 'Host calls of WASM modules refused for a missing permission, by host function and permission',
    labelNames: ['function', 'permission'] as const,
    registers: [registry],
  });
  return {
    registry,
    wasmHostDenied,
    moduleLoads,
    httpRequests,
    httpDuration,
    executionsFinished,
    executionsStarted,
    stepDuration,
    scheduleLag,
    runningExecutions,
    securityAlerts,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
