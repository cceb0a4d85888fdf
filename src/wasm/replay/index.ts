/** Replay of WASM runs (issue 20): the record, the engine, the report. See types.ts for the contract. */
export * from './types.ts';
export {
  buildRunRecord,
  notReplayable,
  parseRecordText,
  recordText,
  storedRecordOf,
  writeRunRecord,
  WALL_CLOCK_ERRORS,
  type RecordMeta,
  type StoredRunRecord,
} from './record.ts';
export { checkReplayable, compareResult, replayRun } from './replay.ts';
export { formatReplay } from './format.ts';
