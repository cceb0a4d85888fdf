import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.ts';
import { findJob } from '../../jobs/repository.ts';
import { notFound } from '../../errors.ts';
import { secretKeyFor } from '../../secrets/crypto.ts';
import { checkVariableName, deleteVariable, getVariable, listVariables, setVariable } from '../../variables/repository.ts';

const variableBody = {
  type: 'object',
  required: ['value'],
  additionalProperties: false,
  properties: {
    value: { description: 'Any JSON value; a string for secret variables.' },
    secret: {
      type: 'boolean',
      description: 'Encrypt the value at rest and show it as `***` everywhere. Omitted: keeps the current setting (false for a new variable).',
    },
    description: { type: ['string', 'null'], maxLength: 10_000 },
  },
} as const;

const nameParams = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } as const;
const jobNameParams = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' } },
  required: ['id', 'name'],
} as const;

/**
 * Global variables (`/api/v1/variables`) and per-job variables (`/api/v1/jobs/:id/variables`).
 * Secret values are write-only: every answer shows them as `***`, and the audit log never records
 * values.
 */
export async function variablesRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db } = ctx;
  const actor = (req: FastifyRequest) => req.principal?.name ?? null;

  /** The job id of a job-scoped route (404 when the job does not exist), null for global routes. */
  async function scopeOf(req: FastifyRequest): Promise<string | null> {
    const id = (req.params as { id?: string }).id;
    if (id === undefined) return null;
    const job = await findJob(db, id);
    if (!job) throw notFound('job', id);
    return job.id;
  }

  function auditVariable(req: FastifyRequest, jobId: string | null, name: string, extra: Record<string, unknown> = {}): void {
    req.auditResourceId = name;
    req.auditDetails = { scope: jobId === null ? 'global' : 'job', ...(jobId === null ? {} : { job_id: jobId }), ...extra };
  }

  for (const scope of ['global', 'job'] as const) {
    const base = scope === 'global' ? '/api/v1/variables' : '/api/v1/jobs/:id/variables';
    const tags = ['variables'];
    const what = scope === 'global' ? 'global variable' : "job's variable";

    app.get(
      base,
      {
        config: { role: 'viewer' },
        schema: {
          tags,
          summary: scope === 'global' ? 'List global variables' : "List a job's variables",
          ...(scope === 'job' ? { params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } } : {}),
        },
      },
      async (req) => {
        const jobId = await scopeOf(req);
        const items = await listVariables(db, jobId);
        return { items, total: items.length };
      },
    );

    app.get(
      `${base}/:name`,
      {
        config: { role: 'viewer' },
        schema: { tags, summary: `Get a ${what}`, params: scope === 'global' ? nameParams : jobNameParams },
      },
      async (req) => {
        const jobId = await scopeOf(req);
        const { name } = req.params as { name: string };
        checkVariableName(name);
        const v = await getVariable(db, jobId, name);
        if (!v) throw notFound('variable', name);
        return v;
      },
    );

    app.put(
      `${base}/:name`,
      {
        config: { role: 'operator', audit: { action: 'variable.set', resource: 'variable' } },
        schema: {
          tags,
          summary: `Create or replace a ${what}`,
          description: 'Secret values must be strings of at least 4 characters; they are encrypted at rest and never returned.',
          params: scope === 'global' ? nameParams : jobNameParams,
          body: variableBody,
        },
      },
      async (req, reply) => {
        const { name, id } = req.params as { name: string; id?: string };
        auditVariable(req, id ?? null, name);
        const jobId = await scopeOf(req);
        checkVariableName(name);
        const body = req.body as { value: unknown; secret?: boolean; description?: string | null };
        const { variable, created } = await setVariable(db, secretKeyFor(ctx.config), {
          jobId,
          name,
          value: body.value,
          secret: body.secret,
          description: body.description,
          actor: actor(req),
        });
        auditVariable(req, jobId, name, { secret: variable.secret, created });
        return reply.status(created ? 201 : 200).send(variable);
      },
    );

    app.delete(
      `${base}/:name`,
      {
        config: { role: 'operator', audit: { action: 'variable.delete', resource: 'variable' } },
        schema: { tags, summary: `Delete a ${what}`, params: scope === 'global' ? nameParams : jobNameParams },
      },
      async (req, reply) => {
        const { name, id } = req.params as { name: string; id?: string };
        auditVariable(req, id ?? null, name);
        const jobId = await scopeOf(req);
        checkVariableName(name);
        if (!(await deleteVariable(db, jobId, name))) throw notFound('variable', name);
        return reply.status(204).send();
      },
    );
  }
}
