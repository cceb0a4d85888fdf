/**
 * Replays on the server (issue 20, docs/replay.md): one recorded run again (the dashboard's
 * "replay" button), and the shadow test of a module version against a step's last N recorded runs.
 *
 * Both run in the process's WASM pool with the recorded runs' limits, one replay at a time, within
 * VECRON_WASM_SHADOW_TIMEOUT_SECONDS; at most VECRON_WASM_SHADOW_CONCURRENCY of them at once (one
 * more is 429), and a shadow test replays at most VECRON_WASM_SHADOW_MAX_RUNS runs. Nothing a replay
 * does reaches the outside: every host call is answered from the record.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.ts';
import { VecronError, notFound, validationFailed } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import { findJob, listJobs, type JobRecord } from '../../jobs/repository.ts';
import { idParams } from '../schemas.ts';
import { createGate } from '../../wasm/replay/gate.ts';
import { shadowTest } from '../../wasm/replay/shadow.ts';
import { recentRunRefs } from '../../wasm/replay/run-refs.ts';
import { replayStoredRun } from '../../wasm/replay/server-replay.ts';
import { getRunRecord } from '../../modules/run-records.ts';
import type { WasmRuntime } from '../../wasm/runtime/index.ts';

const shadowBody = (maxRuns: number) =>
  ({
    type: 'object',
    required: ['job_id', 'step_id'],
    additionalProperties: false,
    properties: {
      job_id: { type: 'string', minLength: 1, maxLength: 200, description: 'The job whose recorded runs are replayed: its id or its name.' },
      step_id: { type: 'string', minLength: 1, maxLength: 200, description: 'The wasm step of that job.' },
      count: {
        type: 'integer',
        minimum: 1,
        maximum: maxRuns,
        default: Math.min(20, maxRuns),
        description: `The last N recorded runs (at most ${maxRuns}, VECRON_WASM_SHADOW_MAX_RUNS).`,
      },
    },
  }) as const;

const replayBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { attempt: { type: 'integer', minimum: 1, maximum: 1000, description: 'Which attempt (default the latest recorded one).' } },
} as const;

/** A job by id or by name; a missing one is a problem of the body's `job_id`. */
async function jobOf(ctx: ApiContext, ref: string): Promise<JobRecord> {
  const byId = isUuid(ref) ? await findJob(ctx.db, ref) : null;
  if (byId) return byId;
  const { items } = await listJobs(ctx.db, { page: 1, limit: 1, name: ref });
  if (items[0]) return items[0];
  throw validationFailed([{ path: 'job_id', message: `no job with the id or name '${ref}'` }], 'the shadow test');
}

function wasmStepOf(job: JobRecord, stepId: string): void {
  const step = job.steps.find((s) => s.id === stepId);
  if (!step) {
    throw validationFailed(
      [{ path: 'step_id', message: `job '${job.name}' has no step '${stepId}' (its steps: ${job.steps.map((s) => s.id).join(', ') || 'none'})` }],
      'the shadow test',
    );
  }
  if (step.type !== 'wasm') {
    throw validationFailed([{ path: 'step_id', message: `step '${stepId}' of job '${job.name}' is a ${step.type} step, not a wasm step` }], 'the shadow test');
  }
}

/** Aborted when the client goes away before the answer: the replays stop with it. */
function abortOnHangUp(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort(new Error('the client went away'));
  });
  return ac.signal;
}

export async function wasmReplayRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const gate = createGate(ctx.config.wasmShadowConcurrency);
  const budgetMs = ctx.config.wasmShadowTimeoutSeconds * 1000;
  const runtime = (): WasmRuntime => {
    if (!ctx.wasm) throw new VecronError('unavailable', 'this process has no WASM runtime: replays run on a process with the api role started by vecron');
    return ctx.wasm();
  };
  const enter = (what: string): (() => void) => {
    const release = gate.enter();
    if (!release) {
      throw new VecronError(
        'rate_limited',
        `${what}: ${ctx.config.wasmShadowConcurrency} replay(s) or shadow test(s) already run on this server (VECRON_WASM_SHADOW_CONCURRENCY); try again when they are done`,
      );
    }
    return release;
  };

  app.post(
    '/api/v1/wasm/modules/:id/shadow',
    {
      config: { role: 'operator', audit: { action: 'wasm.module.shadow', resource: 'wasm_module' } },
      schema: {
        tags: ['wasm modules'],
        summary: 'Shadow test: replay the last N recorded runs of a job step with this module version',
        description:
          'Replays the last `count` recorded runs of the wasm step `step_id` of job `job_id` with this module (`:id`: id, `name@version` or `name@latest`), ' +
          'every host call and WASI read answered from the records (a call the new version makes that a record does not hold is a divergence, never sent), ' +
          'and reports per run and in total: `same_output`, `different_output` (with a JSON diff), `new_error`, `diverged` (with the first divergence), ' +
          '`not_replayable` (with the reason), and the fuel and duration change. Runs one replay at a time in the WASM pool, within ' +
          'VECRON_WASM_SHADOW_TIMEOUT_SECONDS (runs not reached: `not_run`, and `incomplete` is set). See docs/replay.md.',
        params: idParams,
        body: shadowBody(ctx.config.wasmShadowMaxRuns),
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const m = await ctx.modules.resolve((req.params as { id: string }).id);
      req.auditResourceId = m.id;
      const body = req.body as { job_id: string; step_id: string; count: number };
      const job = await jobOf(ctx, body.job_id);
      wasmStepOf(job, body.step_id);
      req.auditDetails = { name: m.name, version: m.version, job_id: job.id, step_id: body.step_id, count: body.count };
      const release = enter('the shadow test was not started');
      try {
        const rt = runtime();
        const { bytes } = await ctx.modules.download(m.id);
        const refs = await recentRunRefs(ctx.db, { jobId: job.id, stepId: body.step_id, limit: body.count });
        const sources = refs.map((r) => ({
          execution_id: r.execution_id,
          attempt: r.attempt,
          load: () => getRunRecord(ctx.db, ctx.blobs, { executionId: r.execution_id, stepId: body.step_id, attempt: r.attempt }),
        }));
        const report = await shadowTest({
          runtime: rt,
          bytes,
          module: { id: m.id, name: m.name, version: m.version, hash: m.hash },
          job_id: job.id,
          step_id: body.step_id,
          requested: body.count,
          sources,
          budgetMs,
          signal: abortOnHangUp(reply),
        });
        req.auditDetails = { ...(req.auditDetails as object), totals: report.totals };
        return report;
      } finally {
        release();
      }
    },
  );

  app.post(
    '/api/v1/executions/:id/steps/:stepId/replay',
    {
      config: { role: 'operator', audit: { action: 'execution.step.replay', resource: 'execution' } },
      schema: {
        tags: ['executions'],
        summary: "Replay a wasm step's recorded run on the server",
        description:
          'Re-runs the recorded run of the wasm step (the latest attempt unless `attempt` is given) with the module it ran (hash-checked), every host call ' +
          'and WASI read answered from the record, and answers whether it `reproduced` exactly (same output, fuel and host calls) or `diverged` (the first ' +
          'divergence), or why it `could_not_replay` (no record, a cut or masked record, the module gone, ...). Runs in the WASM pool within ' +
          'VECRON_WASM_SHADOW_TIMEOUT_SECONDS. See docs/replay.md.',
        params: {
          type: 'object',
          required: ['id', 'stepId'],
          properties: { id: { type: 'string' }, stepId: { type: 'string', minLength: 1, maxLength: 200 } },
        },
        body: replayBody,
      },
    },
    async (req, reply) => {
      const { id, stepId } = req.params as { id: string; stepId: string };
      const attempt = (req.body as { attempt?: number } | null)?.attempt;
      if (!isUuid(id)) throw notFound('execution', id);
      const exists = await ctx.db.query('SELECT 1 FROM executions WHERE id = $1', [id]);
      if (!exists.rows.length) throw notFound('execution', id);
      const release = enter('the replay was not started');
      try {
        return await replayStoredRun({
          db: ctx.db,
          blobs: ctx.blobs,
          modules: ctx.modules,
          runtime: runtime(),
          executionId: id,
          stepId,
          attempt,
          budgetMs,
          signal: abortOnHangUp(reply),
        });
      } finally {
        release();
      }
    },
  );
}
