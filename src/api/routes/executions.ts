import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { idParams, page, pageQuery } from '../schemas.ts';
import { getExecution, listExecutions, EXECUTION_STATUSES } from '../../executions/history.ts';
import { splitStatuses } from './jobs.ts';

export async function executionRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get('/api/v1/executions', {
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
  }, async (req) => {
    const q = req.query as { page: number; limit: number; status?: string; job_id?: string };
    const { items, total } = await listExecutions(ctx.db, { ...q, jobId: q.job_id, statuses: splitStatuses(q.status) });
    return page(items, total, q);
  });

  app.get('/api/v1/executions/:id', {
    config: { role: 'viewer' },
    schema: { tags: ['executions'], summary: "Get one execution with each step's status, output and timings", params: idParams },
  }, async (req) => getExecution(ctx.db, (req.params as { id: string }).id));
}
