/**
 * The wasm step's part of replay (issue 20): which runs keep their complete record (the strictest
 * of the server's VECRON_WASM_RECORD, the module's record_mode and the step's `record`), and keeping
 * one, masked with the run's secrets, next to the run's log row. A record that cannot be stored is
 * logged, never a failure of the step: the run itself happened.
 */
import type { StepRunContext } from '../executor.ts';
import type { ModuleRow } from '../../modules/repository.ts';
import { saveRunRecord, strictestMode } from '../../modules/run-records.ts';
import { buildRunRecord } from '../../wasm/replay/record.ts';
import type { RecordMode } from '../../wasm/replay/types.ts';
import type { WasmRunResult } from '../../wasm/runtime/types.ts';

export function recordModeOf(ctx: StepRunContext, module: ModuleRow, stepMode: RecordMode | undefined): RecordMode {
  return strictestMode(ctx.services.config.wasmRecord, module.record_mode, stepMode);
}

export async function keepRecord(
  ctx: StepRunContext,
  o: { mode: RecordMode; failed: boolean; module: ModuleRow; result: WasmRunResult; wasmLogId: string; recordedAt: string },
): Promise<void> {
  if (o.mode === 'off' || (o.mode === 'failed' && !o.failed) || !o.result.record) return;
  const { config, db, blobs } = ctx.services;
  try {
    const record = buildRunRecord(o.result, {
      module: { id: o.module.id, name: o.module.name, version: o.module.version },
      executionId: ctx.executionId,
      jobId: ctx.jobId,
      stepId: ctx.stepId,
      attempt: ctx.attempt,
      recordedAt: o.recordedAt,
      maxBytes: config.wasmRecordMaxBytes,
      ...(ctx.mask ? { mask: ctx.mask } : {}),
    });
    if (!record) return;
    await saveRunRecord(db, blobs, {
      record,
      wasmLogId: o.wasmLogId,
      executionId: ctx.executionId,
      jobId: ctx.jobId,
      stepId: ctx.stepId,
      attempt: ctx.attempt,
      moduleId: o.module.id,
      inlineBytes: config.wasmRecordInlineBytes,
      retentionDays: config.wasmRecordRetentionDays,
    });
  } catch (err) {
    ctx.logger.warn({ err, module: `${o.module.name}@${o.module.version}` }, 'could not keep the run record of a wasm step (the run is not replayable)');
  }
}
