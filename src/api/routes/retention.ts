import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { VecronError } from '../../errors.ts';
import { runRetention } from '../../retention/runner.ts';
import { retentionPeriods } from '../../retention/settings.ts';

const counts = { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } };

/** Retention: the periods in force, the last run, the jobs with their own period, and a run on demand. */
export async function retentionRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db, config } = ctx;

  app.get(
    '/api/v1/retention',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['retention'],
        summary: 'Retention settings, the jobs with their own period, and the last run (cluster-wide)',
        response: {
          200: {
            type: 'object',
            required: ['executions_days', 'audit_days', 'interval_seconds', 'batch_size', 'job_overrides', 'last_run'],
            additionalProperties: true,
            properties: {
              executions_days: { type: 'integer', description: '0: kept forever' },
              audit_days: { type: 'integer', description: '0: kept forever' },
              interval_seconds: { type: 'integer' },
              batch_size: { type: 'integer' },
              job_overrides: { type: 'array', items: { type: 'object', additionalProperties: true } },
              last_run: { type: ['object', 'null'], additionalProperties: true, properties: { pruned: counts } },
            },
          },
        },
      },
    },
    async () => {
      const overrides = await db.query<{ id: string; name: string; days: number }>(
        `SELECT id, name, (definition->>'retention_days')::int AS days FROM jobs WHERE definition->'retention_days' IS NOT NULL ORDER BY name`,
      );
      const last = (await db.query<any>(`SELECT started_at, finished_at, node, pruned FROM retention_runs WHERE id`)).rows[0];
      return {
        executions_days: config.retentionExecutionsDays,
        audit_days: config.retentionAuditDays,
        interval_seconds: config.retentionIntervalSeconds,
        batch_size: config.retentionBatchSize,
        job_overrides: overrides.rows.map((r) => ({ job_id: r.id, job_name: r.name, retention_days: r.days })),
        last_run: last?.started_at
          ? { started_at: last.started_at.toISOString(), finished_at: last.finished_at?.toISOString() ?? null, node: last.node, pruned: last.pruned }
          : null,
      };
    },
  );

  app.post(
    '/api/v1/retention/run',
    {
      config: { role: 'admin', audit: { action: 'retention.run', resource: 'retention' } },
      schema: {
        tags: ['retention'],
        summary: 'Run retention now (whatever the interval); 409 while a run is going on elsewhere in the cluster',
        response: { 200: { type: 'object', required: ['counts', 'jobs'], additionalProperties: true, properties: { counts } } },
      },
    },
    async (req) => {
      const outcome = await runRetention(
        {
          db,
          blobs: ctx.blobs,
          logger: ctx.logger.child({ component: 'retention' }),
          metrics: ctx.metrics,
          periods: retentionPeriods(config),
          intervalSeconds: config.retentionIntervalSeconds,
        },
        { force: true, actor: req.principal?.name ?? undefined },
      );
      req.auditResourceId = 'cluster';
      if (!outcome.ran) throw new VecronError('conflict', 'a retention run is going on right now (on this or another process); try again when it has ended');
      req.auditDetails = { counts: outcome.run.counts };
      return outcome.run;
    },
  );
}
