/**
 * The wasm step's part of replay (issue 20): which runs keep their complete record (the strictest
 * of the server's VECRON_WASM_RECORD, the module's record_mode and the step's `record`), and keeping
 * one, masked with the run's secrets, in the same statement as the run's log row (one round trip).
 * A record that cannot be stored is logged, never a failure of the step: the run itself happened.
 */
import type { StepRunContext } from '../executor.ts';
import type { ModuleRow } from '../../modules/repository.ts';
import { insertWasmLog, type WasmLogInput } from '../../modules/execution-logs.ts';
import { prepareRunRecord, strictestMode, type RecordRow } from '../../modules/run-records.ts';
import { writeRunRecord } from '../../wasm/replay/record.ts';
import type { RecordMode } from '../../wasm/replay/types.ts';
import type { WasmRunResult } from '../../wasm/runtime/types.ts';

export function recordModeOf(ctx: StepRunContext, module: ModuleRow, stepMode: RecordMode | undefined): RecordMode {
  return strictestMode(ctx.services.config.wasmRecord, module.record_mode, stepMode);
}

const warn = (ctx: StepRunContext, module: ModuleRow, err: unknown) =>
  ctx.logger.warn({ err, module: `${module.name}@${module.version}` }, 'could not keep the run record of a wasm step (the run is not replayable)');

/** The run's record ready for its row (written from the run's texts; a large one's blob put), or null when this run keeps none. */
async function recordRowOf(
  ctx: StepRunContext,
  o: { mode: RecordMode; failed: boolean; module: ModuleRow; result: WasmRunResult; recordedAt: string },
): Promise<RecordRow | null> {
  if (o.mode === 'off' || (o.mode === 'failed' && !o.failed) || !o.result.record) return null;
  const { config, blobs } = ctx.services;
  try {
    const record = writeRunRecord(o.result, {
      module: { id: o.module.id, name: o.module.name, version: o.module.version },
      executionId: ctx.executionId,
      jobId: ctx.jobId,
      stepId: ctx.stepId,
      attempt: ctx.attempt,
      recordedAt: o.recordedAt,
      maxBytes: config.wasmRecordMaxBytes,
      ...(ctx.mask ? { mask: ctx.mask } : {}),
    });
    if (!record) return null;
    return await prepareRunRecord(blobs, {
      record,
      executionId: ctx.executionId,
      jobId: ctx.jobId,
      stepId: ctx.stepId,
      attempt: ctx.attempt,
      moduleId: o.module.id,
      inlineBytes: config.wasmRecordInlineBytes,
      retentionDays: config.wasmRecordRetentionDays,
    });
  } catch (err) {
    warn(ctx, o.module, err);
    return null;
  }
}

/**
 * Inserts the run's log row and, when this run keeps one, its record with it; returns the log
 * row's id. Should the record's part fail, the log row is inserted alone (and the failure logged).
 */
export async function insertLogAndRecord(
  ctx: StepRunContext,
  log: WasmLogInput,
  o: { mode: RecordMode; failed: boolean; module: ModuleRow; result: WasmRunResult; recordedAt: string },
): Promise<string> {
  const row = await recordRowOf(ctx, o);
  if (row === null) return insertWasmLog(ctx.services.db, log);
  try {
    return await insertWasmLog(ctx.services.db, log, row);
  } catch (err) {
    warn(ctx, o.module, err);
    if (row.blobKey !== null) await ctx.services.blobs.delete(row.blobKey).catch(() => {}); // no row points at it
    return insertWasmLog(ctx.services.db, log);
  }
}
