/**
 * What a refused host call leaves behind besides the guest's `permission_denied` answer (and the
 * run's call record, which the runtime keeps): a warning in the step log, the metric
 * `vecron_wasm_host_denied_total{function,permission}`, and an audit row `wasm.host.denied`
 * aggregated per module and minute (`details.count`, `details.last` = the latest denial).
 *
 * The audit write is fire and forget: a slow or failing database never stalls the call or fails the
 * run; a failed write is logged. `settled()` lets the executor (and tests) wait for the writes.
 */
import type { Queryable } from '../../db/database.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics.ts';
import { writeAggregatedAudit } from '../../audit/audit-log.ts';
import type { HostSession } from './types.ts';

export const DENIED_AUDIT_ACTION = 'wasm.host.denied';

export interface DenialReporterDeps {
  db: Queryable;
  metrics?: Metrics;
  logger: Logger;
  module: HostSession['module'];
  jobId: string;
  executionId: string;
  stepId: string;
  /** Masks secrets in what is stored (a resource may hold a templated value). */
  mask?: (v: unknown) => unknown;
}

export interface DenialReporter {
  onDenied: HostSession['onDenied'];
  /** Resolves when every audit write started so far has finished (or failed and been logged). */
  settled(): Promise<void>;
}

export function createDenialReporter(deps: DenialReporterDeps): DenialReporter {
  const pending = new Set<Promise<void>>();
  const mask = deps.mask ?? ((v: unknown) => v);
  return {
    onDenied(d) {
      const moduleRef = `${deps.module.name}@${deps.module.version}`;
      const details = mask({
        function: d.function,
        permission: d.permission,
        resource: d.resource,
        reason: d.reason,
        module: moduleRef,
        job_id: deps.jobId,
        execution_id: deps.executionId,
        step_id: deps.stepId,
      }) as Record<string, unknown>;
      deps.metrics?.wasmHostDenied.inc({ function: d.function, permission: d.permission });
      deps.logger.warn(details, `host call denied: ${d.function} needs ${d.permission} for '${details.resource}'`);
      const write = writeAggregatedAudit(deps.db, {
        actorName: `module:${moduleRef}`,
        action: DENIED_AUDIT_ACTION,
        resourceType: 'wasm_module',
        resourceId: deps.module.id,
        outcome: 'denied',
        details,
        aggregateBy: `module:${deps.module.id}`,
      })
        .catch((err) => deps.logger.error({ err, module: deps.module.id }, 'could not write a host-call denial to the audit log'))
        .finally(() => pending.delete(write));
      pending.add(write);
    },
    async settled() {
      while (pending.size) await Promise.all([...pending]);
    },
  };
}
