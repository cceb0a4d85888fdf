/**
 * A response schema for every route (the OpenAPI document, and the fuzzer's check of the answers).
 * Routes that declare their own keep them; the rest get their success shape from the table below
 * and the error shape for every 4xx/5xx status the API maps errors to. Schemas are documentation
 * and contract: answers are serialized with JSON.stringify, so a schema can never drop a field.
 */
import type { FastifyInstance } from 'fastify';
import { errorSchema } from './schemas.ts';

const obj = (required: string[], extra: Record<string, unknown> = {}) => ({
  type: 'object',
  required,
  additionalProperties: true,
  properties: { ...Object.fromEntries(required.map((k) => [k, {}])), ...extra },
});
const paged = (item: object) =>
  obj(['items', 'total', 'page', 'limit'], {
    items: { type: 'array', items: item },
    total: { type: 'integer', minimum: 0 },
    page: { type: 'integer', minimum: 1 },
    limit: { type: 'integer', minimum: 1 },
  });
const listed = (item: object) => obj(['items'], { items: { type: 'array', items: item } });

const job = obj(['id', 'name', 'steps', 'version'], {
  id: { type: 'string' },
  name: { type: 'string' },
  steps: { type: 'array' },
  concurrency_key: { type: ['string', 'null'], description: 'Template of the concurrency key (docs/jobs.md#concurrency-and-rate-limits).' },
  concurrency_limit: { type: ['integer', 'null'], minimum: 1 },
  rate_limit: {
    type: ['object', 'null'],
    properties: { limit: { type: 'integer', minimum: 1 }, interval_seconds: { type: 'integer', minimum: 1 }, per: { type: 'string', enum: ['job', 'key'] } },
  },
});
const execution = obj(['id', 'job_id', 'status'], {
  id: { type: 'string' },
  status: { type: 'string' },
  limits: {
    type: ['object', 'null'],
    description: 'The concurrency and rate limits the execution was queued with (its key rendered); null when its job had none.',
    properties: {
      concurrency: { type: ['object', 'null'], properties: { key: { type: 'string' }, limit: { type: 'integer' } } },
      rate: { type: ['object', 'null'], properties: { key: { type: 'string' }, limit: { type: 'integer' }, interval_seconds: { type: 'integer' } } },
    },
  },
  waiting: {
    type: ['object', 'null'],
    description:
      'Why a queued execution has not started: scheduled (run_at ahead), concurrency_limit (no free slot for its key), rate_limit (no start left in the interval); null otherwise.',
    properties: { code: { type: 'string', enum: ['scheduled', 'concurrency_limit', 'rate_limit'] }, message: { type: 'string' } },
  },
});
const token = obj(['id', 'name', 'role', 'created_at'], { id: { type: 'string' }, role: { type: 'string', enum: ['admin', 'operator', 'viewer'] } });
const variable = obj(['name'], { name: { type: 'string' } });
const wasmModule = obj(['id', 'name', 'version'], { id: { type: 'string' } });
const key = obj(['id'], { id: { type: 'string' } });
const queued = obj(['execution_id', 'status'], { execution_id: { type: 'string' }, status: { type: 'string', enum: ['queued'] } });
const audit = obj(['id', 'at', 'action', 'outcome'], { id: { type: 'integer' }, outcome: { type: 'string' } });
const text = { type: 'string' };
const empty = { type: 'null', description: 'no content' };

/** Success answers by `METHOD url` (the route's URL as registered). */
const SUCCESS: Record<string, Record<string, object>> = {
  'GET /health': { 200: obj(['status']), 503: obj(['status']) },
  'GET /metrics': { 200: text },
  'GET /api/v1/events': { 200: text },
  'GET /api/v1/audit': { 200: paged(audit) },
  'GET /api/v1/executions': { 200: paged(execution) },
  'GET /api/v1/executions/:id': { 200: execution },
  'POST /api/v1/executions/:id/retry': { 202: queued },
  'POST /api/v1/executions/:id/cancel': { 200: execution, 202: obj([]) },
  'POST /api/v1/jobs': { 201: job },
  'GET /api/v1/jobs': { 200: paged(job) },
  'GET /api/v1/jobs/:id': { 200: job },
  'PUT /api/v1/jobs/:id': { 200: job },
  'DELETE /api/v1/jobs/:id': { 204: empty },
  'POST /api/v1/jobs/:id/trigger': { 202: queued },
  'GET /api/v1/jobs/:id/executions': { 200: paged(execution) },
  'GET /api/v1/tokens': { 200: listed(token) },
  'POST /api/v1/tokens': { 201: obj(['id', 'name', 'role', 'token'], { token: { type: 'string' } }) },
  'DELETE /api/v1/tokens/:id': { 200: token },
  'POST /api/v1/wasm/keys': { 201: key },
  'GET /api/v1/wasm/keys': { 200: listed(key) },
  'DELETE /api/v1/wasm/keys/:id': { 200: key, 204: empty },
  'POST /api/v1/wasm/modules': { 201: wasmModule },
  'GET /api/v1/wasm/modules': { 200: paged(wasmModule) },
  'GET /api/v1/wasm/modules/:id': { 200: wasmModule },
  'DELETE /api/v1/wasm/modules/:id': { 204: empty },
  'GET /api/v1/wasm/modules/:id/download': { 200: { type: 'string', format: 'binary' } },
  'GET /api/v1/wasm/executions/:execution_id/logs': { 200: obj(['logs'], { logs: { type: 'array' } }) },
  'GET /api/v1/wasm/modules/:id/logs': { 200: paged(obj([])) },
  'POST /api/v1/jobs/:id/webhook-secret': { 200: obj(['secret'], { secret: { type: 'string' } }) },
  'GET /api/v1/variables': { 200: obj(['items', 'total']) },
  'GET /api/v1/variables/:name': { 200: variable },
  'PUT /api/v1/variables/:name': { 200: variable, 201: variable },
  'DELETE /api/v1/variables/:name': { 204: empty },
  'GET /api/v1/jobs/:id/variables': { 200: obj(['items', 'total']) },
  'GET /api/v1/jobs/:id/variables/:name': { 200: variable },
  'PUT /api/v1/jobs/:id/variables/:name': { 200: variable, 201: variable },
  'DELETE /api/v1/jobs/:id/variables/:name': { 204: empty },
};

/** Statuses an error can have (src/api/error-handler.ts). */
const ERROR_STATUSES = ['400', '401', '403', '404', '409', '413', '415', '422', '429', '500', '502', '503'];

export function installResponseSchemas(app: FastifyInstance): void {
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs') || route.schema?.hide) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.includes('HEAD') && methods.length === 1) return;
    const schema = ((route as any).schema ??= {});
    const response: Record<string, unknown> = (schema.response ??= {});
    const success = SUCCESS[`${methods[0]} ${route.url}`] ?? { '2XX': obj([]) };
    for (const [status, s] of Object.entries(success)) if (!(status in response)) response[status] = s;
    for (const status of ERROR_STATUSES) if (!(status in response)) response[status] = errorSchema;
  });
}
