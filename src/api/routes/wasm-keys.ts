import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.ts';
import { idParams } from '../schemas.ts';
import { addAuthorKey, listAuthorKeys, revokeAuthorKey } from '../../modules/keys.ts';

/** Trusted Ed25519 public keys of module authors; admin only. Revoking keeps the key on record. */
export async function wasmKeyRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db } = ctx;
  const actor = (req: FastifyRequest) => req.principal?.name ?? null;
  const tags = ['wasm signing keys'];

  app.post(
    '/api/v1/wasm/keys',
    {
      config: { role: 'admin', audit: { action: 'wasm.key.register', resource: 'wasm_key' } },
      schema: {
        tags,
        summary: "Register an author's public key",
        description:
          'Uploads signed by this key with `author` set to this author are accepted. The key: 64 hex digits (raw Ed25519) or a PEM public key (`wasm-cli keygen` prints both).',
        body: {
          type: 'object',
          required: ['author', 'public_key'],
          additionalProperties: false,
          properties: {
            author: { type: 'string', minLength: 1, maxLength: 255 },
            public_key: { type: 'string', minLength: 1, maxLength: 2000 },
            description: { type: ['string', 'null'], maxLength: 10_000 },
          },
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { author: string; public_key: string; description?: string | null };
      req.auditDetails = { author: body.author };
      const key = await addAuthorKey(db, body, actor(req));
      req.auditResourceId = key.id;
      req.auditDetails = { author: key.author, public_key: key.public_key };
      return reply.status(201).send(key);
    },
  );

  app.get(
    '/api/v1/wasm/keys',
    {
      config: { role: 'admin' },
      schema: {
        tags,
        summary: 'List registered keys',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { author: { type: 'string', maxLength: 255 }, include_revoked: { type: 'boolean', default: false } },
        },
      },
    },
    async (req) => {
      const q = req.query as { author?: string; include_revoked: boolean };
      const items = await listAuthorKeys(db, { author: q.author, includeRevoked: q.include_revoked });
      return { items, total: items.length };
    },
  );

  app.delete(
    '/api/v1/wasm/keys/:id',
    {
      config: { role: 'admin', audit: { action: 'wasm.key.revoke', resource: 'wasm_key' } },
      schema: { tags, summary: 'Revoke a key (uploads signed with it are refused from now on; the key stays on record)', params: idParams },
    },
    async (req) => {
      const key = await revokeAuthorKey(db, (req.params as { id: string }).id, actor(req));
      req.auditDetails = { author: key.author, public_key: key.public_key };
      return key;
    },
  );
}
