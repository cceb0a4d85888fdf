import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { idParams, page, pageQuery, splitStatuses } from '../schemas.ts';
import { getExecution, listExecutions, EXECUTION_STATUSES } from '../../executions/history.ts';
import { requeueExecution } from '../../queue/finish.ts';
import { QUEUE_CHANNEL } from '../../queue/enqueue.ts';
import { VecronError } from '../../errors.ts';
import { isUuid } from '../../ids.ts';

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

  app.post('/api/v1/executions/:id/retry', {
    config: { role: 'operator', audit: { action: 'execution.retry', resource: 'execution' } },
    schema: { tags: ['executions'], summary: 'Run a failed or dead-lettered execution again, from its failed step', params: idParams },
  }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const before = await getExecution(ctx.db, id);
    if (!(await requeueExecution(ctx.db, id))) {
      throw new VecronError('conflict', `execution ${id} is ${before.status}; only failed or dead_lettered executions can be retried`);
    }
    await ctx.db.notify(QUEUE_CHANNEL, id);
    return reply.status(202).send({ execution_id: id, status: 'queued' });
  });

  app.post('/api/v1/executions/:id/cancel', {
    config: { role: 'operator', audit: { action: 'execution.cancel', resource: 'execution' } },
    schema: { tags: ['executions'], summary: 'Cancel a queued or running execution (a running one stops at its next lease renewal)', params: idParams },
  }, async (req) => {
    const id = (req.params as { id: string }).id;
    if (!isUuid(id)) throw new VecronError('not_found', `execution '${id}' does not exist`);
    const r = await ctx.db.query<{ id: string }>(
      `UPDATE executions SET status = 'cancelled', finished_at = now(), locked_by = NULL, lease_expires_at = NULL,
              error = jsonb_build_object('code', 'cancelled', 'message', 'cancelled by ' || $2::text)
       WHERE id = $1 AND status IN ('queued', 'running') RETURNING id`,
      [id, req.principal?.name ?? 'unknown'],
    );
    if (!r.rows[0]) {
      const e = await getExecution(ctx.db, id);
      throw new VecronError('conflict', `execution ${id} is already ${e.status}`);
    }
    return getExecution(ctx.db, id);
  });
}
