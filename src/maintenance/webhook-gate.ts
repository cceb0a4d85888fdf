import type { FastifyReply } from 'fastify';
import type { Queryable } from '../db/database.ts';
import { VecronError } from '../errors.ts';
import { PAUSED_RETRY_AFTER_SECONDS, firingPausedReason } from './state.ts';

/**
 * Webhooks while firing is paused: 503 `unavailable` with Retry-After, not a 4xx, so that the
 * sender retries after the maintenance and no event is lost (senders drop a 4xx for good).
 */
export async function refuseWhilePaused(db: Queryable, jobId: string, reply: FastifyReply): Promise<void> {
  const why = await firingPausedReason(db, jobId);
  if (!why) return;
  reply.header('Retry-After', String(PAUSED_RETRY_AFTER_SECONDS));
  throw new VecronError('unavailable', `${why}; send the webhook again after the maintenance (retry in ${PAUSED_RETRY_AFTER_SECONDS} s)`, {
    retry_after_seconds: PAUSED_RETRY_AFTER_SECONDS,
    paused: true,
  });
}
