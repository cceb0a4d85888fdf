/**
 * One recorded run replayed on the server (the dashboard's "replay" button): the record from the
 * store, the module it ran from the registry (integrity-checked like every load, and its hash held
 * against the record's), the replay in the process's pool. Anything that keeps the run from being
 * replayed is an answer (`could_not_replay` with its reason), not an error of the request.
 */
import type { Database } from '../../db/database.ts';
import type { BlobStore } from '../../storage/blob-store.ts';
import type { ModuleRegistry } from '../../modules/registry.ts';
import type { ModuleRow } from '../../modules/repository.ts';
import { isVecronError } from '../../errors.ts';
import { getRunRecord } from '../../modules/run-records.ts';
import type { WasmRuntime } from '../runtime/index.ts';
import { checkReplayable, replayRun } from './index.ts';
import type { NotReplayableReason, ReplayResult, WasmRunRecord } from './types.ts';

/** Why a stored run cannot be replayed here: the engine's reasons, and the module deleted since. */
export type StoredNotReplayable = NotReplayableReason | 'module_gone';

/** The engine's result, or a refusal with one of the server's reasons. */
export type StoredReplayResult =
  | Exclude<ReplayResult, { status: 'could_not_replay' }>
  | { status: 'could_not_replay'; reason: StoredNotReplayable; message: string };

export interface StoredReplay {
  execution_id: string;
  step_id: string;
  attempt: number | null;
  /** The module replayed (the one the record names), when it still exists. */
  module: { id: string; name: string; version: string; hash: string } | null;
  result: StoredReplayResult;
}

export interface StoredReplayInput {
  db: Database;
  blobs: BlobStore;
  modules: ModuleRegistry;
  runtime: WasmRuntime;
  executionId: string;
  stepId: string;
  attempt?: number;
  budgetMs: number;
  signal?: AbortSignal;
}

const cannot = (reason: StoredNotReplayable, message: string): StoredReplayResult => ({
  status: 'could_not_replay',
  reason,
  message,
});

export async function replayStoredRun(i: StoredReplayInput): Promise<StoredReplay> {
  const head = { execution_id: i.executionId, step_id: i.stepId, attempt: i.attempt ?? null, module: null };
  let stored: WasmRunRecord | null;
  try {
    stored = await getRunRecord(i.db, i.blobs, { executionId: i.executionId, stepId: i.stepId, attempt: i.attempt });
  } catch (err) {
    return { ...head, result: cannot('record_unavailable', `the record could not be read: ${(err as Error).message}`) };
  }
  if (!stored) {
    return {
      ...head,
      result: cannot(
        'not_recorded',
        `step '${i.stepId}' of execution ${i.executionId} has no recorded run${i.attempt ? ` for attempt ${i.attempt}` : ''} (recording off, or expired)`,
      ),
    };
  }
  const checked = checkReplayable(stored);
  const attempt = stored.attempt ?? i.attempt ?? null;
  if (!checked.ok) return { ...head, attempt, result: cannot(checked.reason, checked.message) };
  const record = checked.record;
  let module: ModuleRow;
  try {
    if (!record.module.id) throw Object.assign(new Error('no module id'), { gone: true });
    module = await i.modules.resolve(record.module.id);
  } catch (err) {
    if ((err as { gone?: boolean }).gone || (isVecronError(err) && err.code === 'not_found')) {
      return {
        ...head,
        attempt,
        result: cannot(
          'module_gone',
          `the module that made this run (${record.module.name ?? '?'}@${record.module.version ?? '?'}, sha256 ${record.module.hash}) is no longer in the registry: replay it with wasm-cli replay --module FILE`,
        ),
      };
    }
    throw err;
  }
  const ref = { id: module.id, name: module.name, version: module.version, hash: module.hash };
  let bytes: Uint8Array;
  try {
    bytes = (await i.modules.loadForRun(module, { purpose: 'replay', execution_id: i.executionId, step_id: i.stepId })).bytes;
  } catch (err) {
    return { ...head, attempt, module: ref, result: cannot('module_unusable', `the module's bytes could not be loaded: ${(err as Error).message}`) };
  }
  const timeoutMs = Math.max(1, Math.min(i.budgetMs, Math.max(record.limits.timeout_ms, 1)));
  const result = await replayRun(i.runtime, bytes, record, { timeoutMs, signal: i.signal });
  return { ...head, attempt, module: ref, result };
}
