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
} from './instrument.ts';
export { runtimeImports, FuelExhaustedError, InterruptedError, type RuntimeImportOptions } from './runtime.ts';
