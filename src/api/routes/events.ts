import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';

// Routes of this module are being written; registered in src/api/server.ts already.
export async function eventsRoutes(_app: FastifyInstance, _ctx: ApiContext): Promise<void> {}
