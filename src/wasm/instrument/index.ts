export {
  instrument,
  type InstrumentOptions,
  type InstrumentResult,
  type InstrumentMeta,
  RT_MODULE,
  OUT_OF_FUEL_IMPORT,
  POLL_IMPORT,
  FUEL_EXPORT,
  POLL_AT_EXPORT,
  START_EXPORT,
  DEFAULT_POLL_INTERVAL,
  BULK_SHIFT,
} from './instrument.ts';
