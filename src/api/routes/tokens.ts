import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { idParams } from '../schemas.ts';
import { createToken, listTokens, revokeToken, tokenKeyFor } from '../../auth/tokens.ts';
import { ROLES, type TokenRole } from '../../auth/roles.ts';

export async function tokenRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/api/v1/tokens',
    {
      config: { role: 'admin' },
      schema: { tags: ['tokens'], summary: 'List API tokens (never their values)' },
    },
    async () => ({ items: await listTokens(ctx.db) }),
  );

  app.post(
    '/api/v1/tokens',
    {
      config: { role: 'admin', audit: { action: 'token.create', resource: 'token' } },
      schema: {
        tags: ['tokens'],
        summary: 'Create an API token; the value is shown once, in this answer',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'role'],
          properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, role: { type: 'string', enum: [...ROLES] } },
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { name: string; role: TokenRole };
      const t = await createToken(ctx.db, tokenKeyFor(ctx.config), { ...body, createdBy: req.principal?.name });
      req.auditResourceId = t.id;
      req.auditDetails = { name: t.name, role: t.role };
      return reply.status(201).send(t);
    },
  );

  app.delete(
    '/api/v1/tokens/:id',
    {
      config: { role: 'admin', audit: { action: 'token.revoke', resource: 'token' } },
      schema: { tags: ['tokens'], summary: 'Revoke an API token', params: idParams },
    },
    async (req) => revokeToken(ctx.db, (req.params as { id: string }).id),
  );
}
