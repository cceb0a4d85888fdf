/**
 * The run records of WASM steps (issue 20, docs/replay.md): a step's record for `wasm-cli replay`,
 * the last records of a job's step for a shadow test, and a module's own recording setting.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { VecronError, notFound } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import { getRunRecord, recentRunRecords, recordedSteps, setModuleRecordMode } from '../../modules/run-records.ts';
import { RECORD_MODES, type RecordMode } from '../../wasm/replay/types.ts';

const record = { type: 'object', required: ['version', 'module', 'function'], additionalProperties: true, properties: { version: { type: 'integer' } } };

export async function wasmRecordRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db, blobs } = ctx;

  app.get(
    '/api/v1/executions/:id/steps/:stepId/wasm-record',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['wasm modules'],
        summary: "A WASM step run's complete record (for replay)",
        description:
          'The module hash, function, limits, input, every host call in order, every WASI input (clock readings, random bytes, stdin), ' +
          "the output, fuel, memory and error of the step's run (the latest attempt unless `attempt` is given), masked; `replayable` " +
          'says whether `wasm-cli replay` can reproduce it and `not_replayable_reason` why not (docs/replay.md). 404 when the run kept no record.',
        params: {
          type: 'object',
          required: ['id', 'stepId'],
          properties: { id: { type: 'string' }, stepId: { type: 'string', minLength: 1, maxLength: 200 } },
        },
        querystring: { type: 'object', additionalProperties: false, properties: { attempt: { type: 'integer', minimum: 1, maximum: 1000 } } },
        response: { 200: record },
      },
    },
    async (req) => {
      const { id, stepId } = req.params as { id: string; stepId: string };
      const { attempt } = req.query as { attempt?: number };
      if (!isUuid(id)) throw notFound('execution', id);
      const exists = await db.query('SELECT 1 FROM executions WHERE id = $1', [id]);
      if (!exists.rows.length) throw notFound('execution', id);
      const rec = await getRunRecord(db, blobs, { executionId: id, stepId, ...(attempt !== undefined ? { attempt } : {}) });
      if (!rec) {
        const steps = await recordedSteps(db, id);
        throw new VecronError(
          'not_found',
          `execution ${id} has no run record for step '${stepId}'${attempt !== undefined ? ` attempt ${attempt}` : ''} ` +
            `(${steps.length ? `recorded steps: ${steps.join(', ')}` : 'no step of it was recorded: recording off, not a wasm step, or expired'})`,
        );
      }
      return rec;
    },
  );

  app.get(
    '/api/v1/jobs/:id/steps/:stepId/wasm-records',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['wasm modules'],
        summary: "The last run records of a job's WASM step, newest first (for a shadow test)",
        params: {
          type: 'object',
          required: ['id', 'stepId'],
          properties: { id: { type: 'string' }, stepId: { type: 'string', minLength: 1, maxLength: 200 } },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 20 },
            replayable: { type: 'boolean', description: 'only records a replay can reproduce' },
          },
        },
        response: { 200: { type: 'object', required: ['items'], additionalProperties: true, properties: { items: { type: 'array', items: record } } } },
      },
    },
    async (req) => {
      const { id, stepId } = req.params as { id: string; stepId: string };
      const { limit, replayable } = req.query as { limit: number; replayable?: boolean };
      if (!isUuid(id)) throw notFound('job', id);
      const exists = await db.query('SELECT 1 FROM jobs WHERE id = $1', [id]);
      if (!exists.rows.length) throw notFound('job', id);
      return { items: await recentRunRecords(db, blobs, { jobId: id, stepId, limit, replayableOnly: replayable === true }) };
    },
  );

  app.put(
    '/api/v1/wasm/modules/:id/record-mode',
    {
      config: { role: 'admin', audit: { action: 'wasm.module.record_mode', resource: 'wasm_module' } },
      schema: {
        tags: ['wasm modules'],
        summary: "Set a module's recording of its runs",
        description:
          "`all`, `failed` (only runs ending in an error) or `off`; `null` follows the server (VECRON_WASM_RECORD). The strictest of the server's, the module's and the step's `record` applies.",
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
        body: {
          type: 'object',
          required: ['record_mode'],
          additionalProperties: false,
          properties: { record_mode: { type: ['string', 'null'], enum: [...RECORD_MODES, null] } },
        },
        response: {
          200: {
            type: 'object',
            required: ['module_id', 'record_mode'],
            properties: { module_id: { type: 'string' }, record_mode: { type: ['string', 'null'] } },
          },
        },
      },
    },
    async (req) => {
      const m = await ctx.modules.resolve((req.params as { id: string }).id);
      const mode = (req.body as { record_mode: RecordMode | null }).record_mode;
      req.auditResourceId = m.id;
      req.auditDetails = { name: m.name, version: m.version, record_mode: mode };
      await setModuleRecordMode(db, m.id, mode);
      return { module_id: m.id, record_mode: mode };
    },
  );
}
