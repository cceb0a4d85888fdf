import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { VERSION } from '../../version.ts';

export async function healthRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const started = Date.now();
  app.get('/health', {
    config: { role: 'public' },
    schema: { tags: ['system'], summary: 'Liveness and database reachability (no token needed)' },
  }, async (_req, reply) => {
    let database = 'ok';
    try {
      // Bounded: a partitioned database must not make the health check hang.
      await Promise.race([
        ctx.db.query('SELECT 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('database check timed out')), 3000).unref()),
      ]);
    } catch {
      database = 'unreachable';
    }
    const body = {
      status: database === 'ok' ? 'ok' : 'degraded',
      version: VERSION,
      database: { kind: ctx.db.kind, status: database },
      blob_store: ctx.blobs.kind,
      roles: ctx.config.roles,
      uptime_seconds: Math.round((Date.now() - started) / 1000),
    };
    return reply.status(database === 'ok' ? 200 : 503).send(body);
  });

  app.get('/metrics', {
    config: { role: 'public' },
    schema: { tags: ['system'], summary: 'Prometheus metrics', hide: false },
  }, async (_req, reply) => {
    reply.header('Content-Type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
