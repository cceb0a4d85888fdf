import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { page, pageQuery } from '../schemas.ts';
import { queryAudit, type AuditQuery } from '../../audit/audit-log.ts';

export async function auditRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/api/v1/audit',
    {
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
            since: { type: 'string', format: 'date-time', description: 'Entries at or after this instant' },
            until: { type: 'string', format: 'date-time', description: 'Entries before this instant' },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as any;
      const query: AuditQuery = {
        page: q.page,
        limit: q.limit,
        action: q.action,
        actor: q.actor,
        resourceType: q.resource_type,
        resourceId: q.resource_id,
        outcome: q.outcome,
        since: q.since ? new Date(q.since) : undefined,
        until: q.until ? new Date(q.until) : undefined,
      };
      const { items, total } = await queryAudit(ctx.db, query);
      return page(items, total, q);
    },
  );
}
