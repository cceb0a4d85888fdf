import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { idParams } from '../schemas.ts';
import { getClusterPause, getJobPause, listPausedJobs, setClusterPause, setJobPause } from '../../maintenance/state.ts';

const pauseState = {
  type: 'object',
  required: ['paused'],
  additionalProperties: true,
  properties: {
    paused: { type: 'boolean' },
    reason: { type: ['string', 'null'] },
    paused_at: { type: ['string', 'null'], format: 'date-time' },
    paused_by: { type: ['string', 'null'] },
    resumed_at: { type: ['string', 'null'], format: 'date-time' },
    resumed_by: { type: ['string', 'null'] },
  },
};
const jobPauseState = {
  ...pauseState,
  required: ['job_id', 'paused'],
  properties: { ...pauseState.properties, job_id: { type: 'string' }, job_name: { type: 'string' } },
};
const maintenanceAnswer = {
  ...pauseState,
  required: ['paused', 'paused_jobs'],
  properties: { ...pauseState.properties, paused_jobs: { type: 'array', items: jobPauseState } },
};
const reason = { type: ['string', 'null'], maxLength: 1000, description: 'Why (shown in the dashboard banner and kept in the audit log)' };

/**
 * Maintenance mode: pause firing cluster-wide or per job, and resume (the misfire policy applies
 * to the fire times missed meanwhile). Manual triggers stay allowed while paused (an operator asks
 * for that run on purpose); webhooks are refused with 503 and Retry-After (src/api/routes/webhooks.ts).
 */
export async function maintenanceRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db } = ctx;
  const actor = (req: { principal: { name: string } | null }) => req.principal?.name ?? 'unknown';

  app.get(
    '/api/v1/maintenance',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['maintenance'],
        summary: 'Maintenance mode: whether firing is paused cluster-wide, and the jobs paused one by one',
        response: { 200: maintenanceAnswer },
      },
    },
    async () => ({ ...(await getClusterPause(db)), paused_jobs: await listPausedJobs(db) }),
  );

  app.post(
    '/api/v1/maintenance',
    {
      config: { role: 'admin', audit: { action: 'maintenance.set', resource: 'maintenance' } },
      schema: {
        tags: ['maintenance'],
        summary: 'Pause (`paused: true`) or resume (`false`) all firing, cluster-wide',
        description:
          'Every scheduler of the cluster stops firing once the answer has come (executions already queued still run). ' +
          "On resume, each job's misfire_policy decides what happens to the fire times it missed during the pause: fire_once runs one execution, skip records one skipped execution.",
        body: {
          type: 'object',
          required: ['paused'],
          additionalProperties: false,
          properties: { paused: { type: 'boolean' }, reason },
        },
        response: { 200: maintenanceAnswer },
      },
    },
    async (req) => {
      const body = req.body as { paused: boolean; reason?: string | null };
      const { state, changed } = await setClusterPause(db, body.paused, actor(req), body.reason ?? null);
      req.auditResourceId = 'cluster';
      req.auditDetails = { paused: body.paused, reason: body.reason ?? null, changed };
      (body.paused ? ctx.logger.warn : ctx.logger.info).call(
        ctx.logger,
        { by: actor(req), reason: body.reason ?? null, changed },
        body.paused ? 'maintenance mode: firing paused cluster-wide' : 'maintenance mode: firing resumed cluster-wide',
      );
      return { ...state, paused_jobs: await listPausedJobs(db) };
    },
  );

  app.get(
    '/api/v1/jobs/:id/pause',
    {
      config: { role: 'viewer' },
      schema: { tags: ['maintenance'], summary: "A job's pause state", params: idParams, response: { 200: jobPauseState } },
    },
    async (req) => getJobPause(db, (req.params as { id: string }).id),
  );

  for (const verb of ['pause', 'resume'] as const) {
    app.post(
      `/api/v1/jobs/:id/${verb}`,
      {
        config: { role: 'operator', audit: { action: `job.${verb}`, resource: 'job' } },
        schema: {
          tags: ['maintenance'],
          summary:
            verb === 'pause'
              ? "Pause a job's firing (its schedule and webhook)"
              : "Resume a paused job's firing; its misfire_policy applies to the fire times it missed",
          params: idParams,
          body: { type: ['object', 'null'], additionalProperties: false, properties: verb === 'pause' ? { reason } : {} },
          response: { 200: jobPauseState },
        },
      },
      async (req) => {
        const id = (req.params as { id: string }).id;
        const why = (req.body as { reason?: string | null } | null)?.reason ?? null;
        const { state, changed } = await setJobPause(db, id, verb === 'pause', actor(req), why);
        req.auditDetails = { name: state.job_name, ...(verb === 'pause' ? { reason: why } : {}), changed };
        ctx.logger.info({ job: state.job_name, by: actor(req), reason: why, changed }, verb === 'pause' ? 'job firing paused' : 'job firing resumed');
        return state;
      },
    );
  }
}
