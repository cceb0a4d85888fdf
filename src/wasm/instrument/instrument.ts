import { ByteWriter, encodeU32 } from '../binary/writer.ts';
import { Reader } from '../binary/reader.ts';
import { CodeWalker, type WalkContext } from '../binary/opcodes.ts';
import { parseModule, skipLocals, type SectionInfo, type WasmModuleInfo } from '../binary/parse.ts';
import { WasmFormatError } from '../binary/errors.ts';

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
 * of a block has paid for the whole block. `memory.copy`, `memory.fill` and `memory.init`
 * additionally cost size/64 (from the size operand, through a scratch local), charged just before
 * the instruction; that debt is collected by the next check.
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
 * restructured so that the call to the slow path sits outside the hot loop (see scanBody): V8
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
/** Bytes per fuel unit charged for memory.copy / memory.fill / memory.init (as a shift). */
export const BULK_SHIFT = 6;

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
  /** Memory limits after the clamp (for the imported one, what the host must supply). */
  memory?: { min: number; max: number; imported: boolean };
  /** With `trackGrowFailures`: the export name of the grow-failure flag. */
  growFailedExport?: string;
}

export interface InstrumentResult {
  bytes: Uint8Array;
  /** The original module's description. */
  info: WasmModuleInfo;
  meta: InstrumentMeta;
}

const SHIFT = 2; // functions imported by the rewrite

// Per-body edit list (scratch, reused).
const E_CHARGE = 0; // insert: fuel -= val
const E_ENTRY = 1; // insert: load the locals, charge val, check
const E_U32 = 2; // replace [pos, end) with the u32 LEB128 of val (function index, branch depth)
const E_DYN = 3; // insert: bulk memory size charge
const E_RELOAD = 4; // insert: reload the locals after a call
const E_BYTES = 5; // replace [pos, end) with extra[val]
const E_LOOP = 6; // replace the loop instruction [pos, end) with the loop prologue extra[val]
const E_LOOPEND = 7; // replace the loop's end [pos, end) with the epilogue
const E_GROW = 8; // insert after memory.grow: flag a failed growth
const E_STORE = 9; // insert (register form): fuel = F
const E_RET = 10; // insert before return (register form): push F
const E_LOCAL = 11; // replace a local index [pos, end) with val + 1 (register form)
const E_CALLPRE = 12; // insert before a call to body val: push F if it takes the fuel
const E_CALLPOST = 13; // insert after a call to body val: F from its result or the global
const E_TAIL = 14; // replace the index of a return_call to body val [pos, end)
const E_REFFUNC = 15; // replace the index of a ref.func to body val [pos, end)
const E_LOOPC = 16; // E_LOOP of a loop that contains a call: the check inside (see scanBody)
const E_LOOPENDC = 17; // E_LOOPEND of such a loop
let eKind = new Uint8Array(1024);
let ePos = new Int32Array(1024);
let eVal = new Int32Array(1024);
let eEnd = new Int32Array(1024);
let eLen = 0;

function pushEdit(kind: number, pos: number, val: number, end: number): number {
  if (eLen === eKind.length) {
    const n = eKind.length * 2;
    const k = new Uint8Array(n);
    k.set(eKind);
    eKind = k;
    const p = new Int32Array(n);
    p.set(ePos);
    ePos = p;
    const v = new Int32Array(n);
    v.set(eVal);
    eVal = v;
    const e = new Int32Array(n);
    e.set(eEnd);
    eEnd = e;
  }
  eKind[eLen] = kind;
  ePos[eLen] = pos;
  eVal[eLen] = val;
  eEnd[eLen] = end;
  return eLen++;
}

interface Ids {
  fuel: number;
  reserve: number;
  check: number;
  outOfFuel: number;
  poll: number;
  funcImports: number;
  /** Index of the grow-failure global, or -1. */
  growFailed: number;
}

export function instrument(bytes: Uint8Array, opts: InstrumentOptions): InstrumentResult {
  const maxPages = opts.memoryMaxPages;
  if (!Number.isInteger(maxPages) || maxPages < 0 || maxPages > 65536) {
    throw new RangeError(`memoryMaxPages must be an integer in 0..65536, got ${maxPages}`);
  }
  const interval = opts.pollInterval ?? DEFAULT_POLL_INTERVAL;
  if (!Number.isInteger(interval) || interval < 1) throw new RangeError(`pollInterval must be a positive integer`);

  const info = parseModule(bytes, { walkCode: false });
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
  const patchBytes: (number[] | null)[] = [];
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
  const fi = info.importedFunctionCount;
  let patchAt = 0;

  const ids: Ids = {
    fuel: info.globals.length,
    reserve: info.globals.length + 1,
    outOfFuel: fi,
    poll: fi + 1,
    check: info.functionCount + SHIFT,
    funcImports: fi,
    growFailed: opts.trackGrowFailures ? info.globals.length + 2 : -1,
  };
  const voidType = info.types.length;
  const ctx: WalkContext = { typeCount: info.types.length, funcCount: info.functionCount, globalCount: info.globals.length };

  const out = new ByteWriter(bytes.length + (bytes.length >> 2) + 256);
  out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

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
      out.bytes(patchBytes[patchAt]!);
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

  // The code first: loops with parameters and the register form need extra types.
  const types: ExtraTypes = { base: voidType + 1, list: [], byKey: new Map() };
  eLen = 0;
  const plans: BodyPlan[] = [];
  for (let i = 0; i < info.bodies.length; i++) plans.push(scanBody(bytes, info, i, ids, ctx, types));
  const link: Linkage = {
    reg: linkFunctions(plans),
    wrapperOf: new Int32Array(info.bodies.length).fill(-1),
    wrappers: [],
    wrapperBase: ids.check + 1,
  };
  // Function index references outside code: the wrapper of a register-form function.
  const refs = info.funcRefs;
  for (let i = 0; i < refs.length; i += 3) {
    const idx = refs[i + 2];
    if (idx < fi) continue;
    patchStart.push(refs[i]);
    patchEnd.push(refs[i + 1]);
    patchBytes.push(encodeU32(outsideRef(link, fi, idx)));
  }
  const startIndex = info.start === undefined ? -1 : outsideRef(link, fi, info.start);
  const bodies = new ByteWriter(bytes.length + (bytes.length >> 2) + 256);
  for (let i = 0; i < info.bodies.length; i++) emitBody(bytes, info, i, plans[i], ids, link, types, bodies);
  writeCheckBody(bodies, ids, interval);
  for (const j of link.wrappers) writeWrapper(bodies, info, j, ids);
  const regTypes = new Map<number, number>();
  const funcTypes = info.bodies.map((_, j) => {
    const t = info.functionTypes[fi + j];
    if (!link.reg[j]) return t;
    let rt = regTypes.get(t);
    if (rt === undefined) regTypes.set(t, (rt = registerType(types, info, t)));
    return rt;
  });
  const codeCount = encodeU32(info.bodies.length + 1 + link.wrappers.length);

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
        out.u32(info.bodies.length + 1 + link.wrappers.length);
        for (let j = 0; j < info.bodies.length; j++) out.u32(funcTypes[j]);
        out.u32(voidType);
        for (const j of link.wrappers) out.u32(info.functionTypes[fi + j]);
        close(at);
        break;
      }
      case 6:
        vecSection(6, sec, ids.growFailed >= 0 ? 3 : 2, () => {
          out.bytes([0x7e, 0x01, 0x42, 0x00, 0x0b]); // fuel: mut i64 = 0
          out.bytes([0x7e, 0x01, 0x42, 0x00, 0x0b]); // reserve: mut i64 = 0
          if (ids.growFailed >= 0) out.bytes([0x7f, 0x01, 0x41, 0x00, 0x0b]); // grow failed: mut i32 = 0
        });
        break;
      case 7:
        vecSection(7, sec, (info.start === undefined ? 2 : 3) + (ids.growFailed >= 0 ? 1 : 0), () => {
          out.name(FUEL_EXPORT).u8(0x03).u32(ids.fuel);
          out.name(RESERVE_EXPORT).u8(0x03).u32(ids.reserve);
          if (ids.growFailed >= 0) out.name(GROW_FAILED_EXPORT).u8(0x03).u32(ids.growFailed);
          if (info.start !== undefined) {
            out.name(START_EXPORT).u8(0x00).u32(startIndex);
          }
        });
        break;
      case 8:
        // Dropped: the start function is exported as __vecron_start (see above).
        if (sec) while (patchAt < patchStart.length && patchStart[patchAt] < sec.end) patchAt++;
        break;
      case 10: {
        out.u8(10).u32(codeCount.length + bodies.len).bytes(codeCount).bytes(bodies.result());
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
      ...(memory ? { memory } : {}),
      ...(ids.growFailed >= 0 ? { growFailedExport: GROW_FAILED_EXPORT } : {}),
    },
  };
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
const LOOP_WRAP = 3; // labels added around each loop: $exit, $outer, $slow

/** What pass 1 learned about one body (its edits are eKind/ePos/eVal/eEnd[eFrom, eTo)). */
interface BodyPlan {
  eFrom: number;
  eTo: number;
  /** Replacement bytes (br_table) and loop headers. */
  extra: number[][];
  needN: boolean;
  params: number;
  declared: number;
  groups: number;
  groupsEnd: number;
  localsEnd: number;
  /** Has a tail call that cannot pass the fuel in a register (return_call_indirect, to an import). */
  tailGlobal: boolean;
  /** Body indices of defined functions this body tail-calls (return_call), or null. */
  tailTargets: number[] | null;
}

/** Single-byte opcodes that cannot trap (control flow is handled on its own). */
const SAFE_OP = new Uint8Array(256);
for (const op of [0x01, 0x1a, 0x1b, 0x1c, 0x20, 0x21, 0x22, 0x23, 0x24, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0xd0, 0xd1, 0xd2]) SAFE_OP[op] = 1;
for (let op = 0x45; op <= 0xc4; op++) SAFE_OP[op] = 1;
for (const op of [0x6d, 0x6e, 0x6f, 0x70, 0x7f, 0x80, 0x81, 0x82, 0xa8, 0xa9, 0xaa, 0xab, 0xae, 0xaf, 0xb0, 0xb1]) SAFE_OP[op] = 0; // div, rem, trunc

/**
 * Pass 1 over one body: decode it and collect its edits (in increasing offset order). Loops are
 * restructured so that the call to the slow path sits outside the hot loop (V8 optimizes loops
 * without calls much better, e.g. unrolling):
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
 * Branch depths crossing a rewritten loop grow by 3. F is a local holding the fuel counter (see
 * emitBody for when it is stored to the global). Pass 1 does not know yet whether the body passes
 * the fuel in a register, so it records the edits of both forms; emitBody picks.
 */
function scanBody(bytes: Uint8Array, info: WasmModuleInfo, i: number, ids: Ids, ctx: WalkContext, types: ExtraTypes): BodyPlan {
  const body = info.bodies[i];
  const funcIndex = info.importedFunctionCount + i;
  const r = new Reader(bytes, body.start, body.end);
  r.funcIndex = funcIndex;
  const localsStart = r.pos;
  const groups = r.u32();
  const groupsEnd = r.pos;
  r.pos = localsStart;
  const declared = skipLocals(r);
  const localsEnd = r.pos;
  const params = info.types[info.functionTypes[funcIndex]].params.length;
  const plan: BodyPlan = {
    eFrom: eLen,
    eTo: eLen,
    extra: [],
    needN: false,
    params,
    declared,
    groups,
    groupsEnd,
    localsEnd,
    tailGlobal: false,
    tailTargets: null,
  };
  const extra = plan.extra;
  const fi = ids.funcImports;
  // Labels: wrap count of each open label (function label at the bottom).
  const wraps: number[] = [0];
  let wrapped = 0; // loops open
  // Open loops: their E_LOOP edit, and whether they contain a call so far.
  const loops: number[] = [];
  const loopCalls: number[] = [];
  let cur = pushEdit(E_ENTRY, r.pos, 0, 0);
  // The global is behind F since the last block's charge (register form only).
  let dirty = true;
  const store = (at: number): void => {
    if (dirty) {
      pushEdit(E_STORE, at, 0, 0);
      dirty = false;
    }
  };
  const block = (at: number): void => {
    cur = pushEdit(E_CHARGE, at, 0, 0);
    dirty = true;
  };
  const w = new CodeWalker(r, ctx, funcIndex);
  // Bounds checked against the original module, so that an invalid index can never become valid by
  // pointing at a local or global added here.
  w.localCount = params + declared;
  const adjust = (d: number): number => {
    let add = 0;
    const top = wraps.length - 1;
    for (let k = 0; k < d && k < top; k++) add += wraps[top - k];
    return d + add;
  };
  while (!w.done) {
    const op = w.next();
    switch (op) {
      case 0x0b: // end
        if (wraps.pop() === LOOP_WRAP) {
          wrapped--;
          const l = loops.pop()!;
          const call = loopCalls.pop()!;
          if (call) {
            eKind[l] = E_LOOPC;
            if (loopCalls.length) loopCalls[loopCalls.length - 1] = 1;
          }
          pushEdit(call ? E_LOOPENDC : E_LOOPEND, w.start, 0, r.pos);
        }
        block(r.pos);
        break;
      case 0x05: // else
        block(r.pos);
        break;
      case 0x02: // block
        eVal[cur]++;
        wraps.push(0);
        break;
      case 0x03: {
        // loop
        eVal[cur]++;
        let slowBt = [0x40];
        if (w.blockTypeIndex >= 0) {
          const ps = info.types[w.blockTypeIndex].params;
          if (ps.length > 0) slowBt = encodeS33(loopParamType(types, ps.map((t) => VALTYPE_BYTE[t])));
        }
        const bt = Array.from(bytes.subarray(w.immStart, r.pos));
        extra.push([0x02, ...bt, 0x03, ...bt, 0xff, 0x02, ...slowBt, 0x03, ...bt], bt);
        loops.push(pushEdit(E_LOOP, w.start, extra.length - 2, r.pos));
        loopCalls.push(0);
        wraps.push(LOOP_WRAP);
        wrapped++;
        block(r.pos);
        break;
      }
      case 0x04: // if
        eVal[cur]++;
        wraps.push(0);
        block(r.pos);
        break;
      case 0x0c: // br
      case 0x0d: // br_if
        eVal[cur]++;
        if (wrapped > 0) {
          const d = adjust(w.imm);
          if (d !== w.imm) pushEdit(E_U32, w.immStart, d, r.pos);
        }
        block(r.pos);
        break;
      case 0x0e: // br_table
        eVal[cur]++;
        if (wrapped > 0) {
          const t = new Reader(bytes, w.immStart, r.pos);
          const n = t.u32();
          const enc = new ByteWriter(r.pos - w.immStart + 8);
          enc.u32(n);
          for (let k = 0; k <= n; k++) enc.u32(adjust(t.u32()));
          extra.push(Array.from(enc.result()));
          pushEdit(E_BYTES, w.immStart, extra.length - 1, r.pos);
        }
        block(r.pos);
        break;
      case 0x0f: // return
        eVal[cur]++;
        pushEdit(E_RET, w.start, 0, 0);
        block(r.pos);
        break;
      case 0x00: // unreachable
        eVal[cur]++;
        store(w.start);
        block(r.pos);
        break;
      case 0x13: // return_call_indirect
        eVal[cur]++;
        plan.tailGlobal = true;
        block(r.pos);
        break;
      case 0x12: // return_call
        eVal[cur]++;
        if (w.imm >= fi) {
          store(w.start);
          pushEdit(E_CALLPRE, w.start, w.imm - fi, 0);
          pushEdit(E_TAIL, w.immStart, w.imm - fi, r.pos);
          (plan.tailTargets ??= []).push(w.imm - fi);
        } else plan.tailGlobal = true;
        block(r.pos);
        break;
      case 0x10: // call
        eVal[cur]++;
        if (loopCalls.length) loopCalls[loopCalls.length - 1] = 1;
        store(w.start);
        if (w.imm >= fi) {
          pushEdit(E_CALLPRE, w.start, w.imm - fi, 0);
          pushEdit(E_U32, w.immStart, w.imm + SHIFT, r.pos);
          pushEdit(E_CALLPOST, r.pos, w.imm - fi, 0);
          dirty = true; // a callee in the register form does not store the global
        } else pushEdit(E_RELOAD, r.pos, 0, 0);
        break;
      case 0x11: // call_indirect (calls the wrapper or an import: the global is up to date after)
        eVal[cur]++;
        if (loopCalls.length) loopCalls[loopCalls.length - 1] = 1;
        store(w.start);
        pushEdit(E_RELOAD, r.pos, 0, 0);
        break;
      case 0x20: // local.get
      case 0x21: // local.set
      case 0x22: // local.tee
        eVal[cur]++;
        if (w.imm >= params) pushEdit(E_LOCAL, w.immStart, w.imm, r.pos);
        break;
      case 0xd2: // ref.func
        eVal[cur]++;
        if (w.imm >= fi) pushEdit(E_REFFUNC, w.immStart, w.imm - fi, r.pos);
        break;
      case 0xfc0a: // memory.copy
      case 0xfc0b: // memory.fill
      case 0xfc08: // memory.init
        eVal[cur]++;
        plan.needN = true;
        pushEdit(E_DYN, w.start, 0, 0); // stores the global
        dirty = false;
        break;
      case 0x40: // memory.grow
        eVal[cur]++;
        if (ids.growFailed >= 0) {
          plan.needN = true;
          pushEdit(E_GROW, r.pos, 0, 0);
        }
        break;
      default:
        eVal[cur]++;
        if (op > 0xff ? op > 0xfc07 : SAFE_OP[op] === 0) store(w.start);
    }
  }
  if (r.pos !== body.end) r.fail('instructions after the final end of a function body');
  plan.eTo = eLen;
  return plan;
}

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

/**
 * Pass 2: emits one body. Two forms:
 *
 * Register form (most functions). The function takes the fuel counter as an extra last i64
 * parameter (F) and returns it as an extra last result; direct calls between such functions pass
 * it along, so no load of the global sits on the path from one call to the next (V8 keeps it in a
 * register; through the global every call boundary waited for a store to reach a load). The body
 * is wrapped in `block (result R*) ... end local.get F` so that branches to the function label
 * keep their arity; `return` pushes F first; declared locals move up by one. F is stored to the
 * global only where the global must be exact: before an instruction that can trap, before every
 * call (so that a callee that overflows the stack, or an import, sees it) and before the slow
 * path. Exports, tables, `ref.func` and the start function get a wrapper with the original type
 * that loads the global, calls, and stores the result back.
 *
 * Global form (a function with a tail call that cannot pass the fuel: return_call_indirect, a
 * return_call to an import or to a global-form function). F is loaded at entry and after calls,
 * and every charge stores it to the global.
 */
function emitBody(bytes: Uint8Array, info: WasmModuleInfo, i: number, plan: BodyPlan, ids: Ids, link: Linkage, types: ExtraTypes, out: ByteWriter): void {
  const body = info.bodies[i];
  const reg = link.reg[i] === 1;
  const fi = ids.funcImports;
  const { params, declared, needN, extra } = plan;
  // Added locals: F (fuel counter; the extra param in the register form), N (size operand of bulk
  // memory ops, memory.grow result).
  const F = reg ? params : params + declared;
  const N = reg ? params + declared + 1 : F + 1;
  const G = ids.fuel;
  const sizeAt = out.len;
  out.u32Padded(0);
  out.u32(plan.groups + (reg ? 0 : 1) + (needN ? 1 : 0));
  out.range(bytes, plan.groupsEnd, plan.localsEnd);
  if (!reg) out.bytes([0x01, 0x7e]);
  if (needN) out.bytes([0x01, 0x7f]);
  let pos = plan.localsEnd;
  // if (F < 0) { [fuel = F;] check(); F = fuel }
  const check = (): void => {
    out.u8(0x20).u32(F).bytes([0x42, 0x00, 0x53, 0x04, 0x40]);
    if (reg) out.u8(0x20).u32(F).u8(0x24).u32(G);
    out.u8(0x10).u32(ids.check);
    out.u8(0x23).u32(G).u8(0x21).u32(F).u8(0x0b);
  };
  const charge = (cost: number): void => {
    // F = F - cost; global form: fuel = F
    out.u8(0x20).u32(F).u8(0x42).s32(cost).u8(0x7d);
    if (reg) out.u8(0x21).u32(F);
    else out.u8(0x22).u32(F).u8(0x24).u32(G);
  };
  const last = body.end - 1; // the final end
  for (let e = plan.eFrom; e < plan.eTo; e++) {
    const kind = eKind[e];
    const val = eVal[e];
    if (kind === E_CHARGE && val === 0) continue;
    if (!reg && (kind === E_STORE || kind === E_RET || kind === E_LOCAL)) continue;
    const at = ePos[e];
    out.range(bytes, pos, at);
    pos = at;
    switch (kind) {
      case E_ENTRY:
        if (reg) {
          out.u8(0x02).bytes(resultBlockType(types, info.types[info.functionTypes[fi + i]].results));
        } else out.u8(0x23).u32(G).u8(0x21).u32(F); // F = fuel
        if (val > 0) charge(val);
        check();
        break;
      case E_CHARGE:
        charge(val);
        break;
      case E_STORE:
        out.u8(0x20).u32(F).u8(0x24).u32(G);
        break;
      case E_RELOAD:
        // the callee (or the host) charged the global: F = fuel
        out.u8(0x23).u32(G).u8(0x21).u32(F);
        break;
      case E_RET:
        out.u8(0x20).u32(F);
        break;
      case E_LOCAL:
        out.u32(val + 1);
        pos = eEnd[e];
        break;
      case E_CALLPRE:
        if (link.reg[val] && (reg || eKind[e + 1] !== E_TAIL)) out.u8(0x20).u32(F);
        break;
      case E_CALLPOST:
        if (!link.reg[val]) out.u8(0x23).u32(G).u8(0x21).u32(F);
        else if (reg) out.u8(0x21).u32(F);
        else out.u8(0x22).u32(F).u8(0x24).u32(G);
        break;
      case E_TAIL:
        // register form: the target is in the register form too (see linkFunctions)
        out.u32(reg ? val + fi + SHIFT : outsideRef(link, fi, val + fi));
        pos = eEnd[e];
        break;
      case E_REFFUNC:
        out.u32(outsideRef(link, fi, val + fi));
        pos = eEnd[e];
        break;
      case E_U32:
        out.u32(val);
        pos = eEnd[e];
        break;
      case E_BYTES:
        out.bytes(extra[val]);
        pos = eEnd[e];
        break;
      case E_LOOP: {
        const h = extra[val];
        const mark = h.indexOf(0xff, 2);
        out.bytes(h.slice(0, mark));
        check();
        out.bytes(h.slice(mark + 1));
        // br_if $slow (F < 0)
        out.u8(0x20).u32(F).bytes([0x42, 0x00, 0x53, 0x0d, 0x01]);
        pos = eEnd[e];
        break;
      }
      case E_LOOPEND:
        // end $inner; br $exit; end $slow; br $outer; end $outer; end $exit
        out.bytes([0x0b, 0x0c, 0x02, 0x0b, 0x0c, 0x00, 0x0b, 0x0b]);
        pos = eEnd[e];
        break;
      case E_LOOPC: {
        // block $exit (bt) block (bt) block (bt) loop $inner (bt) if (F < 0) { check } ...
        const bt = extra[val + 1];
        out.u8(0x02).bytes(bt).u8(0x02).bytes(bt).u8(0x02).bytes(bt).u8(0x03).bytes(bt);
        check();
        pos = eEnd[e];
        break;
      }
      case E_LOOPENDC:
        out.bytes([0x0b, 0x0b, 0x0b, 0x0b]);
        pos = eEnd[e];
        break;
      case E_GROW:
        // result on top: N = result; if (N == -1) grow_failed = 1; result back on the stack.
        out.u8(0x22).u32(N).bytes([0x41, 0x7f, 0x46, 0x04, 0x40, 0x41, 0x01, 0x24]).u32(ids.growFailed).u8(0x0b);
        out.u8(0x20).u32(N);
        break;
      case E_DYN:
        // size on top: N = size; fuel = F = F - (N >> 6); size back on the stack. The next check
        // point (loop header, entry) sees the debt; no call here, to keep loops call-free.
        out.u8(0x21).u32(N);
        out.u8(0x20).u32(F).u8(0x20).u32(N).bytes([0xad, 0x42, BULK_SHIFT, 0x88, 0x7d]);
        out.u8(0x22).u32(F).u8(0x24).u32(G);
        out.u8(0x20).u32(N);
        break;
    }
  }
  out.range(bytes, pos, last);
  if (reg) out.u8(0x0b).u8(0x20).u32(F); // end of the wrapping block; the fuel as the last result
  out.u8(0x0b);
  out.patchU32Padded(sizeAt, out.len - sizeAt - 5);
}

/** A wrapper with the original type around a register-form function: fuel from and to the global. */
function writeWrapper(out: ByteWriter, info: WasmModuleInfo, j: number, ids: Ids): void {
  const sizeAt = out.len;
  out.u32Padded(0);
  out.u8(0x00);
  const n = info.types[info.functionTypes[ids.funcImports + j]].params.length;
  for (let k = 0; k < n; k++) out.u8(0x20).u32(k);
  out.u8(0x23).u32(ids.fuel).u8(0x10).u32(ids.funcImports + j + SHIFT).u8(0x24).u32(ids.fuel).u8(0x0b);
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
function linkFunctions(plans: BodyPlan[]): Uint8Array {
  const reg = new Uint8Array(plans.length).fill(1);
  let withTargets: number[] | null = null;
  for (let j = 0; j < plans.length; j++) {
    if (plans[j].tailGlobal) reg[j] = 0;
    if (plans[j].tailTargets) (withTargets ??= []).push(j);
  }
  if (withTargets) {
    for (let changed = true; changed; ) {
      changed = false;
      for (const j of withTargets) {
        if (reg[j] && plans[j].tailTargets!.some((t) => !reg[t])) {
          reg[j] = 0;
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
