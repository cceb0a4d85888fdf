import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';

/** Who the caller's token is: clients (the dashboard's sign-in) check a token and learn its role. */
export async function sessionRoutes(app: FastifyInstance, _ctx: ApiContext): Promise<void> {
  app.get(
    '/api/v1/session',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['tokens'],
        summary: "The calling token's identity and role",
        response: {
          200: {
            type: 'object',
            required: ['id', 'name', 'role'],
            properties: { id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string', enum: ['viewer', 'operator', 'admin'] } },
          },
        },
      },
    },
    async (req) => ({ id: req.principal!.id, name: req.principal!.name, role: req.principal!.role }),
  );
}
