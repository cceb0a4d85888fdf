export {
  instrument,
  type InstrumentOptions,
  type InstrumentResult,
  type InstrumentMeta,
  RT_MODULE,
  OUT_OF_FUEL_IMPORT,
  POLL_IMPORT,
  FUEL_EXPORT,
  RESERVE_EXPORT,
  setFuel,
  fuelLeft,
  type FuelGlobals,
  START_EXPORT,
  GROW_FAILED_EXPORT,
  DEFAULT_POLL_INTERVAL,
  BULK_SHIFT,
  TABLE_EXPORT_PREFIX,
  DEFAULT_TABLE_MAX_ENTRIES,
  GROW_FAILED_MEMORY,
  GROW_FAILED_TABLE,
  SUSPENDING_IMPORTS,
  JSPI_MODE_EXPORT,
  JSPI_EXPORT_PREFIX,
} from './instrument.ts';
export { SIZE_COSTS, HOST_COSTS, HOST_BOUNDS, INSTRUCTION_COST, TABLE_ENTRY_BYTES } from './costs.ts';
export { ENGINE_LIMITS } from './engine-limits.ts';
export { runtimeImports, FuelExhaustedError, InterruptedError, type RuntimeImportOptions } from './runtime.ts';
