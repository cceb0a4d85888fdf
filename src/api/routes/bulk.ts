import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { errorSchema } from '../schemas.ts';
import {
  BULK_ACTIONS,
  DEFAULT_BULK_LIMIT,
  TRIGGER_TYPES,
  bulkExecutions,
  bulkTrigger,
  type BulkRequest,
  type BulkTriggerRequest,
} from '../../triggers/bulk.ts';
import { EXECUTION_STATUSES } from '../../state/statuses.ts';
import { readIdempotencyKey } from '../../triggers/idempotency.ts';

/** Bulk cancel/retry of executions by filter, and bulk trigger of jobs (src/triggers/bulk.ts). */
export async function bulkRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const max = ctx.config.bulkMaxExecutions;
  const by = (req: { principal: { name: string } | null }) => req.principal?.name ?? 'unknown';

  app.post(
    '/api/v1/executions/bulk',
    {
      config: { role: 'operator', audit: { action: 'execution.bulk', resource: 'execution' } },
      schema: {
        tags: ['executions'],
        summary: 'Cancel or retry the executions a filter selects',
        description:
          `Oldest first, at most \`limit\` (default ${DEFAULT_BULK_LIMIT}, or the number of \`filter.ids\`; at most VECRON_BULK_MAX_EXECUTIONS) per call; ` +
          '`truncated` says more match (call again). The filter needs at least one field. `cancel` applies to queued and running executions, ' +
          '`retry` to failed and dead_lettered ones; each goes through the same transition (and event) as the single-execution route. ' +
          '`dry_run: true` lists what would change and changes nothing. Answers what happened to each execution; one audit entry.',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['action', 'filter'],
          properties: {
            action: { type: 'string', enum: [...BULK_ACTIONS] },
            filter: {
              type: 'object',
              additionalProperties: false,
              properties: {
                ids: { type: 'array', items: { type: 'string', maxLength: 64 }, minItems: 1, maxItems: 100_000 },
                job_id: { type: 'string', maxLength: 64 },
                status: { type: 'array', items: { type: 'string', maxLength: 32 }, minItems: 1, maxItems: EXECUTION_STATUSES.length },
                trigger_type: { type: 'array', items: { type: 'string', enum: [...TRIGGER_TYPES] }, minItems: 1, maxItems: TRIGGER_TYPES.length },
                from: { type: 'string', maxLength: 64, description: 'created_at at or after this ISO 8601 instant' },
                to: { type: 'string', maxLength: 64, description: 'created_at before this ISO 8601 instant' },
              },
            },
            limit: { type: 'integer', minimum: 1 },
            dry_run: { type: 'boolean' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['action', 'dry_run', 'limit', 'matched', 'truncated', 'counts', 'items'],
            properties: {
              action: { type: 'string' },
              dry_run: { type: 'boolean' },
              limit: { type: 'integer' },
              matched: { type: 'integer' },
              truncated: { type: 'boolean' },
              counts: { type: 'object', additionalProperties: { type: 'integer' } },
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    execution_id: { type: 'string' },
                    job_id: { type: ['string', 'null'] },
                    outcome: { type: 'string' },
                    status_before: { type: ['string', 'null'] },
                    status: { type: ['string', 'null'] },
                    reason: { type: 'string' },
                  },
                },
              },
            },
          },
          400: errorSchema,
        },
      },
    },
    async (req) => {
      const body = req.body as BulkRequest;
      const result = await bulkExecutions(ctx.db, body, by(req), max);
      const changed = result.items.filter((i) => i.outcome === 'cancelled' || i.outcome === 'retried').map((i) => i.execution_id);
      req.auditDetails = {
        action: body.action,
        filter: body.filter,
        limit: result.limit,
        dry_run: result.dry_run,
        matched: result.matched,
        counts: result.counts,
        execution_ids: changed,
      };
      return result;
    },
  );

  app.post(
    '/api/v1/jobs/bulk-trigger',
    {
      config: { role: 'operator', audit: { action: 'job.bulk_trigger', resource: 'job' } },
      schema: {
        tags: ['jobs'],
        summary: 'Run several jobs now',
        description:
          'Queues one execution of each listed job (listed twice: once), with `payload` as `trigger.payload`, at most VECRON_BULK_MAX_EXECUTIONS jobs. ' +
          'Unknown jobs are reported as `not_found`, the others still run. An `Idempotency-Key` applies to each job on its own (as on ' +
          '`POST /api/v1/jobs/{id}/trigger`): repeating the call answers `replayed` with the first executions, and a job whose key was used with another payload answers `idempotency_key_reused` (the others still run). `dry_run: true` queues nothing.',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['job_ids'],
          properties: {
            job_ids: { type: 'array', items: { type: 'string', maxLength: 64 }, minItems: 1, maxItems: 100_000 },
            payload: { type: ['object', 'null'], additionalProperties: true },
            dry_run: { type: 'boolean' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['dry_run', 'counts', 'items'],
            properties: {
              dry_run: { type: 'boolean' },
              counts: { type: 'object', additionalProperties: { type: 'integer' } },
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    job_id: { type: 'string' },
                    outcome: { type: 'string' },
                    execution_id: { type: 'string' },
                    status: { type: 'string' },
                    message: { type: 'string' },
                  },
                },
              },
            },
          },
          400: errorSchema,
        },
      },
    },
    async (req) => {
      const body = req.body as BulkTriggerRequest;
      const key = readIdempotencyKey(req);
      const result = await bulkTrigger(ctx.db, body, {
        user: req.principal?.name ?? null,
        idempotencyKey: key,
        windowSeconds: ctx.config.idempotencyWindowSeconds,
        max,
      });
      req.auditDetails = {
        job_ids: body.job_ids,
        dry_run: result.dry_run,
        counts: result.counts,
        execution_ids: result.items.filter((i) => i.outcome === 'queued').map((i) => i.execution_id),
        ...(key === null ? {} : { idempotency_key: key }),
      };
      return result;
    },
  );
}
