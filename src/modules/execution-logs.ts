/** One row per run of a module in a job (the design study's wasm_execution_logs), and their queries. */
import type { Queryable } from '../db/database.ts';
import { iso } from '../ids.ts';
import type { WasmLogLine, WasmRunResult } from '../wasm/runtime/index.ts';
import type { HostCallRecord } from '../wasm/host/types.ts';
import type { ModuleRow } from './repository.ts';
import { recordInsertAfterLog, type RecordRow } from './run-records.ts';

export interface WasmLogInput {
  executionId: string;
  stepId: string;
  attempt: number;
  module: ModuleRow;
  functionName: string;
  result: WasmRunResult;
  error: { code: string; message: string; stack?: string; errors?: unknown[] } | null;
  /** The run's log lines and host-call record as stored (masked by the caller); default the result's. */
  logs?: WasmLogLine[];
  hostCalls?: HostCallRecord[];
}

const LOG_INSERT = `INSERT INTO wasm_execution_logs (execution_id, step_id, attempt, module_id, module_name, module_version, function_name,
                                      fuel_consumed, memory_used_bytes, duration_ms, error, logs, host_calls, host_calls_dropped)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`;
/** The log row and the run's record in one statement (one round trip): the record's parameters from $15 on. */
const LOG_AND_RECORD_INSERT = `WITH log AS (${LOG_INSERT}) ${recordInsertAfterLog(15)}`;

/**
 * Inserts the run's row, and with it (the same statement) the run's complete record when one is
 * given (prepareRunRecord); returns the row's id.
 */
export async function insertWasmLog(db: Queryable, l: WasmLogInput, record?: RecordRow): Promise<string> {
  const { rows } = await db.query<{ id: string }>(record === undefined ? LOG_INSERT : LOG_AND_RECORD_INSERT, [
    ...logParams(l),
    ...(record === undefined ? [] : [record.id, ...record.params]),
  ]);
  return rows[0].id;
}

function logParams(l: WasmLogInput): unknown[] {
  return [
    l.executionId,
    l.stepId,
    l.attempt,
    l.module.id,
    l.module.name,
    l.module.version,
    l.functionName,
    l.result.fuelConsumed + l.result.initFuelConsumed,
    l.result.memoryPeakBytes,
    l.result.durationMs,
    l.error ? JSON.stringify(l.error) : null,
    JSON.stringify(l.logs ?? l.result.logs ?? []),
    JSON.stringify(l.hostCalls ?? l.result.hostCalls ?? []),
    l.result.hostCallsDropped ?? 0,
  ];
}

export interface WasmLogView {
  id: string;
  execution_id: string;
  step_id: string;
  attempt: number;
  module_id: string | null;
  module_name: string;
  module_version: string;
  function_name: string;
  fuel_consumed: number;
  memory_used_bytes: number;
  duration_ms: number;
  error: { code: string; message: string; stack?: string; errors?: unknown[] } | null;
  /** The module's log lines (masked). Absent from a module's list of runs. */
  logs?: WasmLogLine[];
  /** One entry per privileged host call, in order (bounded and masked; docs/abi.md). Absent from a module's list of runs. */
  host_calls?: HostCallRecord[];
  host_calls_dropped?: number;
  created_at: string;
}

const LIST_COLUMNS =
  'id, execution_id, step_id, attempt, module_id, module_name, module_version, function_name, fuel_consumed, memory_used_bytes, duration_ms, error, created_at';

const toView = (r: any): WasmLogView => ({
  id: r.id,
  execution_id: r.execution_id,
  step_id: r.step_id,
  attempt: r.attempt,
  module_id: r.module_id,
  module_name: r.module_name,
  module_version: r.module_version,
  function_name: r.function_name,
  fuel_consumed: Number(r.fuel_consumed),
  memory_used_bytes: Number(r.memory_used_bytes),
  duration_ms: Number(r.duration_ms),
  error: r.error,
  ...(r.logs !== undefined ? { logs: r.logs, host_calls: r.host_calls, host_calls_dropped: Number(r.host_calls_dropped) } : {}),
  created_at: iso(r.created_at)!,
});

export async function logsOfExecution(db: Queryable, executionId: string, moduleId?: string): Promise<WasmLogView[]> {
  const { rows } = await db.query(
    `SELECT * FROM wasm_execution_logs WHERE execution_id = $1 AND ($2::uuid IS NULL OR module_id = $2) ORDER BY created_at, id`,
    [executionId, moduleId ?? null],
  );
  return rows.map(toView);
}

export async function logsOfModule(db: Queryable, moduleId: string, q: { page: number; limit: number }): Promise<{ items: WasmLogView[]; total: number }> {
  const total = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM wasm_execution_logs WHERE module_id = $1', [moduleId])).rows[0].n);
  // A page of runs leaves out their log lines and host calls (up to a few MiB a run): the execution's logs show them.
  const { rows } = await db.query(`SELECT ${LIST_COLUMNS} FROM wasm_execution_logs WHERE module_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`, [
    moduleId,
    q.limit,
    (q.page - 1) * q.limit,
  ]);
  return { items: rows.map(toView), total };
}
