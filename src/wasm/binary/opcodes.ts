import type { Reader } from './reader.ts';
import { unsupported, WasmFormatError } from './errors.ts';

/**
 * Instruction decoding for the whole current standard as Node 20 (V8 11.3) runs it: MVP, sign
 * extension, non-trapping float-to-int, bulk memory, reference types, SIMD (fixed width), tail calls,
 * multi-value. Everything else (threads, exceptions, GC/typed references, memory64, multi-memory,
 * relaxed SIMD, extended-const) is refused with `unsupported_feature`.
 */

// Immediate classes of single-byte opcodes.
// 0: not a valid opcode (the table's default)
export const I_NONE = 1;
const I_BLOCK = 2;
const I_IDX = 3;
export const I_MEMARG = 4;
const I_BRTABLE = 5;
const I_CALLIND = 6;
const I_I32 = 7;
const I_I64 = 8;
const I_F32 = 9;
const I_F64 = 10;
const I_SELECT_T = 11;
const I_REFNULL = 12;
const I_MEMIDX = 13;
const I_FC = 14;
const I_FD = 15;

/** Immediate class of each single-byte opcode (I_*). */
export const OP_CLASS = new Uint8Array(256);
function setRange(from: number, to: number, cls: number): void {
  for (let i = from; i <= to; i++) OP_CLASS[i] = cls;
}
OP_CLASS[0x00] = I_NONE; // unreachable
OP_CLASS[0x01] = I_NONE; // nop
setRange(0x02, 0x04, I_BLOCK); // block loop if
OP_CLASS[0x05] = I_NONE; // else
OP_CLASS[0x0b] = I_NONE; // end
OP_CLASS[0x0c] = I_IDX; // br
OP_CLASS[0x0d] = I_IDX; // br_if
OP_CLASS[0x0e] = I_BRTABLE;
OP_CLASS[0x0f] = I_NONE; // return
OP_CLASS[0x10] = I_IDX; // call
OP_CLASS[0x11] = I_CALLIND;
OP_CLASS[0x12] = I_IDX; // return_call
OP_CLASS[0x13] = I_CALLIND; // return_call_indirect
OP_CLASS[0x1a] = I_NONE; // drop
OP_CLASS[0x1b] = I_NONE; // select
OP_CLASS[0x1c] = I_SELECT_T;
setRange(0x20, 0x26, I_IDX); // local.get/set/tee global.get/set table.get/set
setRange(0x28, 0x3e, I_MEMARG);
OP_CLASS[0x3f] = I_MEMIDX; // memory.size
OP_CLASS[0x40] = I_MEMIDX; // memory.grow
OP_CLASS[0x41] = I_I32;
OP_CLASS[0x42] = I_I64;
OP_CLASS[0x43] = I_F32;
OP_CLASS[0x44] = I_F64;
setRange(0x45, 0xc4, I_NONE); // numeric, incl. sign extension 0xC0-0xC4
OP_CLASS[0xd0] = I_REFNULL;
OP_CLASS[0xd1] = I_NONE; // ref.is_null
OP_CLASS[0xd2] = I_IDX; // ref.func
OP_CLASS[0xfc] = I_FC;
OP_CLASS[0xfd] = I_FD;

/** Features of single-byte opcodes we refuse, for the message. */
const OP_FEATURE: Record<number, string> = {
  0x06: 'exception handling (try)',
  0x07: 'exception handling (catch)',
  0x08: 'exception handling (throw)',
  0x09: 'exception handling (rethrow)',
  0x0a: 'exception handling (throw_ref)',
  0x14: 'typed function references (call_ref)',
  0x15: 'typed function references (return_call_ref)',
  0x18: 'exception handling (delegate)',
  0x19: 'exception handling (catch_all)',
  0x1f: 'exception handling (try_table)',
  0xd3: 'GC (ref.eq)',
  0xd4: 'typed function references (ref.as_non_null)',
  0xd5: 'typed function references (br_on_null)',
  0xd6: 'typed function references (br_on_non_null)',
  0xfb: 'GC',
  0xfe: 'threads (atomics)',
};

// SIMD (0xFD prefix) immediate classes.
const S_BAD = 0;
const S_NONE = 1;
const S_MEMARG = 2;
const S_MEMARG_LANE = 3;
const S_LANE = 4;
const S_BYTES16 = 5;
const SIMD_CLASS = new Uint8Array(256);
for (let i = 0; i < 256; i++) SIMD_CLASS[i] = S_NONE;
for (let i = 0; i <= 11; i++) SIMD_CLASS[i] = S_MEMARG; // v128.load* / v128.store
SIMD_CLASS[12] = S_BYTES16; // v128.const
SIMD_CLASS[13] = S_BYTES16; // i8x16.shuffle
for (let i = 21; i <= 34; i++) SIMD_CLASS[i] = S_LANE; // extract/replace_lane
for (let i = 84; i <= 91; i++) SIMD_CLASS[i] = S_MEMARG_LANE; // load*_lane / store*_lane
SIMD_CLASS[92] = S_MEMARG; // v128.load32_zero
SIMD_CLASS[93] = S_MEMARG; // v128.load64_zero
for (const i of [154, 162, 165, 166, 175, 176, 178, 179, 180, 187, 194, 197, 198, 207, 208, 210, 211, 212, 226, 238]) {
  SIMD_CLASS[i] = S_BAD; // reserved
}

/** Opcode numbers the walker returns for prefixed instructions: prefix << 8 | sub-opcode. */
export const OP = {
  unreachable: 0x00,
  nop: 0x01,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  br_table: 0x0e,
  return: 0x0f,
  call: 0x10,
  call_indirect: 0x11,
  return_call: 0x12,
  return_call_indirect: 0x13,
  ref_func: 0xd2,
  memory_init: 0xfc08,
  memory_copy: 0xfc0a,
  memory_fill: 0xfc0b,
} as const;

/** What an instruction walk needs to know about the module. */
export interface WalkContext {
  typeCount: number;
  funcCount: number;
  globalCount: number;
}

/**
 * Decodes instruction after instruction over a Reader, checking immediates and block nesting.
 * `next()` returns the opcode (prefixed ones as prefix << 8 | sub); after it, `start` is the offset
 * of the instruction, `immStart` of its first immediate and `imm` the value of a single index
 * immediate (call, ref.func, br, br_if, local/global ops).
 */
export class CodeWalker {
  readonly r: Reader;
  readonly ctx: WalkContext;
  start = 0;
  immStart = 0;
  imm = 0;
  /** Open blocks: 0 = function/block/loop, 1 = if, 2 = if after else. Length = nesting depth. */
  private readonly kinds: number[] = [];
  done = false;
  /** Params + declared locals of the body (index bound of local.get/set/tee). */
  localCount = 0xffffffff;
  /** After block/loop/if: the type index of a type-index block type, else -1. */
  blockTypeIndex = -1;

  constructor(r: Reader, ctx: WalkContext, funcIndex?: number) {
    this.r = r;
    this.ctx = ctx;
    r.funcIndex = funcIndex;
    this.kinds.push(0);
  }

  get depth(): number {
    return this.kinds.length;
  }

  private unsupported(feature: string, what: string): never {
    throw unsupported(feature, what, this.start, this.r.funcIndex);
  }

  private memarg(): void {
    const r = this.r;
    const align = r.u32();
    if (align & 0x40) this.unsupported('multi-memory', 'memory access with a memory index');
    if (align >= 32) r.fail('alignment out of range', this.immStart);
    r.u32(); // offset (memory64 is refused at declaration, so always u32)
  }

  private memidx(): void {
    const at = this.r.pos;
    const m = this.r.u32();
    if (m !== 0) throw unsupported('multi-memory', `memory index ${m}`, at, this.r.funcIndex);
  }

  /** Reads a block type (sets blockTypeIndex). */
  readBlockType(): void {
    const r = this.r;
    if (r.pos >= r.end) r.fail('unexpected end of data');
    const b = r.bytes[r.pos];
    this.blockTypeIndex = -1;
    if (b === 0x40 || (b >= 0x7b && b <= 0x7f) || b === 0x70 || b === 0x6f) {
      r.pos++;
      return;
    }
    const at = r.pos;
    const t = r.s33();
    if (t < 0) {
      if (b === 0x64 || b === 0x63 || (b >= 0x65 && b <= 0x6e) || b === 0x71 || b === 0x72 || b === 0x73 || b === 0x74) {
        throw unsupported('GC / typed function references', `block type 0x${b.toString(16)}`, at, r.funcIndex);
      }
      r.fail(`invalid block type 0x${b.toString(16)}`, at);
    }
    if (t >= this.ctx.typeCount) r.fail(`block type index ${t} out of range`, at);
    this.blockTypeIndex = t;
  }

  private pushBlock(kind: number): void {
    this.kinds.push(kind);
  }

  /** Reads one instruction; returns its opcode. */
  next(): number {
    const r = this.r;
    const bytes = r.bytes;
    this.start = r.pos;
    if (r.pos >= r.end) r.fail('function body ends before its final end');
    const op = bytes[r.pos++];
    this.immStart = r.pos;
    switch (OP_CLASS[op]) {
      case I_NONE:
        if (op === 0x0b) {
          this.kinds.pop();
          if (this.kinds.length === 0) this.done = true;
        } else if (op === 0x05) {
          if (this.kinds[this.kinds.length - 1] !== 1) r.fail('else without if', this.start);
          this.kinds[this.kinds.length - 1] = 2;
        }
        return op;
      case I_BLOCK:
        this.readBlockType();
        this.pushBlock(op === 0x04 ? 1 : 0);
        return op;
      case I_IDX: {
        const v = (this.imm = r.u32());
        if (op === 0x10 || op === 0x12 || op === 0xd2) {
          if (v >= this.ctx.funcCount) r.fail(`function index ${v} out of range`, this.immStart);
        } else if (op <= 0x0d) {
          if (v >= this.kinds.length) r.fail(`branch depth ${v} out of range`, this.immStart);
        } else if (op <= 0x22) {
          if (v >= this.localCount) r.fail(`local index ${v} out of range`, this.immStart);
        } else if (op <= 0x24) {
          if (v >= this.ctx.globalCount) r.fail(`global index ${v} out of range`, this.immStart);
        }
        return op;
      }
      case I_MEMARG:
        this.memarg();
        return op;
      case I_BRTABLE: {
        const n = r.u32();
        if (n > r.end - r.pos) r.fail('br_table longer than the body', this.immStart);
        for (let i = 0; i <= n; i++) {
          if (r.u32() >= this.kinds.length) r.fail('br_table depth out of range', this.immStart);
        }
        return op;
      }
      case I_CALLIND: {
        const t = r.u32();
        if (t >= this.ctx.typeCount) r.fail(`type index ${t} out of range`, this.immStart);
        r.u32(); // table index (reference types allow any table)
        return op;
      }
      case I_I32:
        r.s32();
        return op;
      case I_I64:
        r.skipS64();
        return op;
      case I_F32:
        r.skip(4);
        return op;
      case I_F64:
        r.skip(8);
        return op;
      case I_SELECT_T: {
        const n = r.u32();
        if (n !== 1) r.fail('typed select must have exactly one type', this.immStart);
        valType(r);
        return op;
      }
      case I_REFNULL: {
        const at = r.pos;
        const ht = r.u8();
        if (ht !== 0x70 && ht !== 0x6f) {
          throw unsupported('GC / typed function references', `ref.null heap type 0x${ht.toString(16)}`, at, r.funcIndex);
        }
        return op;
      }
      case I_MEMIDX:
        this.memidx();
        return op;
      case I_FC:
        return 0xfc00 | this.fc();
      case I_FD:
        return 0xfd00 | this.fd();
      default: {
        const feature = OP_FEATURE[op];
        if (feature) this.unsupported(feature, `opcode 0x${op.toString(16)}`);
        return this.unsupported('unknown opcode', `opcode 0x${op.toString(16)}`);
      }
    }
  }

  private fc(): number {
    const r = this.r;
    const sub = r.u32();
    if (sub <= 7) return sub; // saturating truncation
    switch (sub) {
      case 8: // memory.init dataidx memidx
        r.u32();
        this.memidx();
        return sub;
      case 9: // data.drop
      case 13: // elem.drop
      case 15: // table.grow
      case 16: // table.size
      case 17: // table.fill
        r.u32();
        return sub;
      case 10: // memory.copy
        this.memidx();
        this.memidx();
        return sub;
      case 11: // memory.fill
        this.memidx();
        return sub;
      case 12: // table.init elemidx tableidx
      case 14: // table.copy dst src
        r.u32();
        r.u32();
        return sub;
      default:
        return this.unsupported(sub >= 0x13 && sub <= 0x16 ? 'wide arithmetic' : 'unknown opcode', `opcode 0xfc ${sub}`);
    }
  }

  private fd(): number {
    const r = this.r;
    const sub = r.u32();
    if (sub > 255) {
      if (sub <= 0x113) this.unsupported('relaxed SIMD', `opcode 0xfd ${sub}`);
      this.unsupported('unknown opcode', `opcode 0xfd ${sub}`);
    }
    switch (SIMD_CLASS[sub]) {
      case S_NONE:
        return sub;
      case S_MEMARG:
        this.memarg();
        return sub;
      case S_MEMARG_LANE:
        this.memarg();
        r.u8();
        return sub;
      case S_LANE:
        r.u8();
        return sub;
      case S_BYTES16:
        r.skip(16);
        return sub;
      default:
        return this.unsupported('unknown opcode', `opcode 0xfd ${sub}`);
    }
  }
}

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';

export function valType(r: Reader): ValType {
  const at = r.pos;
  const b = r.u8();
  switch (b) {
    case 0x7f:
      return 'i32';
    case 0x7e:
      return 'i64';
    case 0x7d:
      return 'f32';
    case 0x7c:
      return 'f64';
    case 0x7b:
      return 'v128';
    case 0x70:
      return 'funcref';
    case 0x6f:
      return 'externref';
    default:
      if (b === 0x64 || b === 0x63 || (b >= 0x65 && b <= 0x6e) || (b >= 0x71 && b <= 0x74)) {
        throw unsupported('GC / typed function references', `value type 0x${b.toString(16)}`, at, r.funcIndex);
      }
      if (b === 0x69) throw unsupported('exception handling', 'value type exnref', at, r.funcIndex);
      throw new WasmFormatError('malformed', `invalid value type 0x${b.toString(16)}`, { offset: at, funcIndex: r.funcIndex });
  }
}
