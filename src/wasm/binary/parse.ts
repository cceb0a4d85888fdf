import { Reader } from './reader.ts';
import { CodeWalker, valType, type ValType, type WalkContext } from './opcodes.ts';
import { WasmFormatError, unsupported } from './errors.ts';

export type ExternKind = 'function' | 'table' | 'memory' | 'global';
const KINDS: ExternKind[] = ['function', 'table', 'memory', 'global'];

export interface FuncType {
  params: ValType[];
  results: ValType[];
}

export interface Limits {
  min: number;
  max?: number;
}

export interface MemoryInfo extends Limits {
  imported: boolean;
  /** Offsets of the encoded limits (flags..max) in the module, for rewriting. */
  limitsStart: number;
  limitsEnd: number;
}

export interface TableInfo extends Limits {
  element: 'funcref' | 'externref';
  imported: boolean;
  /** Offsets of the encoded limits (flags..max) in the module, for rewriting. */
  limitsStart: number;
  limitsEnd: number;
}

export interface GlobalInfo {
  type: ValType;
  mutable: boolean;
  imported: boolean;
}

export interface ImportInfo {
  module: string;
  name: string;
  kind: ExternKind;
  /** Index in the index space of its kind. */
  index: number;
  /** For functions, the type index. */
  typeIndex?: number;
  /** For functions, the offsets of the encoded type index in the module (for rewriting). */
  typeStart?: number;
  typeEnd?: number;
}

export interface ExportInfo {
  name: string;
  kind: ExternKind;
  index: number;
}

export interface SectionInfo {
  id: number;
  /** Offset of the section id byte. */
  offset: number;
  /** Payload range. */
  start: number;
  end: number;
  /** For vector sections: the entry count and where the entries begin. */
  count?: number;
  entriesStart?: number;
  /** For custom sections: the name. */
  name?: string;
}

export interface WasmModuleInfo {
  types: FuncType[];
  imports: ImportInfo[];
  exports: ExportInfo[];
  /** Imported + defined functions. */
  functionCount: number;
  importedFunctionCount: number;
  importedGlobalCount: number;
  /** Type index of every function of the function index space (imports first). */
  functionTypes: number[];
  tables: TableInfo[];
  memories: MemoryInfo[];
  globals: GlobalInfo[];
  start?: number;
  elementSegmentCount: number;
  /** Entries of all element segments together. */
  elementEntryCount: number;
  dataSegmentCount: number;
  dataCount?: number;
  customSections: { name: string; offset: number; size: number }[];
  sections: SectionInfo[];
  /** Range of each defined function body (after its size). */
  bodies: { start: number; end: number }[];
  /**
   * Every function index written outside code bodies (exports, start, element segments, ref.func in
   * constant expressions): flat triples [start, end, index] of the encoded LEB128, in order.
   */
  funcRefs: number[];
}

export interface ParseOptions {
  /** Walk every function body instruction by instruction (default true). */
  walkCode?: boolean;
}

const SECTION_ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };
const SECTION_NAMES: Record<number, string> = {
  1: 'type',
  2: 'import',
  3: 'function',
  4: 'table',
  5: 'memory',
  6: 'global',
  7: 'export',
  8: 'start',
  9: 'element',
  10: 'code',
  11: 'data',
  12: 'data count',
};

const MAX_PAGES = 65536;

function limits(r: Reader, what: 'memory' | 'table', maxMin: number): Limits & { shared: boolean } {
  const at = r.pos;
  const flags = r.u8();
  if (what === 'memory' && flags >= 4 && flags <= 7) throw unsupported('memory64', '64-bit memory', at);
  if (what === 'table' && flags >= 4 && flags <= 7) throw unsupported('memory64', '64-bit table', at);
  if (flags === 2 || flags === 3) {
    if (what === 'memory') throw unsupported('threads', 'shared memory', at);
    r.fail('shared table', at);
  }
  if (flags > 1) r.fail(`invalid limits flags 0x${flags.toString(16)}`, at);
  const min = r.u32();
  if (min > maxMin) r.fail(`${what} minimum ${min} above ${maxMin}`, at);
  if (flags === 0) return { min, shared: false };
  const max = r.u32();
  if (max < min) r.fail(`${what} maximum ${max} below minimum ${min}`, at);
  if (max > maxMin) r.fail(`${what} maximum ${max} above ${maxMin}`, at);
  return { min, max, shared: false };
}

function tableType(r: Reader): Omit<TableInfo, 'imported'> {
  const at = r.pos;
  const t = valType(r);
  if (t !== 'funcref' && t !== 'externref') r.fail(`invalid table element type ${t}`, at);
  const limitsStart = r.pos;
  const l = limits(r, 'table', 0xffffffff);
  return { element: t, min: l.min, ...(l.max === undefined ? {} : { max: l.max }), limitsStart, limitsEnd: r.pos };
}

function globalType(r: Reader): { type: ValType; mutable: boolean } {
  const type = valType(r);
  const at = r.pos;
  const m = r.u8();
  if (m > 1) r.fail(`invalid global mutability ${m}`, at);
  return { type, mutable: m === 1 };
}

/**
 * A constant expression: one constant / global.get / ref.null / ref.func, then end. ref.func
 * indices are recorded in `funcRefs`. (Extended constant expressions are not in V8 11.3.)
 */
function constExpr(r: Reader, ctx: WalkContext, funcRefs: number[]): void {
  const at = r.pos;
  const op = r.u8();
  switch (op) {
    case 0x41:
      r.s32();
      break;
    case 0x42:
      r.skipS64();
      break;
    case 0x43:
      r.skip(4);
      break;
    case 0x44:
      r.skip(8);
      break;
    case 0x23:
      r.u32();
      break;
    case 0xd0: {
      const h = r.u8();
      if (h !== 0x70 && h !== 0x6f) throw unsupported('GC / typed function references', `ref.null heap type 0x${h.toString(16)}`, at);
      break;
    }
    case 0xd2: {
      const s = r.pos;
      const idx = r.u32();
      if (idx >= ctx.funcCount) r.fail(`function index ${idx} out of range`, s);
      funcRefs.push(s, r.pos, idx);
      break;
    }
    case 0xfd: {
      const sub = r.u32();
      if (sub !== 12) r.fail('invalid constant expression', at);
      r.skip(16);
      break;
    }
    default:
      r.fail(`invalid constant expression (opcode 0x${op.toString(16)})`, at);
  }
  const endAt = r.pos;
  const end = r.u8();
  if (end !== 0x0b) {
    if ([0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(end) || end === 0x41 || end === 0x42 || end === 0x23) {
      throw unsupported('extended-const', 'arithmetic in a constant expression', endAt);
    }
    r.fail('constant expression does not end', endAt);
  }
}

/** Parses and validates the structure of a module; see WasmModuleInfo. */
export function parseModule(bytes: Uint8Array, opts: ParseOptions = {}): WasmModuleInfo {
  const walkCode = opts.walkCode ?? true;
  const r = new Reader(bytes);
  if (bytes.length < 8) r.fail('too short to be a WebAssembly module', 0);
  if (bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) r.fail('bad magic number', 0);
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    if (bytes[4] === 0x0d && bytes[6] === 0x01) throw unsupported('component model', 'a component, not a core module', 4);
    r.fail('unsupported version', 4);
  }
  r.pos = 8;

  const info: WasmModuleInfo = {
    types: [],
    imports: [],
    exports: [],
    functionCount: 0,
    importedFunctionCount: 0,
    importedGlobalCount: 0,
    functionTypes: [],
    tables: [],
    memories: [],
    globals: [],
    elementSegmentCount: 0,
    elementEntryCount: 0,
    dataSegmentCount: 0,
    customSections: [],
    sections: [],
    bodies: [],
    funcRefs: [],
  };
  const ctx: WalkContext = { typeCount: 0, funcCount: 0, globalCount: 0 };
  let lastOrder = 0;
  let definedFuncs = 0;
  let sawFunctionSection = false;
  let sawCodeSection = false;
  let codeSection: SectionInfo | undefined;

  while (r.pos < bytes.length) {
    const offset = r.pos;
    const id = r.u8();
    const size = r.u32();
    const start = r.pos;
    if (size > bytes.length - start) r.fail(`section ${id} size ${size} runs past the end of the module`, offset);
    const end = start + size;
    const sec: SectionInfo = { id, offset, start, end };
    if (id === 0) {
      const s = new Reader(bytes, start, end);
      sec.name = s.name();
      info.customSections.push({ name: sec.name, offset, size: end - offset });
      info.sections.push(sec);
      r.pos = end;
      continue;
    }
    const order = SECTION_ORDER[id];
    if (order === undefined) {
      if (id === 13) throw unsupported('exception handling', 'tag section', offset);
      r.fail(`unknown section id ${id}`, offset);
    }
    if (order <= lastOrder) r.fail(`${SECTION_NAMES[id]} section out of order or repeated`, offset);
    lastOrder = order;
    info.sections.push(sec);
    const s = new Reader(bytes, start, end);
    const vec = (): number => {
      const n = s.u32();
      sec.count = n;
      sec.entriesStart = s.pos;
      if (n > end - s.pos) s.fail(`${SECTION_NAMES[id]} section count ${n} larger than its size`, start);
      return n;
    };
    switch (id) {
      case 1: {
        const n = vec();
        for (let i = 0; i < n; i++) {
          const at = s.pos;
          const form = s.u8();
          if (form !== 0x60) {
            if (form === 0x5e || form === 0x5f || form === 0x50 || form === 0x4e || form === 0x4f) {
              throw unsupported('GC', `type form 0x${form.toString(16)}`, at);
            }
            s.fail(`invalid type form 0x${form.toString(16)}`, at);
          }
          const np = s.u32();
          const params: ValType[] = [];
          for (let j = 0; j < np; j++) params.push(valType(s));
          const nr = s.u32();
          const results: ValType[] = [];
          for (let j = 0; j < nr; j++) results.push(valType(s));
          info.types.push({ params, results });
        }
        ctx.typeCount = info.types.length;
        break;
      }
      case 2: {
        const n = vec();
        for (let i = 0; i < n; i++) {
          const module = s.name();
          const name = s.name();
          const at = s.pos;
          const k = s.u8();
          if (k === 4) throw unsupported('exception handling', `tag import ${module}.${name}`, at);
          if (k > 3) s.fail(`invalid import kind ${k}`, at);
          const kind = KINDS[k];
          if (kind === 'function') {
            const ti = s.u32();
            if (ti >= info.types.length) s.fail(`type index ${ti} out of range`, at + 1);
            info.imports.push({ module, name, kind, index: info.functionTypes.length, typeIndex: ti, typeStart: at + 1, typeEnd: s.pos });
            info.functionTypes.push(ti);
          } else if (kind === 'table') {
            info.imports.push({ module, name, kind, index: info.tables.length });
            info.tables.push({ ...tableType(s), imported: true });
          } else if (kind === 'memory') {
            info.imports.push({ module, name, kind, index: info.memories.length });
            const ls = s.pos;
            const l = limits(s, 'memory', MAX_PAGES);
            info.memories.push({ min: l.min, ...(l.max === undefined ? {} : { max: l.max }), imported: true, limitsStart: ls, limitsEnd: s.pos });
          } else {
            info.imports.push({ module, name, kind, index: info.globals.length });
            info.globals.push({ ...globalType(s), imported: true });
          }
        }
        info.importedFunctionCount = info.functionTypes.length;
        info.importedGlobalCount = info.globals.length;
        break;
      }
      case 3: {
        const n = vec();
        sawFunctionSection = true;
        for (let i = 0; i < n; i++) {
          const at = s.pos;
          const ti = s.u32();
          if (ti >= info.types.length) s.fail(`type index ${ti} out of range`, at);
          info.functionTypes.push(ti);
        }
        definedFuncs = n;
        break;
      }
      case 4: {
        const n = vec();
        for (let i = 0; i < n; i++) {
          const at = s.pos;
          if (bytes[at] === 0x40) throw unsupported('GC / typed function references', 'table with an initializer', at);
          info.tables.push({ ...tableType(s), imported: false });
        }
        break;
      }
      case 5: {
        const n = vec();
        for (let i = 0; i < n; i++) {
          const ls = s.pos;
          const l = limits(s, 'memory', MAX_PAGES);
          info.memories.push({ min: l.min, ...(l.max === undefined ? {} : { max: l.max }), imported: false, limitsStart: ls, limitsEnd: s.pos });
        }
        break;
      }
      case 6: {
        ctx.funcCount = info.functionTypes.length;
        const n = vec();
        for (let i = 0; i < n; i++) {
          info.globals.push({ ...globalType(s), imported: false });
          constExpr(s, ctx, info.funcRefs);
        }
        break;
      }
      case 7: {
        const n = vec();
        const seen = new Set<string>();
        for (let i = 0; i < n; i++) {
          const nameAt = s.pos;
          const name = s.name();
          if (seen.has(name)) s.fail(`duplicate export '${name}'`, nameAt);
          seen.add(name);
          const at = s.pos;
          const k = s.u8();
          if (k === 4) throw unsupported('exception handling', `tag export ${name}`, at);
          if (k > 3) s.fail(`invalid export kind ${k}`, at);
          const kind = KINDS[k];
          const is = s.pos;
          const index = s.u32();
          const limit =
            kind === 'function'
              ? info.functionTypes.length
              : kind === 'table'
                ? info.tables.length
                : kind === 'memory'
                  ? info.memories.length
                  : info.globals.length;
          if (index >= limit) s.fail(`export '${name}': ${kind} index ${index} out of range`, is);
          if (kind === 'function') info.funcRefs.push(is, s.pos, index);
          info.exports.push({ name, kind, index });
        }
        break;
      }
      case 8: {
        const at = s.pos;
        const idx = s.u32();
        if (idx >= info.functionTypes.length) s.fail(`start function ${idx} out of range`, at);
        info.funcRefs.push(at, s.pos, idx);
        info.start = idx;
        break;
      }
      case 9: {
        ctx.funcCount = info.functionTypes.length;
        const n = vec();
        for (let i = 0; i < n; i++) elementSegment(s, ctx, info);
        info.elementSegmentCount = n;
        break;
      }
      case 12: {
        info.dataCount = s.u32();
        break;
      }
      case 10: {
        sawCodeSection = true;
        codeSection = sec;
        const n = vec();
        if (n !== definedFuncs) s.fail(`code section has ${n} bodies for ${definedFuncs} functions`, start);
        for (let i = 0; i < n; i++) {
          const at = s.pos;
          const size = s.u32();
          if (size === 0 || size > end - s.pos) s.fail(`function body size ${size} out of range`, at);
          info.bodies.push({ start: s.pos, end: s.pos + size });
          s.pos += size;
        }
        break;
      }
      case 11: {
        const n = vec();
        for (let i = 0; i < n; i++) {
          const at = s.pos;
          const flags = s.u32();
          if (flags === 0) constExpr(s, ctx, info.funcRefs);
          else if (flags === 2) {
            const mi = s.pos;
            const m = s.u32();
            if (m !== 0) throw unsupported('multi-memory', `data segment for memory ${m}`, mi);
            constExpr(s, ctx, info.funcRefs);
          } else if (flags !== 1) s.fail(`invalid data segment flags ${flags}`, at);
          const len = s.u32();
          s.skip(len);
        }
        info.dataSegmentCount = n;
        if (info.dataCount !== undefined && info.dataCount !== n) s.fail(`data count ${info.dataCount} but ${n} data segments`, start);
        break;
      }
    }
    if (s.pos !== end) s.fail(`${SECTION_NAMES[id]} section size mismatch`, s.pos);
    r.pos = end;
  }
  if (sawFunctionSection !== sawCodeSection && definedFuncs > 0) r.fail('function and code sections disagree', bytes.length);
  if (!sawCodeSection && definedFuncs > 0) r.fail('function section without code section', bytes.length);
  if (info.memories.length > 1) throw unsupported('multi-memory', `${info.memories.length} memories`);
  info.functionCount = info.functionTypes.length;
  ctx.funcCount = info.functionCount;
  ctx.globalCount = info.globals.length;

  if (walkCode && codeSection) {
    for (let i = 0; i < info.bodies.length; i++) {
      const b = info.bodies[i];
      const br = new Reader(bytes, b.start, b.end);
      br.funcIndex = info.importedFunctionCount + i;
      const locals = skipLocals(br);
      const w = new CodeWalker(br, ctx, info.importedFunctionCount + i);
      w.localCount = info.types[info.functionTypes[info.importedFunctionCount + i]].params.length + locals;
      while (!w.done) w.next();
      if (br.pos !== b.end) br.fail('instructions after the final end of a function body');
    }
  }
  return info;
}

/** Reads a body's local declarations; returns the total number of locals. */
export function skipLocals(r: Reader): number {
  const groups = r.u32();
  let total = 0;
  for (let i = 0; i < groups; i++) {
    const at = r.pos;
    const n = r.u32();
    total += n;
    if (total > 50000) r.fail('too many locals', at);
    valType(r);
  }
  return total;
}

/** Entries of all element segments of a module together (every table of 1,000,000 entries could be filled). */
export const MAX_ELEMENT_ENTRIES = 1_000_000;

function elementSegment(s: Reader, ctx: WalkContext, info: WasmModuleInfo): void {
  const at = s.pos;
  const flags = s.u32();
  if (flags > 7) s.fail(`invalid element segment flags ${flags}`, at);
  const passiveOrDeclarative = (flags & 1) !== 0;
  const explicitTable = (flags & 2) !== 0;
  const usesExprs = (flags & 4) !== 0;
  if (!passiveOrDeclarative) {
    if (explicitTable) s.u32(); // table index
    constExpr(s, ctx, info.funcRefs);
  }
  // elemkind (0x00 = funcref) or reftype, absent for flags 0 and 4
  if (flags !== 0 && flags !== 4) {
    const k = s.pos;
    if (usesExprs) {
      const t = valType(s);
      if (t !== 'funcref' && t !== 'externref') s.fail('invalid element type', k);
    } else if (s.u8() !== 0) s.fail('invalid element kind', k);
  }
  const n = s.u32();
  if (n > s.end - s.pos) s.fail('element segment longer than its section', at);
  // A bound on what the host keeps per entry (a function reference to patch at upload, one table
  // slot in every instance): checked on the count, before any entry is read.
  info.elementEntryCount += n;
  if (info.elementEntryCount > MAX_ELEMENT_ENTRIES) {
    throw new WasmFormatError(
      'unsupported_feature',
      `the element segments hold ${info.elementEntryCount} entries or more in all, above the sandbox's limit of ${MAX_ELEMENT_ENTRIES}`,
      { offset: at },
    );
  }
  for (let i = 0; i < n; i++) {
    if (usesExprs) constExpr(s, ctx, info.funcRefs);
    else {
      const is = s.pos;
      const idx = s.u32();
      if (idx >= ctx.funcCount) s.fail(`function index ${idx} out of range`, is);
      info.funcRefs.push(is, s.pos, idx);
    }
  }
}
