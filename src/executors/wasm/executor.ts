/**
 * The wasm step: loads the module from the registry (hash checked on every load), runs it in the
 * sandbox runtime with the step's limits, logs the run (fuel, memory, duration, error), and turns
 * the module's answer into the step's output, its set_context writes and its verdict.
 */
import type { StepExecute, StepRunContext } from '../executor.ts';
import type { WasmStepConfig } from './definition.ts';
import { StepError } from '../../engine/step-error.ts';
import { isVecronError } from '../../errors.ts';
import type { LoadedModule } from '../../modules/registry.ts';
import type { WasmRunResult } from '../../wasm/runtime/index.ts';
import { createHostDispatch } from '../../wasm/host/index.ts';
import { hostSessionFor, settleDenials } from './host-session.ts';
import { verdictOf } from './verdict.ts';
import { spansFromRecord } from '../../tracing/host-calls.ts';
import { insertLogAndRecord, recordModeOf } from './keep-record.ts';

async function load(config: WasmStepConfig, ctx: StepRunContext): Promise<LoadedModule> {
  const modules = ctx.services.modules;
  if (!modules) throw new StepError('step_type_unavailable', 'this process has no module registry: wasm steps cannot run here', { retryable: false });
  try {
    return await modules.loadForRun(config.module_id, { execution_id: ctx.executionId, step_id: ctx.stepId, job_id: ctx.jobId });
  } catch (err) {
    if (isVecronError(err) && err.code === 'not_found') {
      throw new StepError('module_not_found', `${err.message} (step config module_id '${config.module_id}')`, { retryable: false });
    }
    if (isVecronError(err) && err.code === 'integrity_check_failed') throw new StepError('integrity_check_failed', err.message, { retryable: false });
    throw new StepError('module_unavailable', `could not load module '${config.module_id}': ${(err as Error).message}`, { cause: err });
  }
}

export const execute: StepExecute<WasmStepConfig> = async (config, ctx) => {
  const { module, bytes } = await load(config, ctx);
  const runtime = ctx.services.wasm?.();
  if (!runtime) throw new StepError('step_type_unavailable', 'this process has no WASM runtime', { retryable: false });
  const timeoutMs = Math.max(1, Math.min(config.timeout_seconds * 1000, ctx.deadline - Date.now()));
  // The privileged host functions of this run (issue 15), checked against the module's permissions.
  // Their deadline is the step's: the run's own timeout (counted by the runtime from the guest's
  // start, after a worker and the compiled module are ready) aborts a call through the run's signal.
  const host = await hostSessionFor(ctx, module, ctx.deadline);
  // The complete record, for replay (issue 20): kept in the worker unless recording is off.
  const recordMode = recordModeOf(ctx, module, config.record);
  const recordedAt = new Date().toISOString();
  // Secrets never reach the guest (docs/security.md): the module sees every secret variable, and any
  // copy of one elsewhere in the context or in a templated input, as `***`. A module that needs a
  // secret names it (crypto `key_secret`, a `datasource`) and the host uses it on the module's behalf.
  const guestContext = (ctx.mask ? ctx.mask(ctx.context) : ctx.context) as Record<string, unknown>;
  const guestInput = config.input !== undefined ? (ctx.mask ? ctx.mask(config.input) : config.input) : guestContext;
  let result: WasmRunResult;
  try {
    result = await runtime.run({
      bytes,
      hash: module.hash, // loadForRun has just hashed these bytes
      functionName: config.function_name,
      input: guestInput,
      context: guestContext,
      limits: { fuel: config.fuel_limit, timeoutMs, memoryMb: config.memory_limit_mb, tableLimit: config.table_limit },
      env: { JOB_ID: ctx.jobId, EXECUTION_ID: ctx.executionId },
      // A cancelled execution, a lost lease or a shutdown stops the module, not just the wait for it.
      signal: ctx.signal,
      host: createHostDispatch(host.session),
      hostLimits: { maxRequestBytes: host.session.limits.maxRequestBytes, maxResponseBytes: host.session.limits.maxResponseBytes },
      ...(recordMode !== 'off' ? { record: { maxBytes: ctx.services.config.wasmRecordMaxBytes } } : {}),
    });
  } catch (err) {
    // Refused before it ran (e.g. the entry function's form): a problem of the module, not of the moment.
    const e = err as { code?: string; message: string };
    result = {
      ok: false,
      error: { code: (e.code ?? 'invalid_module') as never, message: e.message },
      fuelConsumed: 0,
      initFuelConsumed: 0,
      memoryPeakBytes: 0,
      durationMs: 0,
      logs: [],
      contextWrites: {},
      stdout: '',
      stderr: '',
      exitCode: null,
      hostCalls: [],
      hostCallsDropped: 0,
    };
  }
  await settleDenials(host.denials);
  // The calls the worker served itself become spans now, from the record (src/tracing/host-calls.ts).
  spansFromRecord(result.hostCalls);
  // The module's log lines and its error are stored/logged here, outside the engine's masking: mask them.
  const mask = (v: unknown): any => (ctx.mask ? ctx.mask(v) : v);
  for (const l of result.logs) ctx.logger[l.level === 'debug' ? 'debug' : l.level]({ module: `${module.name}@${module.version}` }, mask(l.message));

  const verdict = verdictOf(result);
  if (verdict.error) verdict.error = mask(verdict.error);
  // The run's log row, and its complete record in the same statement (keep-record.ts).
  await insertLogAndRecord(
    ctx,
    {
      executionId: ctx.executionId,
      stepId: ctx.stepId,
      attempt: ctx.attempt,
      module,
      functionName: config.function_name,
      result,
      error: verdict.error,
      logs: mask(result.logs),
      hostCalls: mask(result.hostCalls),
    },
    { mode: recordMode, failed: verdict.error !== null && verdict.error !== undefined, module, result, recordedAt },
  );
  if (verdict.error) {
    throw new StepError(verdict.error.code, verdict.error.message, {
      retryable: verdict.retryable,
      details: {
        module: `${module.name}@${module.version}`,
        module_id: module.id,
        ...(verdict.error.stack ? { stack: verdict.error.stack } : {}),
        ...(verdict.error.errors ? { errors: verdict.error.errors } : {}),
        fuel_consumed: result.fuelConsumed,
        memory_used_bytes: result.memoryPeakBytes,
        ...(result.stderr ? { stderr: result.stderr.slice(0, 4000) } : {}),
      },
    });
  }
  if (Object.keys(result.contextWrites).length) ctx.setContext?.(result.contextWrites);
  return (result as { output: unknown }).output;
};
