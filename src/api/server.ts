import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { ApiContext } from './context.ts';
import { attachLazyValidators, lazyValidators } from './lazy-validators.ts';
import { installErrorHandling } from './error-handler.ts';
import { installAuth } from './auth.ts';
import { installInputLimits } from './input-limits.ts';
import { serializeRequest } from './log-redaction.ts';
import { installResponseSchemas } from './response-schemas.ts';
import { healthRoutes } from './routes/health.ts';
import { jobRoutes } from './routes/jobs.ts';
import { executionRoutes } from './routes/executions.ts';
import { bulkRoutes } from './routes/bulk.ts';
import { auditRoutes } from './routes/audit.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { webhooksRoutes } from './routes/webhooks.ts';
import { eventsRoutes } from './routes/events.ts';
import { variablesRoutes } from './routes/variables.ts';
import { wasmModuleRoutes } from './routes/wasm-modules.ts';
import { wasmKeyRoutes } from './routes/wasm-keys.ts';
import { wasmReplayRoutes } from './routes/wasm-replay.ts';
import { schedulePreviewRoutes } from './routes/schedule-preview.ts';
import { jobSchemaRoutes } from './routes/job-schemas.ts';
import { jobOverviewRoutes } from './routes/job-overview.ts';
import { sessionRoutes } from './routes/session.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { maintenanceRoutes } from './routes/maintenance.ts';
import { retentionRoutes } from './routes/retention.ts';
import { wasmRecordRoutes } from './routes/wasm-records.ts';
import { VERSION } from '../version.ts';

export type RouteModule = (app: FastifyInstance, ctx: ApiContext) => Promise<void>;

/** Route modules, one per resource; later capabilities add theirs here. */
export const routeModules: RouteModule[] = [
  healthRoutes,
  jobRoutes,
  executionRoutes,
  bulkRoutes,
  auditRoutes,
  tokenRoutes,
  webhooksRoutes,
  eventsRoutes,
  variablesRoutes,
  wasmModuleRoutes,
  wasmKeyRoutes,
  wasmReplayRoutes,
  schedulePreviewRoutes,
  jobSchemaRoutes,
  jobOverviewRoutes,
  sessionRoutes,
  maintenanceRoutes,
  retentionRoutes,
  dashboardRoutes,
  wasmRecordRoutes,
];

/** Builds the HTTP API (not yet listening). */
export async function buildApi(ctx: ApiContext, extraRoutes: RouteModule[] = []): Promise<FastifyInstance> {
  // Cast: Fastify infers pino's own Logger type from loggerInstance, which its plugin types reject.
  const validators = lazyValidators();
  const app = Fastify({
    loggerInstance: ctx.logger.child({ component: 'api' }, { serializers: { req: serializeRequest } }),
    // Validators built on their route's first request, not before the server listens (lazy-validators.ts).
    schemaController: { compilersFactory: { buildValidator: validators.buildValidator } },
    // JSON routes (jobs, variables, ...); uploads and webhooks set their own limit per route.
    bodyLimit: ctx.config.maxJsonBytes,
    routerOptions: { maxParamLength: 256 },
    ajv: { customOptions: { strict: false, allErrors: true, coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
  }) as unknown as FastifyInstance;
  attachLazyValidators(app, validators);

  // Bodies are JSON; a text/plain body must be refused (415), not handed to a route as a string.
  // (The webhook route registers its own raw-body parser in its scope.)
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app);
  installInputLimits(app, { maxDepth: ctx.config.jsonMaxDepth, maxKeys: ctx.config.jsonMaxKeys });
  installResponseSchemas(app);
  installAuth(app, ctx);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'vecron API',
        version: VERSION,
        description: 'Vietnam Enterprise Cron: jobs, executions, WASM modules. Authenticate with `Authorization: Bearer <token>`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    ctx.metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  for (const mod of [...routeModules, ...extraRoutes]) await mod(app, ctx);
  return app;
}
