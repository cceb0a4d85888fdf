export { WasmFormatError, type WasmFormatErrorCode } from './errors.ts';
export { Reader } from './reader.ts';
export { ByteWriter, encodeU32 } from './writer.ts';
export { CodeWalker, OP, type ValType, type WalkContext } from './opcodes.ts';
export {
  parseModule,
  skipLocals,
  type WasmModuleInfo,
  type ParseOptions,
  type ImportInfo,
  type ExportInfo,
  type FuncType,
  type MemoryInfo,
  type TableInfo,
  type GlobalInfo,
  type Limits,
  type SectionInfo,
  type ExternKind,
} from './parse.ts';
export { assemble, uleb, sleb, I, T, type AsmModule, type AsmFunc } from './assemble.ts';
