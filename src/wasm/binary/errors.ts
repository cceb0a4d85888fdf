/**
 * Errors raised while reading or rewriting a WebAssembly binary. `code` is stable:
 * - `malformed`: the bytes are not a well-formed module (bad magic, section order, sizes, LEB128...)
 * - `unsupported_feature`: a well-formed construct of a proposal we do not run (threads, exceptions,
 *   GC, memory64, multi-memory, ...); the message names the feature and where it was found
 * - `memory_limit`: the module's initial memory (or its tables' entries) is larger than the limit it is prepared for
 */
export type WasmFormatErrorCode = 'malformed' | 'unsupported_feature' | 'memory_limit';

export class WasmFormatError extends Error {
  readonly code: WasmFormatErrorCode;
  /** Byte offset in the module where the problem was found, when known. */
  readonly offset?: number;
  /** Index (in the function index space) of the function whose body holds the problem. */
  readonly funcIndex?: number;
  readonly feature?: string;

  constructor(code: WasmFormatErrorCode, message: string, where: { offset?: number; funcIndex?: number; feature?: string } = {}) {
    const loc: string[] = [];
    if (where.funcIndex !== undefined) loc.push(`function ${where.funcIndex}`);
    if (where.offset !== undefined) loc.push(`byte offset 0x${where.offset.toString(16)} (${where.offset})`);
    super(loc.length > 0 ? `${message} (at ${loc.join(', ')})` : message);
    this.name = 'WasmFormatError';
    this.code = code;
    this.offset = where.offset;
    this.funcIndex = where.funcIndex;
    this.feature = where.feature;
  }
}

export const malformed = (message: string, offset?: number, funcIndex?: number): WasmFormatError =>
  new WasmFormatError('malformed', message, { offset, funcIndex });

export const unsupported = (feature: string, what: string, offset?: number, funcIndex?: number): WasmFormatError =>
  new WasmFormatError('unsupported_feature', `unsupported WebAssembly feature '${feature}': ${what}`, {
    offset,
    funcIndex,
    feature,
  });
