/**
 * The HostSession of one wasm step (issue 15): the module's permissions as stored now (an admin's
 * change applies to the next run), the job's blob area, the run's variables (secrets decrypted),
 * the host-call limits of the config, the step's deadline, and a denial reporter (audit, metric,
 * log) that the step waits for briefly at its end.
 */
import type { StepRunContext } from '../executor.ts';
import type { ModuleRow } from '../../modules/repository.ts';
import { listPermissions } from '../../modules/repository.ts';
import { createDenialReporter, type DenialReporter } from '../../wasm/host/denials.ts';
import type { HostSession } from '../../wasm/host/types.ts';

export async function hostSessionFor(ctx: StepRunContext, module: ModuleRow, deadline: number): Promise<{ session: HostSession; denials: DenialReporter }> {
  const { db, blobs, config, metrics } = ctx.services;
  const permissions = (await listPermissions(db, module.id)).map((p) => ({ type: p.type, resource_pattern: p.resource_pattern }));
  const ref = { id: module.id, name: module.name, version: module.version };
  const denials = createDenialReporter({
    db,
    metrics,
    logger: ctx.logger,
    module: ref,
    jobId: ctx.jobId,
    executionId: ctx.executionId,
    stepId: ctx.stepId,
    mask: ctx.mask,
  });
  return {
    denials,
    session: {
      jobId: ctx.jobId,
      executionId: ctx.executionId,
      stepId: ctx.stepId,
      module: ref,
      permissions,
      blobs,
      variable: (name) => ctx.services.variable(name),
      limits: {
        maxRequestBytes: config.wasmHostMaxRequestBytes,
        maxResponseBytes: config.wasmHostMaxResponseBytes,
        maxRows: config.wasmHostMaxRows,
        maxCallMs: config.wasmHostMaxCallMs,
      },
      deadline,
      onDenied: denials.onDenied,
      logger: ctx.logger,
    },
  };
}

/** Waits for the denials' audit writes, at most `ms` (a slow database must not hold the step). */
export async function settleDenials(denials: DenialReporter, ms = 1000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([denials.settled(), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
