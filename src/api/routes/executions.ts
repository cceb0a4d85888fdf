import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { idParams, page, pageQuery, splitStatuses } from '../schemas.ts';
import { getExecution, listExecutions, EXECUTION_STATUSES } from '../../executions/history.ts';
import { cancelExecution, retryExecution } from '../../state/operator.ts';
import { VecronError, notFound } from '../../errors.ts';
import { isUuid } from '../../ids.ts';

export async function executionRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/api/v1/executions',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['executions'],
        summary: 'List executions of all jobs, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            status: { type: 'string', description: `Comma-separated: ${EXECUTION_STATUSES.join(', ')}` },
            job_id: { type: 'string' },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { page: number; limit: number; status?: string; job_id?: string };
      const { items, total } = await listExecutions(ctx.db, { ...q, jobId: q.job_id, statuses: splitStatuses(q.status) });
      return page(items, total, q);
    },
  );

  app.get(
    '/api/v1/executions/:id',
    {
      config: { role: 'viewer' },
      schema: { tags: ['executions'], summary: "Get one execution with each step's status, output and timings", params: idParams },
    },
    async (req) => getExecution(ctx.db, (req.params as { id: string }).id),
  );

  app.post(
    '/api/v1/executions/:id/retry',
    {
      config: { role: 'operator', audit: { action: 'execution.retry', resource: 'execution' } },
      schema: { tags: ['executions'], summary: 'Run a failed or dead-lettered execution again, from its failed step', params: idParams },
    },
    async (req, reply) => {
      const id = (req.params as { id: string }).id;
      if (!isUuid(id)) throw notFound('execution', id);
      const r = await retryExecution(ctx.db, id, req.principal?.name ?? 'unknown');
      if (!r.applied) {
        if (r.status === null) throw notFound('execution', id);
        throw new VecronError('conflict', `execution ${id} is ${r.status}; only failed or dead_lettered executions can be retried`);
      }
      return reply.status(202).send({ execution_id: id, status: 'queued' });
    },
  );

  app.post(
    '/api/v1/executions/:id/cancel',
    {
      config: { role: 'operator', audit: { action: 'execution.cancel', resource: 'execution' } },
      schema: { tags: ['executions'], summary: 'Cancel a queued or running execution (a running one stops at its next lease renewal)', params: idParams },
    },
    async (req) => {
      const id = (req.params as { id: string }).id;
      if (!isUuid(id)) throw notFound('execution', id);
      const r = await cancelExecution(ctx.db, id, req.principal?.name ?? 'unknown');
      if (!r.applied) {
        if (r.status === null) throw notFound('execution', id);
        throw new VecronError('conflict', `execution ${id} is already ${r.status}`);
      }
      return getExecution(ctx.db, id);
    },
  );
}
