import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.ts';
import { errorSchema, idParams } from '../schemas.ts';
import { getJob } from '../../jobs/repository.ts';
import { loadWebhookSecret, storeWebhookSecret, syncWebhookSecretFlag } from '../../jobs/webhook-secret.ts';
import { enqueueExecution } from '../../state/enqueue.ts';
import { secretKeyFor } from '../../secrets/crypto.ts';
import { VecronError } from '../../errors.ts';

export const SIGNATURE_HEADER = 'x-vecron-signature';
export const DEFAULT_WEBHOOK_RATE_LIMIT_PER_MINUTE = 60;

/** Request headers that never reach the execution context. */
const DROPPED_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', SIGNATURE_HEADER]);

const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;

/** `sha256=<hex>` for `body` signed with `secret`: what a webhook sender puts in X-Vecron-Signature. */
export function signWebhookBody(secret: string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

/** Throws 401 unless `header` is a valid signature of `raw`; compares in constant time. */
function verifySignature(header: string | string[] | undefined, raw: Buffer, secret: string): void {
  if (header === undefined || header === '') {
    throw new VecronError(
      'unauthorized',
      `missing signature: send the header "X-Vecron-Signature: sha256=<hex HMAC-SHA256 of the request body, keyed with the job's webhook secret>"`,
    );
  }
  const m = typeof header === 'string' ? /^sha256=([0-9a-f]{64})$/i.exec(header.trim()) : null;
  if (!m) {
    throw new VecronError('unauthorized', 'invalid signature: the X-Vecron-Signature header must have the form "sha256=<64 hex digits>"');
  }
  const given = Buffer.from(m[1], 'hex');
  const expected = createHmac('sha256', secret).update(raw).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new VecronError(
      'unauthorized',
      "invalid signature: X-Vecron-Signature does not match the request body (sign the exact bytes sent, with HMAC-SHA256 and the job's webhook secret)",
    );
  }
}

function triggerHeaders(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    const key = name.toLowerCase();
    if (value === undefined || DROPPED_HEADERS.has(key)) continue;
    Object.defineProperty(out, key, {
      value: Array.isArray(value) ? value.join(', ') : String(value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function parsePayload(req: FastifyRequest, raw: Buffer): unknown {
  const contentType = req.headers['content-type'] ?? '';
  const text = raw.toString('utf8');
  if (!JSON_CONTENT_TYPE.test(contentType)) return text;
  if (raw.length === 0) return null;
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new VecronError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Signed webhook triggers (`POST /api/v1/webhooks/:job_id`, no token: the HMAC of the body with the
 * job's webhook secret authenticates the call) and rotation of that secret.
 */
export async function webhooksRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db } = ctx;

  // Own scope: the HMAC covers the exact bytes sent, so this route reads every body as a Buffer.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    scope.post('/api/v1/webhooks/:job_id', {
      config: { role: 'public', audit: { action: 'job.webhook', resource: 'job' } },
      schema: {
        tags: ['webhooks'],
        summary: 'Trigger a job from a signed webhook',
        description:
          'No API token: send `X-Vecron-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the job\'s webhook secret>`. ' +
          'A JSON body (Content-Type application/json) becomes `trigger.payload` parsed, any other body as text; headers ' +
          '(lower-cased, without authorization, cookie and the signature) and the query string become `trigger.headers` and ' +
          '`trigger.query`. At most `webhook.rate_limit_per_minute` (default 60) webhook executions per job per minute.',
        security: [],
        params: { type: 'object', properties: { job_id: { type: 'string' } }, required: ['job_id'] },
        response: {
          202: {
            type: 'object',
            properties: { execution_id: { type: 'string' }, job_id: { type: 'string' }, status: { type: 'string' } },
          },
          400: errorSchema,
          401: errorSchema,
          403: errorSchema,
          404: errorSchema,
          409: errorSchema,
          429: errorSchema,
        },
      },
    }, async (req, reply) => {
      const { job_id: jobId } = req.params as { job_id: string };
      req.auditResourceId = jobId;
      const job = await getJob(db, jobId);
      const key = secretKeyFor(ctx.config);
      const secret = await loadWebhookSecret(db, key, job.id);
      if (secret === null) {
        throw new VecronError('forbidden', 'webhook is not enabled for this job: set webhook.secret or rotate a secret');
      }
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      verifySignature(req.headers[SIGNATURE_HEADER], raw, secret);
      if (!job.enabled) throw new VecronError('conflict', 'job is disabled');
      const payload = parsePayload(req, raw);

      const limit = job.webhook?.rate_limit_per_minute ?? DEFAULT_WEBHOOK_RATE_LIMIT_PER_MINUTE;
      const time = new Date().toISOString();
      const trigger = {
        type: 'webhook' as const,
        time,
        payload,
        headers: triggerHeaders(req),
        query: { ...((req.query as Record<string, unknown>) ?? {}) },
      };
      // Count and insert under a per-job lock, so concurrent calls on any cluster member cannot
      // both take the last slot.
      const outcome = await db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`vecron.webhook.${job.id}`]);
        const { rows } = await tx.query<{ retry_after: number }>(
          `SELECT greatest(1, ceil(60 - extract(epoch FROM (now() - created_at))))::int AS retry_after
           FROM executions
           WHERE job_id = $1 AND trigger_type = 'webhook' AND created_at > now() - interval '60 seconds'
           ORDER BY created_at DESC
           OFFSET $2 LIMIT 1`,
          [job.id, limit - 1],
        );
        if (rows[0]) return { retryAfter: rows[0].retry_after };
        return { executionId: await enqueueExecution(tx, job, { trigger }) };
      });
      if ('retryAfter' in outcome) {
        reply.header('Retry-After', String(outcome.retryAfter));
        req.auditDetails = { rate_limit_per_minute: limit };
        throw new VecronError(
          'rate_limited',
          `webhook rate limit of ${limit} executions per minute reached for this job; retry in ${outcome.retryAfter} s`,
          { retry_after_seconds: outcome.retryAfter },
        );
      }
      if (!outcome.executionId) throw new VecronError('conflict', 'the execution could not be queued');
      req.auditDetails = { execution_id: outcome.executionId };
      return reply.status(202).send({ execution_id: outcome.executionId, job_id: job.id, status: 'queued' });
    });
  });

  app.post('/api/v1/jobs/:id/webhook-secret', {
    config: { role: 'operator', audit: { action: 'job.webhook_secret.rotate', resource: 'job' } },
    schema: {
      tags: ['webhooks'],
      summary: "Generate a new webhook secret for a job",
      description: 'Replaces the webhook secret of the job with a new random one and returns it; this is the only time it is shown.',
      params: idParams,
      response: { 200: { type: 'object', properties: { secret: { type: 'string' } } } },
    },
  }, async (req, reply) => {
    const job = await getJob(db, (req.params as { id: string }).id);
    const secret = randomBytes(32).toString('hex');
    await db.transaction(async (tx) => {
      await storeWebhookSecret(tx, secretKeyFor(ctx.config), job.id, secret);
      await syncWebhookSecretFlag(tx, job.id);
    });
    reply.header('Cache-Control', 'no-store');
    return { secret };
  });
}
