import { ByteWriter } from './writer.ts';

/**
 * A tiny assembler: builds a module from sections given as plain data and bodies given as bytes.
 * For tests, fixtures and benchmarks (no text format, no validation: what you write is what you get).
 */

export const T = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, funcref: 0x70, externref: 0x6f } as const;

export interface AsmFunc {
  /** Type index. */
  type: number;
  /** Local groups: [count, valtype]. */
  locals?: [number, number][];
  /** Instructions, without the final `end` (appended). */
  body: number[];
}

export interface AsmModule {
  types?: { params: number[]; results: number[] }[];
  imports?: (
    | { module: string; name: string; func: number }
    | { module: string; name: string; memory: { min: number; max?: number } }
    | { module: string; name: string; global: { type: number; mutable: boolean } }
    | { module: string; name: string; table: { type: number; min: number; max?: number } }
  )[];
  funcs?: AsmFunc[];
  tables?: { type: number; min: number; max?: number }[];
  memories?: { min: number; max?: number }[];
  /** `init` is a constant expression without its `end`. */
  globals?: { type: number; mutable: boolean; init: number[] }[];
  /** kind: 0 function, 1 table, 2 memory, 3 global. */
  exports?: { name: string; kind: number; index: number }[];
  start?: number;
  /** Raw element segments (each the bytes after the count). */
  elements?: number[][];
  dataCount?: number;
  /** Raw data segments. */
  data?: number[][];
  customs?: { name: string; bytes: number[] }[];
}

export function uleb(v: number): number[] {
  return Array.from(new ByteWriter(8).u32(v).result());
}
export function sleb(v: number | bigint): number[] {
  return Array.from(new ByteWriter(16).s64(v).result());
}

/** A few instruction builders. */
export const I = {
  i32: (v: number): number[] => [0x41, ...sleb(v)],
  i64: (v: number | bigint): number[] => [0x42, ...sleb(v)],
  get: (i: number): number[] => [0x20, ...uleb(i)],
  set: (i: number): number[] => [0x21, ...uleb(i)],
  tee: (i: number): number[] => [0x22, ...uleb(i)],
  gget: (i: number): number[] => [0x23, ...uleb(i)],
  gset: (i: number): number[] => [0x24, ...uleb(i)],
  call: (i: number): number[] => [0x10, ...uleb(i)],
  br: (d: number): number[] => [0x0c, ...uleb(d)],
  brIf: (d: number): number[] => [0x0d, ...uleb(d)],
  refFunc: (i: number): number[] => [0xd2, ...uleb(i)],
};

function limits(w: ByteWriter, l: { min: number; max?: number }): void {
  if (l.max === undefined) w.u8(0).u32(l.min);
  else w.u8(1).u32(l.min).u32(l.max);
}

export function assemble(m: AsmModule): Uint8Array {
  const w = new ByteWriter(256);
  w.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  if (m.types?.length) {
    w.section(1, (s) => {
      s.u32(m.types!.length);
      for (const t of m.types!) {
        s.u8(0x60).u32(t.params.length).bytes(t.params).u32(t.results.length).bytes(t.results);
      }
    });
  }
  if (m.imports?.length) {
    w.section(2, (s) => {
      s.u32(m.imports!.length);
      for (const im of m.imports!) {
        s.name(im.module).name(im.name);
        if ('func' in im) s.u8(0).u32(im.func);
        else if ('table' in im) {
          s.u8(1).u8(im.table.type);
          limits(s, im.table);
        } else if ('memory' in im) {
          s.u8(2);
          limits(s, im.memory);
        } else
          s.u8(3)
            .u8(im.global.type)
            .u8(im.global.mutable ? 1 : 0);
      }
    });
  }
  if (m.funcs?.length) {
    w.section(3, (s) => {
      s.u32(m.funcs!.length);
      for (const f of m.funcs!) s.u32(f.type);
    });
  }
  if (m.tables?.length) {
    w.section(4, (s) => {
      s.u32(m.tables!.length);
      for (const t of m.tables!) {
        s.u8(t.type);
        limits(s, t);
      }
    });
  }
  if (m.memories?.length) {
    w.section(5, (s) => {
      s.u32(m.memories!.length);
      for (const mem of m.memories!) limits(s, mem);
    });
  }
  if (m.globals?.length) {
    w.section(6, (s) => {
      s.u32(m.globals!.length);
      for (const g of m.globals!)
        s.u8(g.type)
          .u8(g.mutable ? 1 : 0)
          .bytes(g.init)
          .u8(0x0b);
    });
  }
  if (m.exports?.length) {
    w.section(7, (s) => {
      s.u32(m.exports!.length);
      for (const e of m.exports!) s.name(e.name).u8(e.kind).u32(e.index);
    });
  }
  if (m.start !== undefined) w.section(8, (s) => s.u32(m.start!));
  if (m.elements?.length) {
    w.section(9, (s) => {
      s.u32(m.elements!.length);
      for (const e of m.elements!) s.bytes(e);
    });
  }
  if (m.dataCount !== undefined) w.section(12, (s) => s.u32(m.dataCount!));
  if (m.funcs?.length) {
    w.section(10, (s) => {
      s.u32(m.funcs!.length);
      for (const f of m.funcs!) {
        const b = new ByteWriter(f.body.length + 16);
        const locals = f.locals ?? [];
        b.u32(locals.length);
        for (const [n, t] of locals) b.u32(n).u8(t);
        b.bytes(f.body).u8(0x0b);
        s.u32(b.len).bytes(b.result());
      }
    });
  }
  if (m.data?.length) {
    w.section(11, (s) => {
      s.u32(m.data!.length);
      for (const d of m.data!) s.bytes(d);
    });
  }
  for (const c of m.customs ?? []) {
    w.section(0, (s) => s.name(c.name).bytes(c.bytes));
  }
  return w.result().slice();
}
