import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.ts';
import { errorSchema, idParams } from '../schemas.ts';
import { getJob, type JobRecord } from '../../jobs/repository.ts';
import { bumpCounter, overLimit } from '../request-counters.ts';
import { assertStorableText, checkJsonShape, type JsonLimits } from '../input-limits.ts';
import { loadWebhookSecret, storeWebhookSecret, syncWebhookSecretFlag } from '../../jobs/webhook-secret.ts';
import { enqueueExecution } from '../../state/enqueue.ts';
import { traceHeadersOf } from '../../tracing/propagate.ts';
import { secretKeyFor } from '../../secrets/crypto.ts';
import { VecronError } from '../../errors.ts';
import { REPLAYED_HEADER, findKey, fingerprint, readIdempotencyKey, triggerOnce, type TriggerOutcome } from '../../triggers/idempotency.ts';
import { refuseWhilePaused } from '../../maintenance/webhook-gate.ts';

export const SIGNATURE_HEADER = 'x-vecron-signature';
export const TIMESTAMP_HEADER = 'x-vecron-timestamp';
export const DEFAULT_WEBHOOK_RATE_LIMIT_PER_MINUTE = 60;
/** The per-job failure limit is this many times the per-source one (many sources share a job). */
const JOB_FAILURE_FACTOR = 5;

/** Request headers that never reach the execution context. */
const DROPPED_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', SIGNATURE_HEADER]);

const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;

/**
 * `sha256=<hex>` for a webhook: HMAC-SHA256 keyed with the job's secret over `<timestamp>.<body>`
 * (the default scheme), or over the body alone when `timestamp` is null (the older 'body' scheme).
 */
export function signWebhook(secret: string, body: string | Buffer, timestamp: number | string | null): string {
  const mac = createHmac('sha256', secret);
  if (timestamp !== null) mac.update(`${timestamp}.`);
  return 'sha256=' + mac.update(body).digest('hex');
}

/** The older body-only signature (`webhook.signature_scheme: body`). */
export function signWebhookBody(secret: string, body: string | Buffer): string {
  return signWebhook(secret, body, null);
}

/** Why a signature was refused: counted towards the failure throttle. */
class SignatureRefused extends VecronError {
  constructor(message: string) {
    super('unauthorized', message);
  }
}

/**
 * Checks the signature (and the timestamp, in the timestamped scheme) of a webhook; throws
 * SignatureRefused. Returns the signature's hex, the key for replay detection. Constant-time compare.
 */
function verifySignature(req: FastifyRequest, raw: Buffer, secret: string, scheme: 'timestamped' | 'body', toleranceSeconds: number): string {
  const header = req.headers[SIGNATURE_HEADER];
  if (header === undefined || header === '') {
    throw new SignatureRefused(
      scheme === 'body'
        ? `missing signature: send the header "X-Vecron-Signature: sha256=<hex HMAC-SHA256 of the request body, keyed with the job's webhook secret>"`
        : `missing signature: send "X-Vecron-Timestamp: <Unix seconds>" and "X-Vecron-Signature: sha256=<hex HMAC-SHA256 of '<timestamp>.<body>', keyed with the job's webhook secret>"`,
    );
  }
  const m = typeof header === 'string' ? /^sha256=([0-9a-f]{64})$/i.exec(header.trim()) : null;
  if (!m) throw new SignatureRefused('invalid signature: the X-Vecron-Signature header must have the form "sha256=<64 hex digits>"');
  let timestamp: string | null = null;
  if (scheme === 'timestamped') {
    const t = req.headers[TIMESTAMP_HEADER];
    if (typeof t !== 'string' || !/^\d{1,12}$/.test(t.trim())) {
      throw new SignatureRefused('missing or invalid X-Vecron-Timestamp: send the Unix time in seconds at which the request was signed');
    }
    timestamp = t.trim();
    const skew = Math.abs(Date.now() / 1000 - Number(timestamp));
    if (skew > toleranceSeconds) {
      throw new SignatureRefused(
        `stale webhook: X-Vecron-Timestamp is ${Math.round(skew)} s away from the server clock (tolerance ${toleranceSeconds} s, VECRON_WEBHOOK_TOLERANCE_SECONDS); sign each request when it is sent`,
      );
    }
  }
  const given = Buffer.from(m[1], 'hex');
  const expected = Buffer.from(signWebhook(secret, raw, timestamp).slice(7), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SignatureRefused(
      scheme === 'body'
        ? "invalid signature: X-Vecron-Signature does not match the request body (sign the exact bytes sent, with HMAC-SHA256 and the job's webhook secret)"
        : "invalid signature: X-Vecron-Signature does not match '<X-Vecron-Timestamp>.<body>' (sign the timestamp, a dot and the exact bytes sent, with HMAC-SHA256 and the job's webhook secret)",
    );
  }
  return m[1].toLowerCase();
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

function parsePayload(req: FastifyRequest, raw: Buffer, limits: JsonLimits): unknown {
  const contentType = req.headers['content-type'] ?? '';
  const text = raw.toString('utf8');
  if (!JSON_CONTENT_TYPE.test(contentType)) {
    assertStorableText(text, 'body');
    return text;
  }
  if (raw.length === 0) return null;
  checkJsonShape(text, limits);
  let payload: unknown;
  try {
    payload = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new VecronError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
  assertStorableText(payload, 'body');
  return payload;
}

/**
 * Signed webhook triggers (`POST /api/v1/webhooks/:job_id`, no token: the HMAC of the body with the
 * job's webhook secret authenticates the call) and rotation of that secret.
 */
export async function webhooksRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db } = ctx;
  const maxFailures = ctx.config.webhookMaxFailuresPerMinute;
  const tolerance = ctx.config.webhookToleranceSeconds;
  /** What preParsing found, for the handler. */
  const webhookState = new WeakMap<FastifyRequest, { job: JobRecord; secret: string }>();
  const refuseThrottled = (reply: FastifyReply, retryAfter: number): never => {
    reply.header('Retry-After', String(retryAfter));
    throw new VecronError('rate_limited', `too many failed webhook signatures; retry in ${retryAfter} s`, { retry_after_seconds: retryAfter });
  };

  // Own scope: the HMAC covers the exact bytes sent, so this route reads every body as a Buffer.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    scope.post(
      '/api/v1/webhooks/:job_id',
      {
        config: { role: 'public', audit: { action: 'job.webhook', resource: 'job' }, bodyLimitSetting: 'VECRON_WEBHOOK_MAX_BYTES' },
        bodyLimit: ctx.config.webhookMaxBytes,
        schema: {
          tags: ['webhooks'],
          summary: 'Trigger a job from a signed webhook',
          description:
            'No API token. Send `X-Vecron-Timestamp: <Unix seconds>` and `X-Vecron-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>", ' +
            "keyed with the job's webhook secret>` (jobs with `webhook.signature_scheme: body` sign the raw body only). A timestamp more than " +
            'VECRON_WEBHOOK_TOLERANCE_SECONDS (300) from the server clock, or a signature already seen in that window, is refused. ' +
            'The job and its secret are looked up before the body is read; a body over VECRON_WEBHOOK_MAX_BYTES is 413. Failed signatures ' +
            'are throttled per source address and per job (429). ' +
            'A JSON body (Content-Type application/json) becomes `trigger.payload` parsed, any other body as text; headers ' +
            '(lower-cased, without authorization, cookie and the signature) and the query string become `trigger.headers` and ' +
            '`trigger.query`. At most `webhook.rate_limit_per_minute` (default 60) webhook executions per job per minute. ' +
            'An `Idempotency-Key` header makes redeliveries safe: a repeat of the key for this job within VECRON_IDEMPOTENCY_WINDOW_SECONDS answers 202 with the ' +
            'first execution and `Idempotent-Replayed: true` (not counted by the rate limit, not refused as a replayed signature); the same key with another body or query is 422.',
          security: [],
          params: { type: 'object', properties: { job_id: { type: 'string' } }, required: ['job_id'] },
          response: {
            202: {
              type: 'object',
              required: ['execution_id', 'job_id', 'status'],
              properties: { execution_id: { type: 'string' }, job_id: { type: 'string' }, status: { type: 'string' } },
            },
            400: errorSchema,
            401: errorSchema,
            403: errorSchema,
            404: errorSchema,
            409: errorSchema,
            413: errorSchema,
            422: errorSchema,
            415: errorSchema,
            429: errorSchema,
          },
        },
        // Before the body is read: the job, its secret and the failure throttle. An unknown job, a job
        // without a secret or a throttled source costs no buffering of what it sends.
        preParsing: async (req, reply, payload) => {
          const { job_id: jobId } = req.params as { job_id: string };
          req.auditResourceId = jobId;
          const ipKey = `webhook.fail.ip:${req.ip}`;
          const throttled = await overLimit(db, [{ key: ipKey, max: maxFailures }]);
          if (throttled) refuseThrottled(reply, throttled.retryAfter);
          const job = await getJob(db, jobId);
          const secret = await loadWebhookSecret(db, secretKeyFor(ctx.config), job.id);
          if (secret === null) {
            throw new VecronError('forbidden', 'webhook is not enabled for this job: set webhook.secret or rotate a secret');
          }
          const jobThrottled = await overLimit(db, [{ key: `webhook.fail.job:${job.id}`, max: maxFailures * JOB_FAILURE_FACTOR }]);
          if (jobThrottled) refuseThrottled(reply, jobThrottled.retryAfter);
          webhookState.set(req, { job, secret });
          return payload;
        },
      },
      async (req, reply) => {
        const state = webhookState.get(req);
        if (!state) throw new VecronError('not_found', 'job not found');
        const { job, secret } = state;
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const scheme = job.webhook?.signature_scheme === 'body' ? 'body' : 'timestamped';
        let signature: string;
        try {
          signature = verifySignature(req, raw, secret, scheme, tolerance);
        } catch (err) {
          if (err instanceof SignatureRefused) {
            // Counted per source and per job, cluster-wide; the audit row is aggregated (auth.ts).
            await bumpCounter(db, `webhook.fail.ip:${req.ip}`, 60);
            await bumpCounter(db, `webhook.fail.job:${job.id}`, 60);
          }
          throw err;
        }
        if (!job.enabled) throw new VecronError('conflict', 'job is disabled');
        await refuseWhilePaused(db, job.id, reply);
        const payload = parsePayload(req, raw, { maxDepth: ctx.config.jsonMaxDepth, maxKeys: ctx.config.jsonMaxKeys });
        const idempotencyKey = readIdempotencyKey(req);

        const limit = job.webhook?.rate_limit_per_minute ?? DEFAULT_WEBHOOK_RATE_LIMIT_PER_MINUTE;
        const time = new Date().toISOString();
        const traceHeaders = traceHeadersOf(req.headers);
        const trigger = {
          type: 'webhook' as const,
          time,
          payload,
          headers: triggerHeaders(req),
          query: { ...((req.query as Record<string, unknown>) ?? {}) },
        };
        // A redelivery with the same Idempotency-Key (same body and query) gets the first execution.
        const scope =
          idempotencyKey === null ? null : { jobId: job.id, source: 'webhook' as const, key: idempotencyKey, fingerprint: fingerprint(raw, trigger.query) };
        // Count, refuse a replay and insert under a per-job lock, so concurrent calls on any cluster
        // member cannot both take the last slot. The signature is recorded in the same transaction:
        // a call refused by the rate limit can be sent again with the same signature.
        const outcome = await db.transaction(async (tx) => {
          await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`vecron.webhook.${job.id}`]);
          // A repeat is answered before the rate limit and the signature replay check: it queues nothing.
          const first = scope ? await findKey(tx, scope) : null;
          if (first) return { first };
          const run = async (): Promise<{ executionId: string | null } | { first: TriggerOutcome }> => {
            const enqueue = () => enqueueExecution(tx, job, { trigger, traceHeaders });
            if (!scope) return { executionId: await enqueue() };
            const r = await triggerOnce(tx, scope, ctx.config.idempotencyWindowSeconds, enqueue);
            return r.replayed ? { first: r } : { executionId: r.executionId };
          };
          const { rows } = await tx.query<{ retry_after: number }>(
            `SELECT greatest(1, ceil(60 - extract(epoch FROM (now() - created_at))))::int AS retry_after
           FROM executions
           WHERE job_id = $1 AND trigger_type = 'webhook' AND created_at > now() - interval '60 seconds'
           ORDER BY created_at DESC
           OFFSET $2 LIMIT 1`,
            [job.id, limit - 1],
          );
          if (rows[0]) return { retryAfter: rows[0].retry_after };
          // The body-only scheme cannot tell a replay from a sender posting the same body again: it
          // stays as it was (replayable), which is why it must be chosen explicitly.
          if (scheme === 'body') return run();
          const seen = await tx.query(
            `INSERT INTO webhook_signatures_seen (signature, job_id, expires_at)
           VALUES ($1, $2, now() + make_interval(secs => $3))
           ON CONFLICT (signature) DO UPDATE SET expires_at = EXCLUDED.expires_at
             WHERE webhook_signatures_seen.expires_at <= now()
           RETURNING signature`,
            [`${job.id}:${signature}`, job.id, tolerance * 2],
          );
          if (seen.rowCount === 0) return { replay: true as const };
          return run();
        });
        if (Math.random() < 0.02) void db.query('DELETE FROM webhook_signatures_seen WHERE expires_at <= now()').catch(() => {});
        if ('replay' in outcome) {
          throw new VecronError('conflict', 'replayed webhook: this signature was already accepted; sign every request anew (with a fresh X-Vecron-Timestamp)');
        }
        if ('retryAfter' in outcome) {
          reply.header('Retry-After', String(outcome.retryAfter));
          req.auditDetails = { rate_limit_per_minute: limit };
          throw new VecronError('rate_limited', `webhook rate limit of ${limit} executions per minute reached for this job; retry in ${outcome.retryAfter} s`, {
            retry_after_seconds: outcome.retryAfter,
          });
        }
        if ('first' in outcome) {
          req.auditDetails = { execution_id: outcome.first.executionId, idempotency_key: idempotencyKey, replayed: true };
          reply.header(REPLAYED_HEADER, 'true');
          return reply.status(202).send({ execution_id: outcome.first.executionId, job_id: job.id, status: outcome.first.status });
        }
        if (!outcome.executionId) throw new VecronError('conflict', 'the execution could not be queued');
        req.auditDetails = { execution_id: outcome.executionId, ...(idempotencyKey === null ? {} : { idempotency_key: idempotencyKey }) };
        return reply.status(202).send({ execution_id: outcome.executionId, job_id: job.id, status: 'queued' });
      },
    );
  });

  app.post(
    '/api/v1/jobs/:id/webhook-secret',
    {
      config: { role: 'operator', audit: { action: 'job.webhook_secret.rotate', resource: 'job' } },
      schema: {
        tags: ['webhooks'],
        summary: 'Generate a new webhook secret for a job',
        description: 'Replaces the webhook secret of the job with a new random one and returns it; this is the only time it is shown.',
        params: idParams,
        response: { 200: { type: 'object', properties: { secret: { type: 'string' } } } },
      },
    },
    async (req, reply) => {
      const job = await getJob(db, (req.params as { id: string }).id);
      const secret = randomBytes(32).toString('hex');
      await db.transaction(async (tx) => {
        await storeWebhookSecret(tx, secretKeyFor(ctx.config), job.id, secret);
        await syncWebhookSecretFlag(tx, job.id);
      });
      reply.header('Cache-Control', 'no-store');
      return { secret };
    },
  );
}
