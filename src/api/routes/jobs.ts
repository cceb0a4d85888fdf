import type { FastifyInstance } from 'fastify';
import type { Queryable } from '../../db/database.ts';
import type { ApiContext } from '../context.ts';
import { idParams, page, pageQuery, splitStatuses } from '../schemas.ts';
import { parseJobDocument } from '../../jobs/validate.ts';
import { checkJobModules } from '../../modules/job-check.ts';
import { createJob, deleteJob, getJob, listJobs, setJobEnabled, updateJob } from '../../jobs/repository.ts';
import { enqueueExecution } from '../../state/enqueue.ts';
import { traceHeadersOf } from '../../tracing/propagate.ts';
import { listExecutions, EXECUTION_STATUSES } from '../../executions/history.ts';
import { VecronError } from '../../errors.ts';
import { jobDocumentSchema } from '../openapi-job.ts';
import { JOBS_CHANNEL } from '../../db/channels.ts';
import { applyWebhookSecret, extractWebhookSecret } from '../../jobs/webhook-secret.ts';
import { secretKeyFor } from '../../secrets/crypto.ts';
import { REPLAYED_HEADER, fingerprint, readIdempotencyKey, triggerOnce } from '../../triggers/idempotency.ts';

export async function jobRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db } = ctx;
  const actor = (req: { principal: { name: string } | null }) => req.principal?.name ?? null;
  // Schedulers re-read a job's schedule when told it changed (and on their next round anyway).
  const changed = (id: string) => void db.notify(JOBS_CHANNEL, id).catch(() => {});

  app.post(
    '/api/v1/jobs',
    {
      config: { role: 'operator', audit: { action: 'job.create', resource: 'job' } },
      schema: {
        tags: ['jobs'],
        summary: 'Create a job',
        description:
          'Accepts the flat shape (`"type": "http", "config": {...}`) and the design study shape (`"step_type": {"HttpRequest": {...}}`); stores the canonical form. Every problem is reported at once, with its JSON path.',
        body: jobDocumentSchema,
      },
    },
    async (req, reply) => {
      // A webhook secret is kept encrypted beside the job, never in the definition GET returns.
      const { def, secret } = extractWebhookSecret(parseJobDocument(req.body));
      await checkJobModules(db, def);
      const job = await db.transaction(async (tx) => applyWebhookSecret(tx, secretKeyFor(ctx.config), await createJob(tx, def, actor(req)), secret));
      req.auditResourceId = job.id;
      req.auditDetails = { name: job.name };
      changed(job.id);
      return reply.status(201).send(job);
    },
  );

  app.get(
    '/api/v1/jobs',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['jobs'],
        summary: 'List jobs',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            search: { type: 'string', maxLength: 200 },
            name: { type: 'string', minLength: 1, maxLength: 200, description: 'exact job name (names are unique): at most one item' },
            enabled: { type: 'boolean' },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { page: number; limit: number; search?: string; name?: string; enabled?: boolean };
      const { items, total } = await listJobs(db, q);
      return page(items, total, q);
    },
  );

  app.get(
    '/api/v1/jobs/:id',
    {
      config: { role: 'viewer' },
      schema: { tags: ['jobs'], summary: 'Get a job', params: idParams },
    },
    async (req) => getJob(db, (req.params as { id: string }).id),
  );

  app.put(
    '/api/v1/jobs/:id',
    {
      config: { role: 'operator', audit: { action: 'job.update', resource: 'job' } },
      schema: { tags: ['jobs'], summary: 'Replace a job definition', params: idParams, body: jobDocumentSchema },
    },
    async (req) => {
      const { def, secret } = extractWebhookSecret(parseJobDocument(req.body));
      await checkJobModules(db, def);
      const job = await db.transaction(async (tx) =>
        applyWebhookSecret(tx, secretKeyFor(ctx.config), await updateJob(tx, (req.params as { id: string }).id, def, actor(req)), secret),
      );
      req.auditDetails = { name: job.name, version: job.version };
      changed(job.id);
      return job;
    },
  );

  app.delete(
    '/api/v1/jobs/:id',
    {
      config: { role: 'operator', audit: { action: 'job.delete', resource: 'job' } },
      schema: { tags: ['jobs'], summary: 'Delete a job and its execution history', params: idParams },
    },
    async (req, reply) => {
      const job = await deleteJob(db, (req.params as { id: string }).id);
      req.auditDetails = { name: job.name };
      return reply.status(204).send();
    },
  );

  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    app.post(
      `/api/v1/jobs/:id/${verb}`,
      {
        config: { role: 'operator', audit: { action: `job.${verb}`, resource: 'job' } },
        schema: { tags: ['jobs'], summary: `${verb[0].toUpperCase()}${verb.slice(1)} a job's schedule`, params: idParams },
      },
      async (req) => {
        const job = await setJobEnabled(db, (req.params as { id: string }).id, enabled, actor(req));
        changed(job.id);
        return job;
      },
    );
  }

  app.post(
    '/api/v1/jobs/:id/trigger',
    {
      config: { role: 'operator', audit: { action: 'job.trigger', resource: 'job' } },
      schema: {
        tags: ['jobs'],
        summary: 'Run a job now',
        description:
          'Queues one execution; the optional body becomes `trigger.payload` in the job context. Works for disabled jobs too (manual runs ignore the schedule switch). ' +
          'With an `Idempotency-Key` header (1-255 printable ASCII characters), a repeat of the key for this job within VECRON_IDEMPOTENCY_WINDOW_SECONDS (24 h) ' +
          'answers 202 with the first execution (its current status) and `Idempotent-Replayed: true` instead of queueing another; the same key with a different body is 422 `idempotency_key_reused`.',
        params: idParams,
        body: { type: ['object', 'null'], additionalProperties: true },
      },
    },
    async (req, reply) => {
      const job = await getJob(db, (req.params as { id: string }).id);
      const payload = req.body ?? {};
      const key = readIdempotencyKey(req);
      const enqueue = (q: Queryable) =>
        enqueueExecution(q, job, {
          trigger: { type: 'manual', time: new Date().toISOString(), user: actor(req), payload },
          traceHeaders: traceHeadersOf(req.headers),
        });
      if (key !== null) {
        // One execution per key and job: the key is claimed in the transaction that queues it.
        const scope = { jobId: job.id, source: 'manual' as const, key, fingerprint: fingerprint(payload) };
        const r = await db.transaction((tx) => triggerOnce(tx, scope, ctx.config.idempotencyWindowSeconds, () => enqueue(tx)));
        req.auditDetails = { execution_id: r.executionId, idempotency_key: key, ...(r.replayed ? { replayed: true } : {}) };
        if (r.replayed) reply.header(REPLAYED_HEADER, 'true');
        return reply.status(202).send({ execution_id: r.executionId, job_id: job.id, status: r.status });
      }
      const executionId = await enqueue(db);
      if (!executionId) throw new VecronError('conflict', 'the execution could not be queued');
      req.auditDetails = { execution_id: executionId };
      return reply.status(202).send({ execution_id: executionId, job_id: job.id, status: 'queued' });
    },
  );

  app.get(
    '/api/v1/jobs/:id/executions',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['executions'],
        summary: "List a job's executions",
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...pageQuery, status: { type: 'string', description: `Comma-separated: ${EXECUTION_STATUSES.join(', ')}` } },
        },
      },
    },
    async (req) => {
      const id = (req.params as { id: string }).id;
      await getJob(db, id);
      const q = req.query as { page: number; limit: number; status?: string };
      const { items, total } = await listExecutions(db, { ...q, jobId: id, statuses: splitStatuses(q.status) });
      return page(items, total, q);
    },
  );
}
