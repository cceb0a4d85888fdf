import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { VERSION } from '../../version.ts';
import { describeDbError } from '../../db/transient.ts';
import { maintenanceSummary } from '../../maintenance/summary.ts';

interface DatabaseCheck {
  kind: string;
  status: 'ok' | 'unreachable';
  /** Why the database is unreachable (the last connection error); absent when ok. */
  reason?: string;
  /** Since when (ISO time), when this process saw the failure start. */
  since?: string;
  /** The LISTEN connection (wake-ups and the event stream): 'reconnecting' while it is away. */
  listener: string;
}

export async function healthRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const started = Date.now();

  async function checkDatabase(): Promise<DatabaseCheck> {
    const state = ctx.db.connectionState();
    let reason: string | null = null;
    try {
      // Bounded: a partitioned database must not make the health check hang.
      await Promise.race([
        ctx.db.query('SELECT 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('database check timed out after 3 s')), 3000).unref()),
      ]);
    } catch (err) {
      reason = describeDbError(err);
    }
    const after = ctx.db.connectionState();
    if (reason === null && after.listener !== 'reconnecting') {
      return { kind: ctx.db.kind, status: 'ok', listener: after.listener };
    }
    return {
      kind: ctx.db.kind,
      status: 'unreachable',
      reason: reason ?? `the LISTEN connection is reconnecting (${after.reason ?? state.reason ?? 'connection lost'})`,
      ...((after.since ?? state.since) ? { since: new Date((after.since ?? state.since)!).toISOString() } : {}),
      listener: after.listener,
    };
  }

  // Liveness: 200 while the process runs, even when the database is away (restarting the process
  // would not bring the database back, and would drop the outcomes it is still retrying to save).
  app.get(
    '/health',
    {
      config: { role: 'public' },
      schema: { tags: ['system'], summary: 'Liveness and database reachability (no token needed); status degraded while the database is away' },
    },
    async (_req, reply) => {
      const database = await checkDatabase();
      const body = {
        status: database.status === 'ok' ? 'ok' : 'degraded',
        version: VERSION,
        database,
        blob_store: ctx.blobs.kind,
        roles: ctx.config.roles,
        // Maintenance mode (cluster-wide pause of firing); absent while the database is away.
        ...(database.status === 'ok' ? { maintenance: await maintenanceSummary(ctx.db) } : {}),
        uptime_seconds: Math.round((Date.now() - started) / 1000),
      };
      return reply.status(200).send(body);
    },
  );

  // Readiness: 503 while the database is away, so a load balancer sends requests elsewhere.
  app.get(
    '/ready',
    {
      config: { role: 'public' },
      schema: { tags: ['system'], summary: 'Readiness (no token needed): 200 when the database answers, 503 with the reason otherwise' },
    },
    async (_req, reply) => {
      const database = await checkDatabase();
      // The API listens before the worker and the scheduler start (src/app.ts): not ready until they have.
      const starting = ctx.rolesStarted !== undefined && !ctx.rolesStarted();
      const ready = database.status === 'ok' && !starting;
      return reply.status(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        database,
        ...(starting ? { reason: 'starting: the worker and scheduler roles are not started yet' } : {}),
      });
    },
  );

  app.get(
    '/metrics',
    {
      config: { role: 'public' },
      schema: { tags: ['system'], summary: 'Prometheus metrics', hide: false },
    },
    async (_req, reply) => {
      reply.header('Content-Type', ctx.metrics.registry.contentType);
      return ctx.metrics.registry.metrics();
    },
  );
}
