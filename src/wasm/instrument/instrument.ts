import { ByteWriter, encodeU32 } from '../binary/writer.ts';
import { Reader } from '../binary/reader.ts';
import { CodeWalker, OP_CLASS, I_NONE, I_MEMARG, type WalkContext } from '../binary/opcodes.ts';
import { parseModule, skipLocals, type ImportInfo, type SectionInfo, type WasmModuleInfo } from '../binary/parse.ts';
import { WasmFormatError, malformed, unsupported } from '../binary/errors.ts';
import { SIZE_COSTS, type SizeCostKind } from './costs.ts';
import { ENGINE_LIMITS } from './engine-limits.ts';

/**
 * The one-time rewrite of a guest module at upload: fuel metering, interrupt polling, memory clamp.
 *
 * Fuel. Two mutable i64 globals, exported: `__vecron_fuel` (a counter, C) and
 * `__vecron_fuel_reserve` (R). The fuel left is C + R; use `setFuel` / `fuelLeft` below rather than
 * the globals: the host sets the run's budget before calling into the instance and reads what is
 * left afterwards. Every basic block is charged on entry with its cost, subtracted from C: 1 unit
 * per instruction, except the delimiters `else` and `end`, which execute nothing (0). A block ends
 * after `if`, `else`, `end`, `loop`, `br`, `br_if`, `br_table`, `return`, `unreachable` and the tail
 * calls; calls do not end a block. So the fuel consumed is exact to the block: a trap in the middle
 * of a block has paid for the whole block. Every instruction whose work grows with an operand
 * (`memory.copy/fill/init`, `table.copy/fill/init`, `memory.grow`, `table.grow`) is preceded by a
 * call to a small added helper that takes the size operand, charges it (SIZE_COSTS in costs.ts,
 * the operand capped at what the instruction can touch) and runs the check before the instruction
 * runs: an operation the fuel cannot pay for never starts (V8 cannot interrupt one halfway).
 *
 * Checks sit at function entries (after the entry block's charge) and loop headers (before the
 * iteration's charge), so every cycle in the control flow (loops, recursion) passes one. A check is
 * `C < 0`; only then is the injected slow path `$vecron_check` called:
 *   - if C + R < 0: call the imported `vecron_rt.out_of_fuel` (the host throws its fuel error there,
 *     so the host can tell fuel exhaustion from a guest `unreachable`), then `unreachable`;
 *   - otherwise call the imported `vecron_rt.poll`, then move fuel between the two:
 *     C = min(C + R, interval), R = the rest.
 * So the check is one compare with 0, and the slow path runs once per `interval` units, or when the
 * fuel is out (C + R < 0 exactly when C < 0 once R is 0). This is the brief's "poll_at" scheme
 * (poll when fuel < poll_at) with the fuel counted relative to poll_at, which saves a global load
 * and a register in every check.
 *
 * Interrupt. Design choice: the host cannot write a global of an instance running on another
 * thread, and a shared memory flag would be a second memory (multi-memory is not in V8 11.3), while
 * calling the host at every loop header would be slow. So the guest calls `vecron_rt.poll()` once
 * every `pollInterval` units of fuel (2^16 by default, well under a millisecond of guest work); the
 * host implements it with an `Atomics.load` on an Int32Array over a SharedArrayBuffer that the
 * scheduler sets on timeout, and throws its timeout error when the flag is set. A busy loop thus
 * stops cleanly within one interval; `worker.terminate()` stays the backstop (e.g. a host call that
 * never returns).
 *
 * Speed. Inside a function, C lives in a local F. Most functions take it as an extra last i64
 * parameter and return it as an extra last result ("register form", see emitBody): direct calls
 * pass it along, so no load of the global waits on a store at each call boundary (that chain made
 * recursive code ~1.65x slower); F is stored to the global only where the global must be exact:
 * before an instruction that can trap, before calls and before the slow path, so the fuel read
 * after a trap is still exact to the block. Exports, tables, `ref.func` and the start function
 * get a wrapper with the original type (global in, call, global out). A function with a tail call
 * that cannot pass F (return_call_indirect, to an import or to such a function) keeps the "global
 * form": F loaded at entry and after calls, stored at every charge. Each loop without calls is
 * restructured so that the call to the slow path sits outside the hot loop (see LOOP_WRAP): V8
 * optimizes loops without calls much better; a loop that calls anyway keeps its check inline.
 *
 * The start function, if any, would run during instantiation before the host can set the fuel, so
 * the start section is removed and that function is exported as `__vecron_start` instead: the host
 * calls it right after instantiating, with fuel set.
 *
 * Memory. Every memory's maximum, defined or imported, becomes min(declared max, memoryMaxPages),
 * so `memory.grow` past the limit returns -1 inside the guest (for an imported memory the host must
 * supply one whose maximum is within the clamp, which instantiation checks). An initial size above
 * the limit fails here with `memory_limit`.
 *
 * Tables. Their entries, all tables together, are clamped to `tableMaxEntries` the same way: the
 * minimums must fit (else `memory_limit`), each maximum is lowered so that the sum of the maximums
 * fits (growth room goes to the tables in index order), so `table.grow` past it returns -1. Each
 * table is exported as `__vecron_table_<i>` so that the host can count its entries.
 *
 * Engine limits. A function whose type is at V8's 1,000 parameters or results is put in the
 * global form (no extra parameter or result); other counts that the rewrite would push past a
 * V8 limit (locals, body size, imports, functions, ...) are refused here, in terms of the module
 * as uploaded (see engine-limits.ts).
 *
 * Index shifts. The two imports are appended after the module's function imports, so every defined
 * function index moves up by 2: `call`, `return_call`, `ref.func`, exports, element segments,
 * global initializers, the start function and the `name` section are rewritten (references other
 * than direct calls go to the wrapper). The check function is appended after the defined functions,
 * then the wrappers; the two globals and the new types are appended, so no other index moves.
 */

export const RT_MODULE = 'vecron_rt';
export const OUT_OF_FUEL_IMPORT = 'out_of_fuel';
export const POLL_IMPORT = 'poll';
export const FUEL_EXPORT = '__vecron_fuel';
export const RESERVE_EXPORT = '__vecron_fuel_reserve';
export const START_EXPORT = '__vecron_start';
/** With `trackGrowFailures`: an exported mutable i32 global set to 1 when a `memory.grow` returns -1. */
export const GROW_FAILED_EXPORT = '__vecron_grow_failed';
export const DEFAULT_POLL_INTERVAL = 1 << 16;
/**
 * The host functions whose calls may suspend the guest (they do I/O): with JSPI the guest's worker
 * serves them on its own event loop while the guest's stack is suspended (see "Suspension" above).
 */
export const SUSPENDING_IMPORTS: ReadonlySet<string> = new Set(['http_request', 'db_query', 'file_read', 'file_write', 'file_list']);
/** The module names those functions are imported from. */
const SUSPENDING_MODULES: ReadonlySet<string> = new Set(['vecron', 'env']);
/** An exported mutable i32 global: 1 when the host gave the module suspending imports (JSPI), 0 otherwise. */
export const JSPI_MODE_EXPORT = '__vecron_jspi';
/** Prefix of the exports that take the suspender first and call the export of the rest of the name (`__vecron_jspi_run`). */
export const JSPI_EXPORT_PREFIX = '__vecron_jspi_';
/** Bytes per fuel unit charged for memory.copy / memory.fill / memory.init (as a shift). */
export const BULK_SHIFT = SIZE_COSTS.memoryBulk.shift;
/** Prefix of the exports added for the module's tables (`__vecron_table_0`, ...): the host reads their sizes. */
export const TABLE_EXPORT_PREFIX = '__vecron_table_';
/** Default clamp of the tables' entries (all tables together). */
export const DEFAULT_TABLE_MAX_ENTRIES = 100_000;
/** Values of the grow-failure global: which growth failed. */
export const GROW_FAILED_MEMORY = 1;
export const GROW_FAILED_TABLE = 2;

/** The exports of an instrumented instance that hold its fuel. */
export interface FuelGlobals {
  __vecron_fuel: { value: bigint };
  __vecron_fuel_reserve: { value: bigint };
}

/** Sets the fuel left to `n` (before a call into the instance). */
export function setFuel(exports: FuelGlobals | Record<string, unknown>, n: bigint | number, pollInterval = DEFAULT_POLL_INTERVAL): void {
  const e = exports as FuelGlobals;
  const total = BigInt(n);
  const c = total > BigInt(pollInterval) ? BigInt(pollInterval) : total;
  e.__vecron_fuel.value = c;
  e.__vecron_fuel_reserve.value = total - c;
}

/** The fuel left (negative when the last block ran past the budget). */
export function fuelLeft(exports: FuelGlobals | Record<string, unknown>): bigint {
  const e = exports as FuelGlobals;
  return e.__vecron_fuel.value + e.__vecron_fuel_reserve.value;
}

export interface InstrumentOptions {
  /** Clamp for every memory's maximum, in 64 KiB pages. */
  memoryMaxPages: number;
  /** Fuel units between two calls to `vecron_rt.poll` (default 2^16). */
  pollInterval?: number;
  /**
   * Clamp of the tables' entries, all tables together (default 100,000): the declared minimums must
   * fit (else `memory_limit`), and the maximums are lowered so that their sum fits, growth room
   * going to the tables in index order; `table.grow` past it returns -1 inside the guest.
   */
  tableMaxEntries?: number;
  /**
   * Add the exported global `__vecron_grow_failed` (mut i32, 0), set to 1 after any `memory.grow`
   * that returns -1, so the host can tell a trap after a failed growth (memory limit) from others.
   */
  trackGrowFailures?: boolean;
}

export interface InstrumentMeta {
  fuelExport: string;
  reserveExport: string;
  /** Export name of the former start function, when the module had one. */
  startExport?: string;
  runtimeModule: string;
  outOfFuelImport: string;
  pollImport: string;
  pollInterval: number;
  memoryMaxPages: number;
  tableMaxEntries: number;
  /** Memory limits after the clamp (for the imported one, what the host must supply). */
  memory?: { min: number; max: number; imported: boolean };
  /** Tables after the clamp, with the export names the host reads their sizes from. */
  tables: { min: number; max: number; export: string }[];
  /** With `trackGrowFailures`: the export name of the grow-failure flag. */
  growFailedExport?: string;
  /**
   * When the module imports a suspending function (SUSPENDING_IMPORTS): those imports take an
   * externref suspender first, the mode global's export, and the prefix of the export wrappers
   * that take the suspender (one per function export, the start export included).
   */
  jspi?: { imports: string[]; modeExport: string; exportPrefix: string };
}

export interface InstrumentResult {
  bytes: Uint8Array;
  /** The original module's description. */
  info: WasmModuleInfo;
  meta: InstrumentMeta;
}

const SHIFT = 2; // functions imported by the rewrite

interface Ids {
  fuel: number;
  reserve: number;
  check: number;
  outOfFuel: number;
  poll: number;
  funcImports: number;
  /** Index of the grow-failure global, or -1. */
  growFailed: number;
  /** Function index of each size-charging helper (see SIZE_COSTS). */
  charge: Record<SizeCostKind, number>;
  /** Function index of the helpers run after memory.grow / table.grow (grow-failure flag), or -1. */
  afterMemoryGrow: number;
  afterTableGrow: number;
  /** Per function import: the index of its suspension shim (a suspending import), or -1. */
  shimOf: Int32Array;
  /** Globals of the suspender (externref) and of the JSPI mode (i32), or -1 (no suspending import). */
  susp: number;
  jspiMode: number;
}

const HELPER_KINDS = Object.keys(SIZE_COSTS) as SizeCostKind[];

/** Internal: what the runtime's prepare needs besides the options. */
export interface InstrumentHooks {
  /**
   * Called once every body has been decoded and validated, before the module is rewritten (the
   * runtime checks the import policy here, so that code errors are reported first, as before).
   */
  afterValidate?: (info: WasmModuleInfo) => void;
}

export function instrument(bytes: Uint8Array, opts: InstrumentOptions & InstrumentHooks): InstrumentResult {
  const maxPages = opts.memoryMaxPages;
  if (!Number.isInteger(maxPages) || maxPages < 0 || maxPages > 65536) {
    throw new RangeError(`memoryMaxPages must be an integer in 0..65536, got ${maxPages}`);
  }
  const interval = opts.pollInterval ?? DEFAULT_POLL_INTERVAL;
  if (!Number.isInteger(interval) || interval < 1) throw new RangeError(`pollInterval must be a positive integer`);
  const tableMax = opts.tableMaxEntries ?? DEFAULT_TABLE_MAX_ENTRIES;
  if (!Number.isInteger(tableMax) || tableMax < 0 || tableMax > ENGINE_LIMITS.tableEntries) {
    throw new RangeError(`tableMaxEntries must be an integer in 0..${ENGINE_LIMITS.tableEntries}, got ${tableMax}`);
  }

  const info = parseModule(bytes, { walkCode: false });
  const fi = info.importedFunctionCount;
  const nb = info.bodies.length;
  const check = info.functionCount + SHIFT;
  const charge = {} as Record<SizeCostKind, number>;
  HELPER_KINDS.forEach((k, n) => (charge[k] = check + 1 + n));
  const track = opts.trackGrowFailures === true;
  const helperCount = HELPER_KINDS.length + (track ? 2 : 0);
  // Suspending imports: one shim each, right after the helpers (before the wrappers).
  const shimOf = new Int32Array(fi).fill(-1);
  const suspending: ImportInfo[] = [];
  for (const imp of info.imports) {
    if (imp.kind !== 'function' || !SUSPENDING_MODULES.has(imp.module) || !SUSPENDING_IMPORTS.has(imp.name)) continue;
    const t = info.types[imp.typeIndex!];
    if (t.params.length !== 2 || t.params[0] !== 'i32' || t.params[1] !== 'i32' || t.results.length !== 1 || t.results[0] !== 'i64') continue;
    shimOf[imp.index] = check + 1 + helperCount + suspending.length;
    suspending.push(imp);
  }
  const jspi = suspending.length > 0;
  const addedGlobals = 2 + (track ? 1 : 0);
  const ids: Ids = {
    fuel: info.globals.length,
    reserve: info.globals.length + 1,
    outOfFuel: fi,
    poll: fi + 1,
    check,
    funcImports: fi,
    growFailed: track ? info.globals.length + 2 : -1,
    charge,
    afterMemoryGrow: track ? check + 1 + HELPER_KINDS.length : -1,
    afterTableGrow: track ? check + 2 + HELPER_KINDS.length : -1,
    shimOf,
    susp: jspi ? info.globals.length + addedGlobals : -1,
    jspiMode: jspi ? info.globals.length + addedGlobals + 1 : -1,
  };
  const names = new FunctionNames(bytes, info);
  checkEngineLimits(info, names);
  const voidType = info.types.length;
  const wctx: WalkContext = { typeCount: info.types.length, funcCount: info.functionCount, globalCount: info.globals.length };

  // The code first (one pass that decodes, validates and writes each body): loops with parameters
  // and the register form need extra types, and the form of each function is known only then.
  const types: ExtraTypes = { base: voidType + 1, list: [], byKey: new Map() };
  const link: Linkage = {
    reg: new Uint8Array(nb).fill(1),
    wrapperOf: new Int32Array(nb).fill(-1),
    wrappers: [],
    wrapperBase: ids.check + 1 + helperCount + suspending.length,
  };
  let codeBytes = 0;
  for (const b of info.bodies) codeBytes += b.end - b.start;
  const S = new Emit(bytes, info, ids, wctx, types, link, codeBytes + (codeBytes >> 1) + 4096);
  S.names = names;
  // A function whose type is at the engine's limit of parameters or results cannot take the fuel
  // as one more: it keeps the fuel in a local (the global form).
  for (let j = 0; j < nb; j++) {
    const t = info.types[info.functionTypes[fi + j]];
    if (t.params.length >= ENGINE_LIMITS.params || t.results.length >= ENGINE_LIMITS.results) S.tailGlobal[j] = 1;
  }
  // First pass: every function in the register form (the usual case). A tail call that cannot pass
  // the fuel puts its function (and those that tail-call it) in the global form: then every body
  // is written again, now that the form of each callee is known.
  for (let i = 0; i < nb; i++) emitBody(S, i, true);
  const reg = linkFunctions(S.tailGlobal, S.tailTargets);
  if (reg.indexOf(0) >= 0) {
    link.reg = reg;
    link.wrapperOf.fill(-1);
    link.wrappers = [];
    S.o = 0;
    for (let i = 0; i < nb; i++) emitBody(S, i, reg[i] === 1);
  }
  if (opts.afterValidate) opts.afterValidate(info);

  for (const imp of info.imports) {
    if (imp.module === RT_MODULE) {
      throw new WasmFormatError('malformed', `the module imports '${imp.module}.${imp.name}': '${RT_MODULE}' is reserved`);
    }
  }
  for (const exp of info.exports) {
    if (exp.name.startsWith('__vecron_')) {
      throw new WasmFormatError('malformed', `the module exports '${exp.name}': the '__vecron_' prefix is reserved`);
    }
  }

  // Memory clamp.
  const patchStart: number[] = [];
  const patchEnd: number[] = [];
  /** Bytes to write, or a function index to write as a LEB128 (the many references). */
  const patchBytes: (number[] | number)[] = [];
  let memory: InstrumentMeta['memory'];
  for (const m of info.memories) {
    if (m.min > maxPages) {
      throw new WasmFormatError(
        'memory_limit',
        `the ${m.imported ? 'imported' : 'declared'} memory's initial size is ${m.min} pages (${m.min * 64} KiB), above the limit of ${maxPages} pages (${maxPages * 64} KiB)`,
        { offset: m.limitsStart },
      );
    }
    const max = Math.min(m.max ?? 65536, maxPages);
    memory = { min: m.min, max, imported: m.imported };
    patchStart.push(m.limitsStart);
    patchEnd.push(m.limitsEnd);
    patchBytes.push([0x01, ...encodeU32(m.min), ...encodeU32(max)]);
  }
  // Table clamp: the minimums must fit; the maximums are lowered so that their sum fits.
  let tableMins = 0;
  for (const t of info.tables) tableMins += t.min;
  if (tableMins > tableMax) {
    const big = info.tables.reduce((a, t, i) => (t.min > info.tables[a].min ? i : a), 0);
    throw new WasmFormatError(
      'memory_limit',
      `the module's tables declare ${tableMins} initial entries${info.tables.length > 1 ? ` together (table ${big}: ${info.tables[big].min})` : ''}, above the table limit of ${tableMax} entries (the step's table_limit)`,
      { offset: info.tables[big].limitsStart },
    );
  }
  let room = tableMax - tableMins;
  const tables: InstrumentMeta['tables'] = [];
  for (const [i, t] of info.tables.entries()) {
    const declared = t.max ?? ENGINE_LIMITS.tableEntries;
    const max = t.min + Math.min(declared - t.min, room);
    room -= max - t.min;
    tables.push({ min: t.min, max, export: `${TABLE_EXPORT_PREFIX}${i}` });
    if (t.imported) continue; // refused by the import policy; nothing to patch in the rewrite
    patchStart.push(t.limitsStart);
    patchEnd.push(t.limitsEnd);
    patchBytes.push([0x01, ...encodeU32(t.min), ...encodeU32(max)]);
  }
  // Function index references outside code (in input order): the wrapper of a register-form
  // function. Kept apart from the few limit patches and merged with them below.
  const refStart: number[] = [];
  const refEnd: number[] = [];
  const refTo: number[] = [];
  const refs = info.funcRefs;
  for (let i = 0; i < refs.length; i += 3) {
    const idx = refs[i + 2];
    if (idx < fi && shimOf[idx] < 0) continue;
    refStart.push(refs[i]);
    refEnd.push(refs[i + 1]);
    refTo.push(idx < fi ? shimOf[idx] : outsideRef(link, fi, idx));
  }
  // A suspending import takes the suspender first: (externref, i32, i32) -> i64.
  const suspendingType = jspi ? extraType(types, [0x60, 0x03, 0x6f, 0x7f, 0x7f, 0x01, 0x7e]) : -1;
  for (const imp of suspending) {
    patchStart.push(imp.typeStart!);
    patchEnd.push(imp.typeEnd!);
    patchBytes.push(encodeU32(suspendingType));
  }
  // The export wrappers that take the suspender: one per function export (and the start export).
  const jspiExports: { name: string; target: number; type: number; params: number }[] = [];
  if (jspi) {
    const add = (name: string, idx: number): void => {
      const t = info.types[info.functionTypes[idx]];
      if (t.params.length + 1 >= ENGINE_LIMITS.params) return; // cannot take one more parameter: not offered
      const target = idx < fi ? (shimOf[idx] >= 0 ? shimOf[idx] : idx) : outsideRef(link, fi, idx);
      const type = extraType(types, [
        0x60,
        ...encodeU32(t.params.length + 1),
        0x6f,
        ...t.params.map((v) => VALTYPE_BYTE[v]),
        ...encodeU32(t.results.length),
        ...t.results.map((v) => VALTYPE_BYTE[v]),
      ]);
      jspiExports.push({ name: `${JSPI_EXPORT_PREFIX}${name}`, target, type, params: t.params.length });
    };
    for (const e of info.exports) if (e.kind === 'function') add(e.name, e.index);
    if (info.start !== undefined) add(START_EXPORT, info.start);
  }
  // The patches in input order (copy walks them once): the limits, sorted, merged with the references.
  mergePatches(patchStart, patchEnd, patchBytes, refStart, refEnd, refTo);
  const startIndex = info.start === undefined ? -1 : outsideRef(link, fi, info.start);
  // The added bodies, after the module's own.
  const bodies = new ByteWriter(0);
  bodies.buf = S.ob;
  bodies.len = S.o;
  writeCheckBody(bodies, ids, interval);
  const memCapPages = memory ? memory.max : maxPages;
  const caps: Record<SizeCostKind, number> = {
    memoryBulk: memCapPages * 65536,
    tableBulk: tableMax,
    memoryGrow: memCapPages,
    tableGrow: tableMax,
  };
  for (const k of HELPER_KINDS) writeChargeHelper(bodies, ids, caps[k], SIZE_COSTS[k].perUnit, SIZE_COSTS[k].shift);
  if (track) {
    writeAfterGrowHelper(bodies, ids, GROW_FAILED_MEMORY);
    writeAfterGrowHelper(bodies, ids, GROW_FAILED_TABLE);
  }
  const helperType = extraType(types, [0x60, 0x01, 0x7f, 0x01, 0x7f]);
  for (const imp of suspending) writeSuspendShim(bodies, imp.index, ids);
  for (const j of link.wrappers) writeWrapper(bodies, info, j, ids);
  for (const x of jspiExports) writeJspiExport(bodies, x.target, x.params, ids);
  const regTypes = new Map<number, number>();
  const funcTypes = new Array<number>(nb);
  for (let j = 0; j < nb; j++) {
    const t = info.functionTypes[fi + j];
    if (!link.reg[j]) funcTypes[j] = t;
    else {
      let rt = regTypes.get(t);
      if (rt === undefined) regTypes.set(t, (rt = registerType(types, info, t)));
      funcTypes[j] = rt;
    }
  }
  const added = 1 + helperCount + suspending.length + link.wrappers.length + jspiExports.length;
  const codeCount = encodeU32(nb + added);
  checkAddedCounts(
    info,
    types.list.length + 1,
    nb + added,
    info.tables.length + (track ? 3 : 2) + (info.start === undefined ? 0 : 1) + (jspi ? 1 + jspiExports.length : 0),
    addedGlobals + (jspi ? 2 : 0),
  );

  let codeSectionSize = 0;
  for (const s of info.sections) if (s.id === 10) codeSectionSize = s.end - s.offset;
  const out = new ByteWriter(bytes.length - codeSectionSize + bodies.len + 4096);
  out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  let patchAt = 0;
  /** Copies [from, to) of the input, applying the patches that fall inside. */
  const copy = (from: number, to: number): void => {
    let cur = from;
    while (patchAt < patchStart.length && patchStart[patchAt] < to) {
      const s = patchStart[patchAt];
      if (s < cur) {
        patchAt++;
        continue;
      }
      out.range(bytes, cur, s);
      const pb = patchBytes[patchAt];
      if (typeof pb === 'number') out.u32(pb);
      else out.bytes(pb);
      cur = patchEnd[patchAt];
      patchAt++;
    }
    out.range(bytes, cur, to);
  };
  // Section with a 5-byte padded size, patched when done.
  const open = (id: number): number => {
    out.u8(id);
    const at = out.len;
    out.u32Padded(0);
    return at;
  };
  const close = (at: number): void => out.patchU32Padded(at, out.len - at - 5);
  /** A vector section: new count, the old entries (patched), then `append`. */
  const vecSection = (id: number, sec: SectionInfo | undefined, added: number, append: () => void): void => {
    const at = open(id);
    out.u32((sec?.count ?? 0) + added);
    if (sec) copy(sec.entriesStart!, sec.end);
    append();
    close(at);
  };

  const byId = new Map<number, SectionInfo>();
  for (const s of info.sections) if (s.id !== 0) byId.set(s.id, s);
  // Custom sections stay after the standard section they followed.
  const customsAfter = new Map<number, SectionInfo[]>();
  let anchor = 0;
  for (const s of info.sections) {
    if (s.id === 0) {
      const list = customsAfter.get(anchor) ?? [];
      list.push(s);
      customsAfter.set(anchor, list);
    } else anchor = s.id;
  }
  const emitCustoms = (after: number): void => {
    for (const s of customsAfter.get(after) ?? []) {
      if (s.name === 'name') {
        const renamed = remapNameSection(bytes, s, fi);
        if (renamed) out.bytes(renamed);
      } else out.bytes(bytes.subarray(s.offset, s.end));
    }
  };

  emitCustoms(0);
  for (const id of [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11]) {
    const sec = byId.get(id);
    switch (id) {
      case 1:
        vecSection(1, sec, 1 + types.list.length, () => {
          out.bytes([0x60, 0x00, 0x00]);
          for (const t of types.list) out.bytes(t);
        });
        break;
      case 2:
        vecSection(2, sec, 2, () => {
          out.name(RT_MODULE).name(OUT_OF_FUEL_IMPORT).u8(0x00).u32(voidType);
          out.name(RT_MODULE).name(POLL_IMPORT).u8(0x00).u32(voidType);
        });
        break;
      case 3: {
        // the register form has its own type; the check function; the wrappers
        const at = open(3);
        out.u32(nb + added);
        for (let j = 0; j < nb; j++) out.u32(funcTypes[j]);
        out.u32(voidType);
        for (let h = 0; h < helperCount; h++) out.u32(helperType);
        for (const imp of suspending) out.u32(imp.typeIndex!);
        for (const j of link.wrappers) out.u32(info.functionTypes[fi + j]);
        for (const x of jspiExports) out.u32(x.type);
        close(at);
        break;
      }
      case 6:
        vecSection(6, sec, addedGlobals + (jspi ? 2 : 0), () => {
          out.bytes([0x7e, 0x01, 0x42, 0x00, 0x0b]); // fuel: mut i64 = 0
          out.bytes([0x7e, 0x01, 0x42, 0x00, 0x0b]); // reserve: mut i64 = 0
          if (ids.growFailed >= 0) out.bytes([0x7f, 0x01, 0x41, 0x00, 0x0b]); // grow failed: mut i32 = 0
          if (jspi) {
            out.bytes([0x6f, 0x01, 0xd0, 0x6f, 0x0b]); // suspender: mut externref = null
            out.bytes([0x7f, 0x01, 0x41, 0x00, 0x0b]); // JSPI mode: mut i32 = 0
          }
        });
        break;
      case 7:
        vecSection(7, sec, (info.start === undefined ? 2 : 3) + (ids.growFailed >= 0 ? 1 : 0) + tables.length + (jspi ? 1 + jspiExports.length : 0), () => {
          for (const [i, t] of tables.entries()) out.name(t.export).u8(0x01).u32(i);
          out.name(FUEL_EXPORT).u8(0x03).u32(ids.fuel);
          out.name(RESERVE_EXPORT).u8(0x03).u32(ids.reserve);
          if (ids.growFailed >= 0) out.name(GROW_FAILED_EXPORT).u8(0x03).u32(ids.growFailed);
          if (info.start !== undefined) {
            out.name(START_EXPORT).u8(0x00).u32(startIndex);
          }
          if (jspi) {
            out.name(JSPI_MODE_EXPORT).u8(0x03).u32(ids.jspiMode);
            for (const [k, x] of jspiExports.entries())
              out
                .name(x.name)
                .u8(0x00)
                .u32(link.wrapperBase + link.wrappers.length + k);
          }
        });
        break;
      case 8:
        // Dropped: the start function is exported as __vecron_start (see above).
        if (sec) while (patchAt < patchStart.length && patchStart[patchAt] < sec.end) patchAt++;
        break;
      case 10: {
        out
          .u8(10)
          .u32(codeCount.length + bodies.len)
          .bytes(codeCount)
          .range(bodies.buf, 0, bodies.len);
        break;
      }
      default:
        if (sec) {
          const at = open(id);
          copy(sec.start, sec.end);
          close(at);
        }
    }
    if (sec) emitCustoms(id);
  }

  return {
    bytes: out.result().slice(),
    info,
    meta: {
      fuelExport: FUEL_EXPORT,
      reserveExport: RESERVE_EXPORT,
      ...(info.start === undefined ? {} : { startExport: START_EXPORT }),
      runtimeModule: RT_MODULE,
      outOfFuelImport: OUT_OF_FUEL_IMPORT,
      pollImport: POLL_IMPORT,
      pollInterval: interval,
      memoryMaxPages: maxPages,
      tableMaxEntries: tableMax,
      ...(memory ? { memory } : {}),
      tables,
      ...(ids.growFailed >= 0 ? { growFailedExport: GROW_FAILED_EXPORT } : {}),
      ...(jspi ? { jspi: { imports: suspending.map((i) => `${i.module}.${i.name}`), modeExport: JSPI_MODE_EXPORT, exportPrefix: JSPI_EXPORT_PREFIX } } : {}),
    },
  };
}

/** State of one instrument() call, and of the body being written. */
class Emit {
  readonly bytes: Uint8Array;
  readonly info: WasmModuleInfo;
  readonly ids: Ids;
  readonly wctx: WalkContext;
  readonly types: ExtraTypes;
  readonly link: Linkage;
  /** Reader over the current body (the inline fast paths fall back to it). */
  readonly rd: Reader;
  /** Decodes the rare instructions (prefixed, typed select, call_indirect, ...). */
  readonly walker: CodeWalker;
  /** The code section's bodies written so far: ob[0, o). */
  ob: Uint8Array;
  o = 0;
  /** Per body: has a tail call that cannot pass the fuel (return_call_indirect, to an import). */
  readonly tailGlobal: Uint8Array;
  /** Pairs [caller body, callee body] of the return_calls between defined functions, or null. */
  tailTargets: number[] | null = null;
  /** Per type index: the block type of `[] -> results` (the register form's wrapping block). */
  readonly resultBt: (number[] | undefined)[] = [];
  // The body being written.
  i = 0;
  reg = true;
  end = 0;
  funcIndex = 0;
  params = 0;
  localCount = 0;
  /** The fuel counter's local. */
  F = 0;
  G = 0;
  /** Next input byte. */
  p = 0;
  /** Output start and cost of the current basic block. */
  bs = 0;
  cost = 0;
  /** The global is behind F since the last block's charge (register form only). */
  dirty = true;
  /** Open labels (the function's included); open loops. */
  depth = 0;
  loops = 0;
  names: FunctionNames | null = null;

  constructor(bytes: Uint8Array, info: WasmModuleInfo, ids: Ids, wctx: WalkContext, types: ExtraTypes, link: Linkage, capacity: number) {
    this.bytes = bytes;
    this.info = info;
    this.ids = ids;
    this.wctx = wctx;
    this.types = types;
    this.link = link;
    this.rd = new Reader(bytes);
    this.walker = new CodeWalker(this.rd, wctx);
    this.ob = new Uint8Array(capacity);
    this.tailGlobal = new Uint8Array(info.bodies.length);
    this.G = ids.fuel;
  }
}

/** Bytes one instruction can add at most to the output, besides br_table (checked on its own). */
const OUT_MARGIN = 512;

function growOut(S: Emit, need: number): void {
  let cap = S.ob.length * 2;
  while (cap < S.o + need) cap *= 2;
  const next = new Uint8Array(cap);
  next.set(S.ob.subarray(0, S.o));
  S.ob = next;
}

function putU32(ob: Uint8Array, o: number, v: number): number {
  v >>>= 0;
  while (v >= 0x80) {
    ob[o++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  ob[o++] = v;
  return o;
}

function putStore(ob: Uint8Array, o: number, F: number, G: number): number {
  ob[o++] = 0x20;
  o = putU32(ob, o, F);
  ob[o++] = 0x24;
  return putU32(ob, o, G);
}

/** F = fuel */
function putReload(ob: Uint8Array, o: number, F: number, G: number): number {
  ob[o++] = 0x23;
  o = putU32(ob, o, G);
  ob[o++] = 0x21;
  return putU32(ob, o, F);
}

/** `if (F < 0) { [fuel = F;] call $check; F = fuel }` */
function putCheck(ob: Uint8Array, o: number, F: number, G: number, C: number, reg: boolean): number {
  ob[o++] = 0x20;
  o = putU32(ob, o, F);
  ob[o++] = 0x42;
  ob[o++] = 0x00;
  ob[o++] = 0x53;
  ob[o++] = 0x04;
  ob[o++] = 0x40;
  if (reg) o = putStore(ob, o, F, G);
  ob[o++] = 0x10;
  o = putU32(ob, o, C);
  o = putReload(ob, o, F, G);
  ob[o++] = 0x0b;
  return o;
}

const scratch = new Uint8Array(128);

/**
 * Ends the current basic block: inserts its charge (F = F - cost; global form: and fuel = F) in
 * front of its bytes [bs, o), which move up. A block that costs nothing gets no charge.
 */
function endBlock(S: Emit): void {
  const cost = S.cost;
  if (cost === 0) return;
  const c = scratch;
  const F = S.F;
  let k = 0;
  c[k++] = 0x20;
  k = putU32(c, k, F);
  c[k++] = 0x42;
  let v = cost; // > 0: signed LEB128
  while (v >= 0x40) {
    c[k++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  c[k++] = v;
  c[k++] = 0x7d;
  if (S.reg) {
    c[k++] = 0x21;
    k = putU32(c, k, F);
  } else {
    c[k++] = 0x22;
    k = putU32(c, k, F);
    c[k++] = 0x24;
    k = putU32(c, k, S.G);
  }
  const ob = S.ob;
  const bs = S.bs;
  if (S.o > bs) ob.copyWithin(bs + k, bs, S.o);
  for (let j = 0; j < k; j++) ob[bs + j] = c[j];
  S.o += k;
}

function startBlock(S: Emit): void {
  S.bs = S.o;
  S.cost = 0;
  S.dirty = true;
}

/** Before an instruction that can trap: fuel = F, if the global is behind. */
function exact(S: Emit): void {
  if (S.dirty) {
    if (S.reg) S.o = putStore(S.ob, S.o, S.F, S.G);
    S.dirty = false;
  }
}

/** Single-byte opcodes that cannot trap (control flow is handled on its own). */
const SAFE_OP = new Uint8Array(256);
for (const op of [0x01, 0x1a, 0x1b, 0x1c, 0x20, 0x21, 0x22, 0x23, 0x24, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0xd0, 0xd1, 0xd2]) SAFE_OP[op] = 1;
for (let op = 0x45; op <= 0xc4; op++) SAFE_OP[op] = 1;
for (const op of [0x6d, 0x6e, 0x6f, 0x70, 0x7f, 0x80, 0x81, 0x82, 0xa8, 0xa9, 0xaa, 0xab, 0xae, 0xaf, 0xb0, 0xb1]) SAFE_OP[op] = 0; // div, rem, trunc

// What `straight` does with each opcode; K_OTHER: control flow and the rare ones (emitBody).
// K_OTHER = 0, the table's default
const K_LOCAL = 1;
const K_NUM = 2; // no immediate, cannot trap
const K_TRAP = 3; // no immediate, can trap
const K_CONST = 4; // i32.const, i64.const
const K_MEM = 5;
const K_GLOBAL = 6;
const K_FLOAT = 7; // f32.const, f64.const
const KIND = new Uint8Array(256);
for (let op = 0; op < 256; op++) {
  if (OP_CLASS[op] === I_NONE && op !== 0x00 && op !== 0x05 && op !== 0x0b && op !== 0x0f) KIND[op] = SAFE_OP[op] ? K_NUM : K_TRAP;
  else if (OP_CLASS[op] === I_MEMARG) KIND[op] = K_MEM;
}
KIND[0x20] = KIND[0x21] = KIND[0x22] = K_LOCAL;
KIND[0x23] = KIND[0x24] = K_GLOBAL;
KIND[0x41] = KIND[0x42] = K_CONST;
KIND[0x43] = KIND[0x44] = K_FLOAT;

/**
 * The hot loop: copies the straight-line instructions from S.p (locals, constants, numeric ops,
 * loads and stores, globals), renumbering the declared locals in the register form and storing the
 * fuel before the first one that can trap; counts them into the block's cost. Stops at the first
 * other instruction and returns its opcode (S.p at it), or -1 when the output needs room, -2 at the
 * end of the body. Small on purpose: V8 optimizes it early, which is what a cold process needs.
 */
function straight(S: Emit): number {
  const src = S.bytes;
  const end = S.end;
  const reg = S.reg;
  const params = S.params;
  const ob = S.ob;
  const limit = ob.length - OUT_MARGIN;
  let p = S.p;
  let o = S.o;
  let cost = S.cost;
  let ret = 0;
  for (;;) {
    if (o > limit) {
      ret = -1;
      break;
    }
    if (p >= end) {
      ret = -2;
      break;
    }
    const op = src[p];
    const k = KIND[op];
    if (k === K_LOCAL) {
      let v = p + 1 < end ? src[p + 1] : 0x80;
      let q = p + 2;
      if (v >= 0x80) {
        S.rd.pos = p + 1;
        v = S.rd.u32();
        q = S.rd.pos;
      }
      if (v >= S.localCount) throw malformed(`local index ${v} out of range`, p + 1, S.funcIndex);
      ob[o++] = op;
      if (reg && v >= params) {
        if (v < 0x7f) ob[o++] = v + 1;
        else o = putU32(ob, o, v + 1);
      } else for (let r = p + 1; r < q; r++) ob[o++] = src[r];
      p = q;
    } else if (k === K_NUM) {
      ob[o++] = op;
      p++;
    } else if (k === K_CONST) {
      let q = p + 2;
      if (p + 1 >= end || src[p + 1] >= 0x80) {
        S.rd.pos = p + 1;
        if (op === 0x41) S.rd.s32();
        else S.rd.skipS64();
        q = S.rd.pos;
      }
      for (let r = p; r < q; r++) ob[o++] = src[r];
      p = q;
    } else if (k === K_MEM) {
      let align = p + 1 < end ? src[p + 1] : 0x80;
      let q = p + 2;
      if (align >= 0x80) {
        S.rd.pos = p + 1;
        align = S.rd.u32();
        q = S.rd.pos;
      }
      if (align & 0x40) throw unsupported('multi-memory', 'memory access with a memory index', p, S.funcIndex);
      if (align >= 32) throw malformed('alignment out of range', p + 1, S.funcIndex);
      if (q < end && src[q] < 0x80) q++;
      else {
        S.rd.pos = q;
        S.rd.u32();
        q = S.rd.pos;
      }
      if (S.dirty) {
        if (reg) o = putStore(ob, o, S.F, S.G);
        S.dirty = false;
      }
      for (let r = p; r < q; r++) ob[o++] = src[r];
      p = q;
    } else if (k === K_GLOBAL) {
      let v = p + 1 < end ? src[p + 1] : 0x80;
      let q = p + 2;
      if (v >= 0x80) {
        S.rd.pos = p + 1;
        v = S.rd.u32();
        q = S.rd.pos;
      }
      if (v >= S.wctx.globalCount) throw malformed(`global index ${v} out of range`, p + 1, S.funcIndex);
      for (let r = p; r < q; r++) ob[o++] = src[r];
      p = q;
    } else if (k === K_TRAP) {
      if (S.dirty) {
        if (reg) o = putStore(ob, o, S.F, S.G);
        S.dirty = false;
      }
      ob[o++] = op;
      p++;
    } else if (k === K_FLOAT) {
      const q = p + 1 + (op === 0x43 ? 4 : 8);
      if (q > end) throw malformed('unexpected end of data', p + 1, S.funcIndex);
      for (let r = p; r < q; r++) ob[o++] = src[r];
      p = q;
    } else {
      ret = op;
      break;
    }
    cost++;
  }
  S.p = p;
  S.o = o;
  S.cost = cost;
  return ret;
}

/**
 * Writes one body, instrumented, at S.ob[S.o]: decodes and validates each instruction once (the
 * same checks as CodeWalker, which decodes the rare ones) and writes it with what the rewrite adds,
 * as it goes. The charge of a basic block is known at its end: it is then inserted at the block's
 * start (endBlock). A loop is first written in the call-free form (see LOOP_WRAP); if a call turns
 * up inside, its prologue is rewritten in the form with the check inline when the loop ends.
 *
 * Register form (reg): the function takes the fuel counter as an extra last i64 parameter (F) and
 * returns it as an extra last result; direct calls between such functions pass it along, so no
 * load of the global sits on the path from one call to the next (V8 keeps it in a register;
 * through the global every call boundary waited for a store to reach a load). The body is wrapped
 * in `block (result R*) ... end local.get F` so that branches to the function label keep their
 * arity; `return` pushes F first; declared locals move up by one. F is stored to the global only
 * where the global must be exact: before an instruction that can trap, before every call (so that
 * a callee that overflows the stack, or an import, sees it) and before the slow path. Exports,
 * tables, `ref.func` and the start function get a wrapper with the original type that loads the
 * global, calls, and stores the result back.
 *
 * Global form (a function with a tail call that cannot pass the fuel: return_call_indirect, a
 * return_call to an import or to a global-form function). F is an added local, loaded at entry and
 * after calls, and every charge stores it to the global.
 */
function emitBody(S: Emit, i: number, reg: boolean): void {
  const src = S.bytes;
  const info = S.info;
  const body = info.bodies[i];
  const fi = S.ids.funcImports;
  const funcIndex = fi + i;
  const rd = S.rd;
  rd.pos = body.start;
  rd.end = body.end;
  rd.funcIndex = funcIndex;
  const groups = rd.u32();
  const groupsEnd = rd.pos;
  rd.pos = body.start;
  const declared = skipLocals(rd);
  const localsEnd = rd.pos;
  const typeIndex = info.functionTypes[funcIndex];
  const params = info.types[typeIndex].params.length;
  S.i = i;
  S.reg = reg;
  S.end = body.end;
  S.funcIndex = funcIndex;
  S.params = params;
  S.localCount = params + declared;
  if (params + declared + 1 > ENGINE_LIMITS.locals) {
    throw new WasmFormatError(
      'unsupported_feature',
      `${S.names!.describe(funcIndex)} has ${params + declared} locals (${params} parameters + ${declared} declared, at byte offset ${body.start}); ` +
        `fuel metering adds one and the engine's limit is ${ENGINE_LIMITS.locals}: a function may have at most ${ENGINE_LIMITS.locals - 1} locals here`,
      { offset: body.start, funcIndex },
    );
  }
  // Added local: F (the fuel counter; the extra param in the register form).
  const F = (S.F = reg ? params : params + declared);
  const G = S.G;

  if (S.o + (localsEnd - body.start) + OUT_MARGIN > S.ob.length) growOut(S, localsEnd - body.start + OUT_MARGIN);
  let ob = S.ob;
  let o = S.o;
  const sizeAt = o;
  o += 5;
  o = putU32(ob, o, groups + (reg ? 0 : 1));
  for (let q = groupsEnd; q < localsEnd; q++) ob[o++] = src[q];
  if (!reg) {
    ob[o++] = 0x01;
    ob[o++] = 0x7e;
  }
  if (reg) {
    let bt = S.resultBt[typeIndex];
    if (bt === undefined) bt = S.resultBt[typeIndex] = resultBlockType(S.types, info.types[typeIndex].results);
    ob[o++] = 0x02;
    for (let q = 0; q < bt.length; q++) ob[o++] = bt[q];
  } else o = putReload(ob, o, F, G);
  // The entry block: its charge goes before the check.
  S.o = o;
  startBlock(S);
  S.o = putCheck(ob, o, F, G, S.ids.check, reg);
  S.depth = 1;
  labKind[0] = 0;
  labCum[0] = 0;
  S.loops = 0;
  S.p = localsEnd;

  for (;;) {
    const op = straight(S);
    if (op === -1) {
      growOut(S, OUT_MARGIN);
      continue;
    }
    if (op === -2) throw malformed('function body ends before its final end', S.p, funcIndex);
    if (S.o + OUT_MARGIN > S.ob.length) growOut(S, OUT_MARGIN);
    control(S, op);
    if (S.depth === 0) break;
  }
  if (S.p !== body.end) throw malformed('instructions after the final end of a function body', S.p, funcIndex);
  ob = S.ob;
  o = S.o;
  const size = o - sizeAt - 5;
  if (size > ENGINE_LIMITS.functionBytes) {
    throw new WasmFormatError(
      'unsupported_feature',
      `${S.names!.describe(funcIndex)} is ${body.end - body.start} bytes (at byte offsets ${body.start}..${body.end}); with fuel metering it becomes ${size} bytes, ` +
        `above the engine's limit of ${ENGINE_LIMITS.functionBytes} bytes per function: split it into smaller functions`,
      { offset: body.start, funcIndex },
    );
  }
  for (let q = 0; q < 4; q++) ob[sizeAt + q] = ((size >>> (7 * q)) & 0x7f) | 0x80;
  ob[sizeAt + 4] = (size >>> 28) & 0x0f;
  S.o = o;
}

/** Reads an index immediate (u32) at S.p, the instruction's first immediate. */
function readIdx(S: Emit): number {
  const src = S.bytes;
  const p = S.p;
  if (p < S.end) {
    const v = src[p];
    if (v < 0x80) {
      S.p = p + 1;
      return v;
    }
  }
  S.rd.pos = p;
  const v = S.rd.u32();
  S.p = S.rd.pos;
  return v;
}

/** A branch depth, shifted by the labels added around the loops it crosses. */
function branchDepth(S: Emit, v: number): number {
  if (S.loops === 0) return v;
  const top = S.depth - 1;
  return v + labCum[top] - labCum[top - Math.min(v, top)];
}

/** One control instruction (or a rare one) at S.p: see emitBody. */
function control(S: Emit, op: number): void {
  const start = S.p;
  switch (op) {
    case 0x0b: {
      // end
      S.p = start + 1;
      const d = --S.depth;
      endBlock(S);
      if (d > 0 && labCum[d] !== labCum[d - 1]) loopEnd(S, d);
      else if (d === 0 && S.reg) {
        // the function's end; the register form ends its wrapping block and returns F too
        const ob = S.ob;
        ob[S.o++] = 0x0b;
        ob[S.o++] = 0x20;
        S.o = putU32(ob, S.o, S.F);
        ob[S.o++] = 0x0b;
      } else S.ob[S.o++] = 0x0b;
      startBlock(S);
      return;
    }
    case 0x05: // else
      if (labKind[S.depth - 1] !== 1) throw malformed('else without if', start, S.funcIndex);
      labKind[S.depth - 1] = 2;
      S.p = start + 1;
      endBlock(S);
      S.ob[S.o++] = 0x05;
      startBlock(S);
      return;
    case 0x02: // block
    case 0x04: {
      // if
      S.cost++;
      const p = blockType(S, start + 1);
      const d = S.depth;
      if (d === labKind.length) growLabels();
      labKind[d] = op === 0x04 ? 1 : 0;
      labCum[d] = labCum[d - 1];
      S.depth = d + 1;
      const ob = S.ob;
      let o = S.o;
      for (let q = start; q < p; q++) ob[o++] = S.bytes[q];
      S.o = o;
      S.p = p;
      if (op === 0x04) {
        endBlock(S);
        startBlock(S);
      }
      return;
    }
    case 0x03:
      loopStart(S);
      return;
    case 0x0c: // br
    case 0x0d: {
      // br_if
      S.cost++;
      S.p = start + 1;
      const v = readIdx(S);
      if (v >= S.depth) throw malformed(`branch depth ${v} out of range`, start + 1, S.funcIndex);
      endBlock(S);
      const ob = S.ob;
      ob[S.o++] = op;
      S.o = putU32(ob, S.o, branchDepth(S, v));
      startBlock(S);
      return;
    }
    case 0x0f: // return
      S.cost++;
      S.p = start + 1;
      endBlock(S);
      if (S.reg) {
        S.ob[S.o++] = 0x20;
        S.o = putU32(S.ob, S.o, S.F);
      }
      S.ob[S.o++] = 0x0f;
      startBlock(S);
      return;
    case 0x00: // unreachable
      S.cost++;
      S.p = start + 1;
      exact(S);
      endBlock(S);
      S.ob[S.o++] = 0x00;
      startBlock(S);
      return;
    case 0x10: {
      // call
      S.cost++;
      S.p = start + 1;
      const v = readIdx(S);
      if (v >= S.wctx.funcCount) throw malformed(`function index ${v} out of range`, start + 1, S.funcIndex);
      if (S.loops > 0) labCall[loopLab[S.loops - 1]] = 1;
      exact(S);
      const fi = S.ids.funcImports;
      const ob = S.ob;
      let o = S.o;
      const F = S.F;
      if (v >= fi) {
        const calleeReg = S.link.reg[v - fi] === 1;
        if (calleeReg) {
          ob[o++] = 0x20;
          o = putU32(ob, o, F);
        }
        ob[o++] = 0x10;
        o = putU32(ob, o, v + SHIFT);
        if (!calleeReg) o = putReload(ob, o, F, S.G);
        else if (S.reg) {
          ob[o++] = 0x21;
          o = putU32(ob, o, F);
        } else {
          ob[o++] = 0x22;
          o = putU32(ob, o, F);
          ob[o++] = 0x24;
          o = putU32(ob, o, S.G);
        }
        S.dirty = true; // a callee in the register form does not store the global
      } else {
        const shim = S.ids.shimOf[v];
        if (shim >= 0) {
          ob[o++] = 0x10; // a suspending import: through its shim (no fuel of its own, like the import)
          o = putU32(ob, o, shim);
        } else for (let q = start; q < S.p; q++) ob[o++] = S.bytes[q];
        o = putReload(ob, o, F, S.G); // the host may have charged the global
      }
      S.o = o;
      return;
    }
    case 0x0e:
      brTable(S);
      return;
    default:
      rare(S, op);
  }
}

function loopStart(S: Emit): void {
  const start = S.p;
  S.cost++;
  const p = blockType(S, start + 1);
  const bti = S.walker.blockTypeIndex;
  let slowBt: number[] | null = null;
  if (bti >= 0) {
    const ps = S.info.types[bti].params;
    if (ps.length > 0)
      slowBt = encodeS33(
        loopParamType(
          S.types,
          ps.map((t) => VALTYPE_BYTE[t]),
        ),
      );
  }
  S.p = p;
  endBlock(S);
  const d = S.depth;
  if (d === labKind.length) growLabels();
  S.depth = d + 1;
  labKind[d] = 0;
  labCum[d] = labCum[d - 1] + LOOP_WRAP;
  labLs[d] = S.o;
  labBt[d] = start + 1;
  labBtLen[d] = p - start - 1;
  labCall[d] = 0;
  loopLab[S.loops++] = d;
  // block $exit (bt) loop $outer (bt) check block $slow (slowBt) loop $inner (bt) br_if $slow (F < 0)
  const src = S.bytes;
  const ob = S.ob;
  let o = S.o;
  ob[o++] = 0x02;
  for (let q = start + 1; q < p; q++) ob[o++] = src[q];
  ob[o++] = 0x03;
  for (let q = start + 1; q < p; q++) ob[o++] = src[q];
  o = putCheck(ob, o, S.F, S.G, S.ids.check, S.reg);
  ob[o++] = 0x02;
  if (slowBt === null) ob[o++] = 0x40;
  else for (let q = 0; q < slowBt.length; q++) ob[o++] = slowBt[q];
  ob[o++] = 0x03;
  for (let q = start + 1; q < p; q++) ob[o++] = src[q];
  ob[o++] = 0x20;
  o = putU32(ob, o, S.F);
  ob[o++] = 0x42;
  ob[o++] = 0x00;
  ob[o++] = 0x53;
  ob[o++] = 0x0d;
  ob[o++] = 0x01;
  labLe[d] = o;
  S.o = o;
  startBlock(S);
}

/** The end of the loop of label d (its last block is charged). */
function loopEnd(S: Emit, d: number): void {
  S.loops--;
  const ob = S.ob;
  if (labCall[d]) {
    // The loop calls: its check inline (block $exit block block loop $inner, check), and so does
    // the loop around it.
    const ls = labLs[d];
    const le = labLe[d];
    const c = scratch;
    let k = 0;
    const bt = labBt[d];
    const btLen = labBtLen[d];
    for (let r = 0; r < 4; r++) {
      c[k++] = r === 3 ? 0x03 : 0x02;
      for (let q = 0; q < btLen; q++) c[k++] = S.bytes[bt + q];
    }
    k = putCheck(c, k, S.F, S.G, S.ids.check, S.reg);
    ob.copyWithin(ls + k, le, S.o);
    for (let q = 0; q < k; q++) ob[ls + q] = c[q];
    let o = S.o - (le - ls - k);
    if (S.loops > 0) labCall[loopLab[S.loops - 1]] = 1;
    ob[o++] = 0x0b;
    ob[o++] = 0x0b;
    ob[o++] = 0x0b;
    ob[o++] = 0x0b;
    S.o = o;
  } else {
    // end $inner; br $exit; end $slow; br $outer; end $outer; end $exit
    let o = S.o;
    ob[o++] = 0x0b;
    ob[o++] = 0x0c;
    ob[o++] = 0x02;
    ob[o++] = 0x0b;
    ob[o++] = 0x0c;
    ob[o++] = 0x00;
    ob[o++] = 0x0b;
    ob[o++] = 0x0b;
    S.o = o;
  }
}

function brTable(S: Emit): void {
  const start = S.p;
  S.cost++;
  const rd = S.rd;
  rd.pos = start + 1;
  const n = rd.u32();
  if (n > S.end - rd.pos) throw malformed('br_table longer than the body', start + 1, S.funcIndex);
  const need = 5 * (n + 2) + OUT_MARGIN;
  if (S.o + need > S.ob.length) growOut(S, need);
  endBlock(S);
  const ob = S.ob;
  let o = S.o;
  ob[o++] = 0x0e;
  o = putU32(ob, o, n);
  for (let k = 0; k <= n; k++) {
    const v = rd.u32();
    if (v >= S.depth) throw malformed('br_table depth out of range', start + 1, S.funcIndex);
    o = putU32(ob, o, branchDepth(S, v));
  }
  S.p = rd.pos;
  S.o = o;
  startBlock(S);
}

/** return_call, ref.func, and what the walker decodes (prefixed ops, call_indirect, memory.grow...). */
function rare(S: Emit, op: number): void {
  const start = S.p;
  const fi = S.ids.funcImports;
  S.cost++;
  if (op === 0x12 || op === 0xd2) {
    // return_call, ref.func
    S.p = start + 1;
    const v = readIdx(S);
    if (v >= S.wctx.funcCount) throw malformed(`function index ${v} out of range`, start + 1, S.funcIndex);
    if (op === 0xd2) {
      S.ob[S.o++] = 0xd2;
      S.o = putU32(S.ob, S.o, v < fi ? (S.ids.shimOf[v] >= 0 ? S.ids.shimOf[v] : v) : outsideRef(S.link, fi, v));
      return;
    }
    if (v >= fi) {
      exact(S);
      const j = v - fi;
      (S.tailTargets ??= []).push(S.i, j);
      // register form: the target is in the register form too (see linkFunctions)
      if (S.reg && S.link.reg[j] === 1) {
        S.ob[S.o++] = 0x20;
        S.o = putU32(S.ob, S.o, S.F);
      }
      S.ob[S.o++] = 0x12;
      S.o = putU32(S.ob, S.o, S.reg ? v + SHIFT : outsideRef(S.link, fi, v));
    } else {
      S.tailGlobal[S.i] = 1;
      if (S.ids.shimOf[v] >= 0) {
        S.ob[S.o++] = 0x12;
        S.o = putU32(S.ob, S.o, S.ids.shimOf[v]);
      } else copyInstr(S, start);
    }
    endBlock(S);
    startBlock(S);
    return;
  }
  S.rd.pos = start;
  const wop = S.walker.next();
  S.p = S.rd.pos;
  switch (wop) {
    case 0x11: // call_indirect (calls the wrapper or an import: the global is up to date after)
      if (S.loops > 0) labCall[loopLab[S.loops - 1]] = 1;
      exact(S);
      copyInstr(S, start);
      S.o = putReload(S.ob, S.o, S.F, S.G);
      return;
    case 0x13: // return_call_indirect
      S.tailGlobal[S.i] = 1;
      copyInstr(S, start);
      endBlock(S);
      startBlock(S);
      return;
    case 0xfc0a: // memory.copy
    case 0xfc0b: // memory.fill
    case 0xfc08: // memory.init
      sizeCharge(S, S.ids.charge.memoryBulk);
      copyInstr(S, start);
      return;
    case 0xfc0c: // table.init
    case 0xfc0e: // table.copy
    case 0xfc11: // table.fill
      sizeCharge(S, S.ids.charge.tableBulk);
      copyInstr(S, start);
      return;
    case 0x40: // memory.grow
    case 0xfc0f: // table.grow
      sizeCharge(S, wop === 0x40 ? S.ids.charge.memoryGrow : S.ids.charge.tableGrow);
      copyInstr(S, start);
      // the result on top: the helper sets the grow-failure flag when it is -1 and returns it
      if (S.ids.growFailed >= 0) {
        S.ob[S.o++] = 0x10;
        S.o = putU32(S.ob, S.o, wop === 0x40 ? S.ids.afterMemoryGrow : S.ids.afterTableGrow);
      }
      return;
    default:
      if (wop > 0xff ? wop > 0xfc07 : SAFE_OP[wop] === 0) exact(S);
      copyInstr(S, start);
  }
}

/**
 * Before an instruction whose work grows with its size operand (on top of the stack, an i32): a
 * call to the helper that charges that size and runs the check, so the instruction never starts
 * without the fuel for it. The global is made exact first and F reloaded after; the loop around it
 * now calls, so it keeps its check inline.
 */
function sizeCharge(S: Emit, helper: number): void {
  if (S.loops > 0) labCall[loopLab[S.loops - 1]] = 1;
  exact(S);
  S.ob[S.o++] = 0x10;
  S.o = putU32(S.ob, S.o, helper);
  S.o = putReload(S.ob, S.o, S.F, S.G);
  S.dirty = false;
}

/** Copies the input instruction [start, S.p). */
function copyInstr(S: Emit, start: number): void {
  const ob = S.ob;
  const src = S.bytes;
  let o = S.o;
  for (let q = start; q < S.p; q++) ob[o++] = src[q];
  S.o = o;
}

/** Reads a block type at p (as CodeWalker does; the walker keeps its type index); returns the end. */
function blockType(S: Emit, p: number): number {
  if (p < S.end) {
    const b = S.bytes[p];
    if (b === 0x40 || (b >= 0x7b && b <= 0x7f) || b === 0x70 || b === 0x6f) {
      S.walker.blockTypeIndex = -1;
      return p + 1;
    }
  }
  S.rd.pos = p;
  S.walker.readBlockType();
  return S.rd.pos;
}

// Label stack of the body being written (scratch, reused): per open label its kind (0 function /
// block / loop, 1 if, 2 if after else), the running sum of the labels this rewrite wraps around
// the labels up to it (LOOP_WRAP per loop; for branch depths), and for loops the output range of
// the prologue, where its block type sits in the input and whether the loop contains a call.
let labKind = new Uint8Array(256);
let labCum = new Int32Array(256);
let labLs = new Int32Array(256);
let labLe = new Int32Array(256);
let labBt = new Int32Array(256);
let labBtLen = new Uint8Array(256);
let labCall = new Uint8Array(256);
/** Label index of each open loop, innermost last. */
let loopLab = new Int32Array(256);

function growLabels(): void {
  const n = labKind.length * 2;
  const u8 = (a: Uint8Array) => {
    const b = new Uint8Array(n);
    b.set(a);
    return b;
  };
  const i32 = (a: Int32Array) => {
    const b = new Int32Array(n);
    b.set(a);
    return b;
  };
  labKind = u8(labKind);
  labCum = i32(labCum);
  labLs = i32(labLs);
  labLe = i32(labLe);
  labBt = i32(labBt);
  labBtLen = u8(labBtLen);
  labCall = u8(labCall);
  loopLab = i32(loopLab);
}

/** `$vecron_check`: the slow path of a check (see the header comment). */
function writeCheckBody(out: ByteWriter, ids: Ids, interval: number): void {
  const at = out.len;
  out.u32Padded(0);
  out.bytes([0x01, 0x01, 0x7e]); // one i64 local: total
  // total = C + R; if (total < 0) { out_of_fuel(); unreachable }
  out.u8(0x23).u32(ids.fuel).u8(0x23).u32(ids.reserve).bytes([0x7c, 0x22, 0x00, 0x42, 0x00, 0x53, 0x04, 0x40]);
  out.u8(0x10).u32(ids.outOfFuel).bytes([0x00, 0x0b]);
  out.u8(0x10).u32(ids.poll);
  // C = total > interval ? interval : total; R = total - C
  out.u8(0x42).s64(interval).bytes([0x20, 0x00]);
  out.bytes([0x20, 0x00]).u8(0x42).s64(interval).u8(0x55); // i64.gt_s
  out.u8(0x1b); // select
  out.u8(0x24).u32(ids.fuel);
  out.bytes([0x20, 0x00]).u8(0x23).u32(ids.fuel).u8(0x7d).u8(0x24).u32(ids.reserve);
  out.u8(0x0b);
  out.patchU32Padded(at, out.len - at - 5);
}

/**
 * A size-charging helper, (n: i32) -> i32: fuel -= min(n, cap) * perUnit >> shift; if the fuel is
 * then negative, the slow path (out of fuel: the host's error; else poll and refill); returns n.
 */
function writeChargeHelper(out: ByteWriter, ids: Ids, cap: number, perUnit: number, shift: number): void {
  const at = out.len;
  out.u32Padded(0);
  out.u8(0x00); // no locals
  out.u8(0x23).u32(ids.fuel);
  out.bytes([0x20, 0x00, 0xad]).u8(0x42).s64(cap); // n64, cap
  out.bytes([0x20, 0x00, 0xad]).u8(0x42).s64(cap).u8(0x54); // n64 < cap
  out.u8(0x1b); // select: min(n, cap)
  if (perUnit !== 1) out.u8(0x42).s64(perUnit).u8(0x7e);
  if (shift !== 0) out.u8(0x42).s64(shift).u8(0x88);
  out.u8(0x7d).u8(0x24).u32(ids.fuel); // fuel = fuel - cost
  out.u8(0x23).u32(ids.fuel).bytes([0x42, 0x00, 0x53, 0x04, 0x40]);
  out.u8(0x10).u32(ids.check).u8(0x0b);
  out.bytes([0x20, 0x00, 0x0b]);
  out.patchU32Padded(at, out.len - at - 5);
}

/** After memory.grow / table.grow, (r: i32) -> i32: sets the grow-failure global to `flag` when r is -1. */
function writeAfterGrowHelper(out: ByteWriter, ids: Ids, flag: number): void {
  const at = out.len;
  out.u32Padded(0);
  out.u8(0x00);
  out.bytes([0x20, 0x00, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x41, flag]).u8(0x24).u32(ids.growFailed).u8(0x0b);
  out.bytes([0x20, 0x00, 0x0b]);
  out.patchU32Padded(at, out.len - at - 5);
}

/**
 * Puts the limit patches (a few; any order) and the reference patches (many; in input order) into
 * one list in input order, in place in the first arrays: a sort of the few, then a linear merge.
 */
function mergePatches(start: number[], end: number[], bytes: (number[] | number)[], rStart: number[], rEnd: number[], rTo: number[]): void {
  const order = start.map((_, i) => i).sort((x, y) => start[x] - start[y]);
  const s0 = order.map((i) => start[i]);
  const e0 = order.map((i) => end[i]);
  const b0 = order.map((i) => bytes[i]);
  start.length = 0;
  end.length = 0;
  bytes.length = 0;
  let i = 0;
  let j = 0;
  while (i < s0.length || j < rStart.length) {
    if (j >= rStart.length || (i < s0.length && s0[i] < rStart[j])) {
      start.push(s0[i]);
      end.push(e0[i]);
      bytes.push(b0[i]);
      i++;
    } else {
      start.push(rStart[j]);
      end.push(rEnd[j]);
      bytes.push(rTo[j]);
      j++;
    }
  }
}

/** Function names for messages: from the `name` section, else an export's name. */
class FunctionNames {
  private names: Map<number, string> | null = null;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly info: WasmModuleInfo,
  ) {}
  describe(funcIndex: number): string {
    if (this.names === null) this.names = readFunctionNames(this.bytes, this.info);
    const n = this.names.get(funcIndex);
    return n === undefined ? `function #${funcIndex}` : `function #${funcIndex} ('${n}')`;
  }
}

function readFunctionNames(bytes: Uint8Array, info: WasmModuleInfo): Map<number, string> {
  const out = new Map<number, string>();
  for (const e of info.exports) if (e.kind === 'function' && !out.has(e.index)) out.set(e.index, e.name);
  for (const sec of info.sections) {
    if (sec.id !== 0 || sec.name !== 'name') continue;
    try {
      const r = new Reader(bytes, sec.start, sec.end);
      r.name();
      while (r.pos < sec.end) {
        const id = r.u8();
        const size = r.u32();
        const end = r.pos + size;
        if (id === 1) {
          const n = r.u32();
          for (let k = 0; k < n; k++) {
            const idx = r.u32();
            out.set(idx, r.name());
          }
        }
        r.pos = end;
      }
    } catch {
      // a broken name section only costs us the names
    }
  }
  return out;
}

/** The module's own counts against the engine's limits, before anything is added. */
function checkEngineLimits(info: WasmModuleInfo, names: FunctionNames): void {
  const fi = info.importedFunctionCount;
  for (let j = 0; j < info.bodies.length; j++) {
    const t = info.types[info.functionTypes[fi + j]];
    for (const [what, n, limit] of [
      ['parameters', t.params.length, ENGINE_LIMITS.params],
      ['results', t.results.length, ENGINE_LIMITS.results],
    ] as const) {
      if (n > limit) {
        throw new WasmFormatError(
          'unsupported_feature',
          `${names.describe(fi + j)} has ${n} ${what}, above the engine's limit of ${limit} (function body at byte offset ${info.bodies[j].start})`,
          {
            offset: info.bodies[j].start,
            funcIndex: fi + j,
          },
        );
      }
    }
  }
  if (info.tables.length > ENGINE_LIMITS.tables) {
    throw new WasmFormatError('unsupported_feature', `the module has ${info.tables.length} tables, above the engine's limit of ${ENGINE_LIMITS.tables}`);
  }
}

/** What the rewrite adds, against the engine's limits, in terms of the module's own counts. */
function checkAddedCounts(info: WasmModuleInfo, addedTypes: number, addedFunctions: number, addedExports: number, addedGlobals: number): void {
  const rows: [string, number, number, number][] = [
    ['types', info.types.length, addedTypes, ENGINE_LIMITS.types],
    ['imports', info.imports.length, 2, ENGINE_LIMITS.imports],
    ['functions', info.functionCount, 2 + addedFunctions, ENGINE_LIMITS.functions],
    ['exports', info.exports.length, addedExports, ENGINE_LIMITS.exports],
    ['globals', info.globals.length, addedGlobals, ENGINE_LIMITS.globals],
  ];
  for (const [what, n, added, limit] of rows) {
    if (n + added > limit) {
      throw new WasmFormatError(
        'unsupported_feature',
        `the module has ${n} ${what}; fuel metering adds ${added} and the engine's limit is ${limit}: at most ${limit - added} ${what} here`,
      );
    }
  }
}

interface ExtraTypes {
  base: number;
  list: number[][];
  byKey: Map<string, number>;
}

/** Type index of [T*] -> [T*] for the given value type bytes. */
function loopParamType(types: ExtraTypes, params: number[]): number {
  return extraType(types, [0x60, ...encodeU32(params.length), ...params, ...encodeU32(params.length), ...params]);
}

/** Type index of an added type (encoded), one per distinct encoding. */
function extraType(types: ExtraTypes, enc: number[]): number {
  const key = enc.join(',');
  let idx = types.byKey.get(key);
  if (idx === undefined) {
    idx = types.base + types.list.length;
    types.list.push(enc);
    types.byKey.set(key, idx);
  }
  return idx;
}

const VALTYPE_BYTE: Record<string, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, funcref: 0x70, externref: 0x6f };
/**
 * Labels added around each loop: $exit, $outer, $slow. A loop without calls is restructured so
 * that the call to the slow path sits outside the hot loop (V8 optimizes loops without calls much
 * better, e.g. unrolling):
 *
 *   block $exit (bt)                       ;; bt = the loop's block type [T*] -> [R*]
 *     loop $outer (bt)
 *       if (F < 0) { call $vecron_check; F = fuel }
 *       block $slow ([T*] -> [T*])
 *         loop $inner (bt)                 ;; the original loop: branches to it go here
 *           br_if $slow (F < 0)            ;; the check, before this iteration is charged
 *           F = F - <header block cost>
 *           ...body...
 *         end
 *         br $exit
 *       end
 *       br $outer
 *     end
 *   end
 *
 * A loop that calls keeps its check inline: block $exit (bt) block (bt) block (bt) loop $inner (bt)
 * if (F < 0) {...} ... end end end end. Either way branch depths crossing a loop grow by 3.
 */
const LOOP_WRAP = 3;

/** Where each defined function's fuel lives across calls, and the wrappers that go with it. */
interface Linkage {
  /** Per body: 1 = register form (fuel in an extra i64 param and result), 0 = global form. */
  reg: Uint8Array;
  /** Per body: index of its wrapper (original type, fuel in the global), or -1. */
  wrapperOf: Int32Array;
  /** Body indices of the wrappers, in function index order. */
  wrappers: number[];
  /** Function index of the first wrapper. */
  wrapperBase: number;
}

/** Index to use where a function is referenced with its original type (export, table, ref.func). */
function outsideRef(link: Linkage, fi: number, idx: number): number {
  if (idx < fi) return idx;
  const j = idx - fi;
  if (!link.reg[j]) return idx + SHIFT;
  if (link.wrapperOf[j] < 0) {
    link.wrapperOf[j] = link.wrapperBase + link.wrappers.length;
    link.wrappers.push(j);
  }
  return link.wrapperOf[j];
}

/** A wrapper with the original type around a register-form function: fuel from and to the global. */
function writeWrapper(out: ByteWriter, info: WasmModuleInfo, j: number, ids: Ids): void {
  const sizeAt = out.len;
  out.u32Padded(0);
  out.u8(0x00);
  const n = info.types[info.functionTypes[ids.funcImports + j]].params.length;
  for (let k = 0; k < n; k++) out.u8(0x20).u32(k);
  out
    .u8(0x23)
    .u32(ids.fuel)
    .u8(0x10)
    .u32(ids.funcImports + j + SHIFT)
    .u8(0x24)
    .u32(ids.fuel)
    .u8(0x0b);
  out.patchU32Padded(sizeAt, out.len - sizeAt - 5);
}

/**
 * The shim of a suspending import, with the import's original type (i32, i32) -> i64: passes the
 * suspender held in its global and clears the global for the time of the call, so that a call made
 * while the guest is suspended (its `alloc`, called by the host to write an answer) finds none.
 * Without a suspender: the host's plain function when the host gave no suspending imports (mode 0,
 * no JSPI), otherwise a trap (V8 11.3 must never be asked to suspend without a live suspender).
 */
function writeSuspendShim(out: ByteWriter, importIndex: number, ids: Ids): void {
  const sizeAt = out.len;
  out.u32Padded(0);
  out.bytes([0x01, 0x01, 0x6f]); // one local: the suspender
  out.u8(0x23).u32(ids.susp).bytes([0x22, 0x02, 0xd1]); // global.get $susp; local.tee 2; ref.is_null
  out.bytes([0x04, 0x7e]); // if (result i64)
  out.u8(0x23).u32(ids.jspiMode).bytes([0x04, 0x40, 0x00, 0x0b]); // if (mode) unreachable
  out.bytes([0xd0, 0x6f, 0x20, 0x00, 0x20, 0x01, 0x10]).u32(importIndex); // import(null, a, b)
  out.u8(0x05); // else
  out.bytes([0xd0, 0x6f, 0x24]).u32(ids.susp); // $susp = null
  out.bytes([0x20, 0x02, 0x20, 0x00, 0x20, 0x01, 0x10]).u32(importIndex); // import(s, a, b)
  out.bytes([0x20, 0x02, 0x24]).u32(ids.susp); // $susp = s
  out.bytes([0x0b, 0x0b]);
  out.patchU32Padded(sizeAt, out.len - sizeAt - 5);
}

/** An export wrapper that takes the suspender first: keeps it in the global for the call, then clears it. */
function writeJspiExport(out: ByteWriter, target: number, params: number, ids: Ids): void {
  const sizeAt = out.len;
  out.u32Padded(0);
  out.u8(0x00);
  out.bytes([0x20, 0x00, 0x24]).u32(ids.susp);
  for (let k = 1; k <= params; k++) out.u8(0x20).u32(k);
  out.u8(0x10).u32(target);
  out.bytes([0xd0, 0x6f, 0x24]).u32(ids.susp);
  out.u8(0x0b);
  out.patchU32Padded(sizeAt, out.len - sizeAt - 5);
}

/** Block type of `[] -> results`. */
function resultBlockType(types: ExtraTypes, results: string[]): number[] {
  if (results.length === 0) return [0x40];
  if (results.length === 1) return [VALTYPE_BYTE[results[0]]];
  return encodeS33(extraType(types, [0x60, 0x00, ...encodeU32(results.length), ...results.map((t) => VALTYPE_BYTE[t])]));
}

/** Type index of the register form of type `t`: [P*, i64] -> [R*, i64]. */
function registerType(types: ExtraTypes, info: WasmModuleInfo, t: number): number {
  const { params, results } = info.types[t];
  return extraType(types, [
    0x60,
    ...encodeU32(params.length + 1),
    ...params.map((v) => VALTYPE_BYTE[v]),
    0x7e,
    ...encodeU32(results.length + 1),
    ...results.map((v) => VALTYPE_BYTE[v]),
    0x7e,
  ]);
}

/**
 * Chooses the form of each function: the register form unless it has a tail call that cannot pass
 * the fuel (return_call_indirect, a return_call to an import), or tail-calls a function in the
 * global form (the results would not match).
 */
function linkFunctions(tailGlobal: Uint8Array, tailTargets: number[] | null): Uint8Array {
  const reg = new Uint8Array(tailGlobal.length);
  for (let j = 0; j < reg.length; j++) reg[j] = tailGlobal[j] ? 0 : 1;
  if (tailTargets) {
    for (let changed = true; changed; ) {
      changed = false;
      for (let k = 0; k < tailTargets.length; k += 2) {
        if (reg[tailTargets[k]] && !reg[tailTargets[k + 1]]) {
          reg[tailTargets[k]] = 0;
          changed = true;
        }
      }
    }
  }
  return reg;
}

function encodeS33(v: number): number[] {
  const w = new ByteWriter(8);
  w.s32(v);
  // s32 and s33 agree for non-negative values below 2^31
  return Array.from(w.result());
}

/**
 * The `name` custom section with function indices shifted (subsections 1 function names, 2 local
 * names, 3 label names); other subsections are kept. Returns null (drop it) if it does not parse.
 */
function remapNameSection(bytes: Uint8Array, sec: SectionInfo, fi: number): Uint8Array | null {
  try {
    const r = new Reader(bytes, sec.start, sec.end);
    r.name();
    const w = new ByteWriter(sec.end - sec.start + 64);
    w.name('name');
    const shift = (idx: number): number => (idx < fi ? idx : idx + SHIFT);
    while (r.pos < sec.end) {
      const id = r.u8();
      const size = r.u32();
      const start = r.pos;
      const end = start + size;
      if (end > sec.end) return null;
      if (id < 1 || id > 3) {
        w.u8(id).u32(size).bytes(bytes.subarray(start, end));
        r.pos = end;
        continue;
      }
      const sub = new ByteWriter(size + 16);
      const s = new Reader(bytes, start, end);
      const n = s.u32();
      sub.u32(n);
      for (let k = 0; k < n; k++) {
        sub.u32(shift(s.u32()));
        const restStart = s.pos;
        if (id === 1) s.name();
        else {
          const m = s.u32();
          for (let j = 0; j < m; j++) {
            s.u32();
            s.name();
          }
        }
        sub.bytes(bytes.subarray(restStart, s.pos));
      }
      if (s.pos !== end) return null;
      w.u8(id).u32(sub.len).bytes(sub.result());
      r.pos = end;
    }
    const outer = new ByteWriter(w.len + 8);
    outer.u8(0).u32(w.len).bytes(w.result());
    return outer.result();
  } catch {
    return null;
  }
}
