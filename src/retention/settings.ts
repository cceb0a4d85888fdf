import type { Config } from '../config/index.ts';
import type { RetentionPeriods } from './prune.ts';

/** The retention periods of a process's configuration. */
export const retentionPeriods = (c: Config): RetentionPeriods => ({
  executionsDays: c.retentionExecutionsDays,
  auditDays: c.retentionAuditDays,
  batchSize: c.retentionBatchSize,
});
