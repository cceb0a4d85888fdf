import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { page, pageQuery } from '../schemas.ts';
import { queryAudit, type AuditQuery } from '../../audit/audit-log.ts';

export async function auditRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get('/api/v1/audit', {
    config: { role: 'viewer' },
    schema: {
      tags: ['audit'],
      summary: 'Read the audit log, newest first',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...pageQuery,
          action: { type: 'string' },
          actor: { type: 'string' },
          resource_type: { type: 'string' },
          resource_id: { type: 'string' },
          outcome: { type: 'string', enum: ['success', 'failure', 'denied', 'alert'] },
        },
      },
    },
  }, async (req) => {
    const q = req.query as any;
    const query: AuditQuery = {
      page: q.page,
      limit: q.limit,
      action: q.action,
      actor: q.actor,
      resourceType: q.resource_type,
      resourceId: q.resource_id,
      outcome: q.outcome,
    };
    const { items, total } = await queryAudit(ctx.db, query);
    return page(items, total, q);
  });
}
