/**
 * A synthetic module of a given size for the "prepare a 1 MB module" benchmark, built with the
 * assembler of src/wasm/binary: thousands of functions of a few hundred bytes each, with what
 * compiled code is made of (i32/i64/f64 arithmetic, loads and stores, if/else, loops, br_table,
 * direct calls), from a seeded PRNG so every run builds the same bytes. No imports; exports
 * `memory`, `alloc` and `work`.
 */
import { assemble, I, T, uleb, type AsmFunc } from '../../src/wasm/binary/assemble.ts';

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

// locals of a work function: 0 p0 i32, 1 p1 i32 (params), 2 a i32, 3 b i32, 4 c i64, 5 d f64
const P1 = 1;
const A = 2;
const B = 3;
const C = 4;
const D = 5;

function f64Const(v: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v, true);
  return [0x44, ...b];
}

function genBody(rand: () => number, index: number, firstWork: number): number[] {
  const int = (n: number) => Math.floor(rand() * n);
  const arith = (): number[] => [...I.get(A), ...I.i32(int(1 << 20) + 3), 0x6c, ...I.get(B), 0x6a, ...I.set(A)];
  const load = (): number[] => [...I.get(A), ...I.i32(0xfffc), 0x71, 0x28, 0x02, ...uleb(int(256) * 4), ...I.get(B), 0x73, ...I.set(B)];
  const store = (): number[] => [...I.get(A), ...I.i32(0xfffc), 0x71, ...I.get(B), 0x36, 0x02, ...uleb(int(256) * 4)];
  const wide = (): number[] => [...I.get(B), 0xad, ...I.i64(BigInt(int(1 << 30)) * 7n + 1n), 0x7e, ...I.get(C), 0x7c, ...I.set(C)];
  const float = (): number[] => [...I.get(B), 0xb7, ...f64Const(rand() * 100), 0xa2, ...I.get(D), 0xa0, ...I.set(D)];
  const simple = [arith, load, store, wide, float];
  const pick = (): number[] => simple[int(simple.length)]();
  const ifElse = (): number[] => [...I.get(B), ...I.i32(int(1000)), 0x48, 0x04, 0x40, ...pick(), ...pick(), 0x05, ...pick(), 0x0b];
  const loop = (): number[] => {
    const inner: number[] = [];
    for (let k = 2 + int(4); k > 0; k--) inner.push(...(rand() < 0.2 ? ifElse() : pick()));
    return [0x02, 0x40, 0x03, 0x40, ...inner, ...I.get(P1), ...I.i32(1), 0x6b, ...I.tee(P1), ...I.brIf(0), 0x0b, 0x0b];
  };
  const brTable = (): number[] => [
    0x02,
    0x40,
    0x02,
    0x40,
    0x02,
    0x40,
    ...I.get(A),
    ...I.i32(3),
    0x71,
    0x0e,
    2,
    0,
    1,
    2,
    0x0b,
    ...pick(),
    0x0b,
    ...pick(),
    0x0b,
  ];
  const call = (): number[] => (index > firstWork ? [...I.get(A), ...I.get(B), ...I.call(firstWork + int(index - firstWork)), ...I.set(B)] : pick());

  const body: number[] = [...I.get(0), ...I.set(A), ...I.i32(int(1 << 16)), ...I.set(B)];
  for (let n = 8 + int(20); n > 0; n--) {
    const r = rand();
    if (r < 0.12) body.push(...loop());
    else if (r < 0.24) body.push(...ifElse());
    else if (r < 0.3) body.push(...brTable());
    else if (r < 0.4) body.push(...call());
    else body.push(...pick());
  }
  body.push(...I.get(B), ...I.get(C), 0xa7, 0x6a, ...I.get(A), 0x73);
  return body;
}

/** A valid module of about `targetBytes` bytes (a little more, never less). */
export function generateModule(targetBytes = 1 << 20, seed = 0x5eed): Uint8Array {
  const rand = prng(seed);
  const alloc: AsmFunc = {
    type: 0,
    locals: [[1, T.i32]],
    // bump allocator from 1024 (global 0), no growth: enough for a module that is only compiled
    body: [...I.gget(0), ...I.tee(1), ...I.get(0), 0x6a, ...I.gset(0), ...I.get(1)],
  };
  const funcs: AsmFunc[] = [alloc];
  const firstWork = 1;
  let size = 200;
  while (size < targetBytes) {
    const body = genBody(rand, funcs.length, firstWork);
    funcs.push({
      type: 1,
      locals: [
        [2, T.i32],
        [1, T.i64],
        [1, T.f64],
      ],
      body,
    });
    size += body.length + 12;
  }
  return assemble({
    types: [
      { params: [T.i32], results: [T.i32] },
      { params: [T.i32, T.i32], results: [T.i32] },
    ],
    funcs,
    memories: [{ min: 1, max: 256 }],
    globals: [{ type: T.i32, mutable: true, init: I.i32(1024) }],
    exports: [
      { name: 'memory', kind: 2, index: 0 },
      { name: 'alloc', kind: 0, index: 0 },
      { name: 'work', kind: 0, index: funcs.length - 1 },
    ],
  });
}

/** `bytes` plus a custom section holding `nonce`: a different module (and hash) with the same code. */
export function withNonce(bytes: Uint8Array, nonce: number): Uint8Array {
  const name = [...new TextEncoder().encode('bench-nonce')];
  const payload = [...uleb(name.length), ...name, ...uleb(nonce)];
  const section = [0, ...uleb(payload.length), ...payload];
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}
