import type { FastifyInstance } from 'fastify';
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
          'Queues one execution; the optional body becomes `trigger.payload` in the job context. Works for disabled jobs too (manual runs ignore the schedule switch).',
        params: idParams,
        body: { type: ['object', 'null'], additionalProperties: true },
      },
    },
    async (req, reply) => {
      const job = await getJob(db, (req.params as { id: string }).id);
      const executionId = await enqueueExecution(db, job, {
        trigger: { type: 'manual', time: new Date().toISOString(), user: actor(req), payload: req.body ?? {} },
        traceHeaders: traceHeadersOf(req.headers),
      });
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
