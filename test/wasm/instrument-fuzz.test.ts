import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, uleb, I, T } from '../../src/wasm/binary/index.ts';
import { instrument, setFuel, fuelLeft } from '../../src/wasm/instrument/index.ts';

// Differential test: random structured programs (nested blocks, ifs, loops; br / br_if / br_table
// to any enclosing label, across loops; calls) run the same before and after the rewrite.
const WebAssembly: any = (globalThis as any).WebAssembly;

function rng(seed: number): () => number {
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

const ACC = 1; // local 0 is the param
const FIRST_CTR = 2;
const MAX_CTRS = 8;

interface Label {
  loop: boolean;
  ctr: number;
}

function genProgram(rand: () => number): number[] {
  const body: number[] = [];
  const labels: Label[] = [{ loop: false, ctr: -1 }]; // the function label
  let ctrs = 0;
  const int = (n: number) => Math.floor(rand() * n);
  const mix = () => body.push(...I.get(ACC), ...I.i32(31), 0x6c, ...I.i32(int(1000) - 500), 0x6a, ...I.set(ACC));
  // a branch to a random enclosing label (guarded so that loops still terminate)
  const branch = () => {
    const d = int(labels.length);
    const target = labels[labels.length - 1 - d];
    if (target.loop) {
      body.push(...I.get(FIRST_CTR + target.ctr), ...I.i32(0), 0x4a); // ctr > 0
      body.push(...I.get(ACC), ...I.i32(1), 0x71, 0x71); // && acc & 1
      body.push(...I.brIf(d));
    } else if (d === labels.length - 1) {
      body.push(...I.get(ACC), ...I.i32(7), 0x71, 0x45, 0x04, 0x40, ...I.get(ACC), ...I.br(d + 1), 0x0b); // rare return
    } else if (rand() < 0.5) {
      body.push(...I.get(ACC), ...I.i32(3), 0x71, 0x45, ...I.brIf(d)); // acc & 3 == 0
    } else {
      // br_table over two random non-loop targets and a default
      const pick = () => {
        for (;;) {
          const x = int(labels.length - 1);
          if (!labels[labels.length - 1 - x].loop) return x;
        }
      };
      const a = pick();
      const b = pick();
      body.push(...I.get(ACC), ...I.i32(5), 0x70); // acc % 5 (signed): -4..4, out of range -> default
      body.push(0x0e, 2, a, b, d);
    }
  };
  const stmts = (depth: number, n: number): void => {
    for (let i = 0; i < n; i++) {
      const k = rand();
      if (depth > 4 || k < 0.35) mix();
      else if (k < 0.45) {
        body.push(...I.get(ACC), ...I.call(1), ...I.set(ACC));
      } else if (k < 0.6) {
        body.push(...I.get(ACC), ...I.i32(1), 0x71, 0x04, 0x40);
        labels.push({ loop: false, ctr: -1 });
        stmts(depth + 1, 1 + int(3));
        if (rand() < 0.5) {
          body.push(0x05);
          stmts(depth + 1, 1 + int(3));
        }
        labels.pop();
        body.push(0x0b);
      } else if (k < 0.75) {
        body.push(0x02, 0x40);
        labels.push({ loop: false, ctr: -1 });
        stmts(depth + 1, 1 + int(2));
        branch();
        stmts(depth + 1, int(3));
        labels.pop();
        body.push(0x0b);
      } else if (k < 0.9 && ctrs < MAX_CTRS) {
        const c = ctrs++;
        body.push(...I.i32(1 + int(6)), ...I.set(FIRST_CTR + c));
        body.push(0x03, 0x40);
        labels.push({ loop: true, ctr: c });
        body.push(...I.get(FIRST_CTR + c), ...I.i32(1), 0x6b, ...I.set(FIRST_CTR + c)); // ctr--
        stmts(depth + 1, 1 + int(3));
        if (rand() < 0.5) branch();
        body.push(...I.get(FIRST_CTR + c), ...I.i32(0), 0x4a, ...I.brIf(0)); // while ctr > 0
        labels.pop();
        body.push(0x0b);
      } else branch();
    }
  };
  stmts(0, 3 + int(5));
  body.push(...I.get(ACC));
  return body;
}

test('random structured programs compute the same results after the rewrite', () => {
  let checked = 0;
  let stopped = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const rand = rng(seed * 7919);
    const body = genProgram(rand);
    const bytes = assemble({
      types: [{ params: [T.i32], results: [T.i32] }],
      funcs: [
        { type: 0, locals: [[1 + MAX_CTRS, T.i32]], body: [...I.get(0), ...I.set(ACC), ...body] },
        { type: 0, body: [...I.get(0), ...I.i32(0x9e3779b1 | 0), 0x6c, ...I.i32(15), 0x78] }, // mix: rotl(x * golden, 15)
      ],
      exports: [{ name: 'f', kind: 0, index: 0 }],
    });
    assert.ok(WebAssembly.validate(bytes), `seed ${seed}: generator produced an invalid module`);
    const plain = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    const { bytes: out } = instrument(bytes, { memoryMaxPages: 1, pollInterval: 50 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(out), {
      vecron_rt: {
        out_of_fuel() {
          throw new Error('fuel');
        },
        poll() {},
      },
    }).exports;
    for (const x of [0, 1, 12345, -7]) {
      setFuel(inst, 10_000_000n, 50);
      const want = plain.f(x);
      assert.equal(inst.f(x), want, `seed ${seed}, input ${x}`);
      const used = 10_000_000n - fuelLeft(inst);
      setFuel(inst, 10_000_000n, 50);
      inst.f(x);
      assert.equal(10_000_000n - fuelLeft(inst), used, 'fuel is deterministic');
      // with exactly that budget it runs; with one unit less it either stops at a check or (when
      // the overspending blocks come after the last check) returns owing exactly 1
      setFuel(inst, used, 50);
      assert.equal(inst.f(x), want);
      assert.equal(fuelLeft(inst), 0n);
      setFuel(inst, used - 1n, 50);
      try {
        inst.f(x);
        assert.equal(fuelLeft(inst), -1n);
      } catch (e) {
        assert.match(String(e), /fuel/);
        stopped++;
      }
      checked++;
    }
  }
  assert.equal(checked, 1200);
  assert.ok(stopped > 100, `stopped ${stopped}`);
  if (process.env.FUZZ_VERBOSE) console.log('stopped', stopped);
});

// Differential test with tables and bulk operations (issue 11): random sequences of memory.fill /
// copy / init, data.drop, memory.grow / size, table.fill / copy / init / grow / size, elem.drop,
// call_indirect and loads, with operands in and out of bounds, inside loops. Whenever the fuel
// suffices, the rewritten module ends the same way: the same result and memory, or the same trap.
function genBulk(rand: () => number): number[] {
  const int = (n: number) => Math.floor(rand() * n);
  const b: number[] = [];
  const ACC2 = 1;
  const CTR = 2;
  const mix = () => b.push(...I.get(ACC2), 0x6a, ...I.i32(0x9e3779b1 | 0), 0x6c, ...I.set(ACC2)); // acc = (acc + x) * golden
  // small operands, now and then one out of bounds or huge
  const addr = () => I.i32(rand() < 0.02 ? (rand() < 0.5 ? 70_000 + int(100_000) : -1 - int(4)) : int(256));
  const size = () => I.i32(rand() < 0.02 ? (rand() < 0.5 ? 65_537 + int(1000) : -1) : int(200));
  const tidx = () => I.i32(rand() < 0.02 ? 60 + int(20) : int(8));
  const tsize = () => I.i32(rand() < 0.02 ? (rand() < 0.5 ? 100 + int(100) : -1) : int(12));
  const ref = () => (rand() < 0.1 ? [0xd0, 0x70] : [0xd2, ...uleb(1 + int(3))]);
  const op = () => {
    switch (int(14)) {
      case 0:
        b.push(...addr(), ...I.i32(int(256)), ...size(), 0xfc, 11, 0);
        break; // memory.fill
      case 1:
        b.push(...addr(), ...addr(), ...size(), 0xfc, 10, 0, 0);
        break; // memory.copy
      case 2:
        b.push(...addr(), ...I.i32(int(20)), ...I.i32(int(20)), 0xfc, 8, 0, 0);
        break; // memory.init
      case 3:
        if (rand() < 0.05) b.push(0xfc, 9, 0);
        break; // data.drop
      case 4:
        b.push(...I.i32(rand() < 0.8 ? int(2) : 70_000), 0x40, 0, ...I.i32(1), 0x6a);
        mix();
        break; // memory.grow
      case 5:
        b.push(...tidx(), ...ref(), ...tsize(), 0xfc, 17, 0);
        break; // table.fill
      case 6:
        b.push(...tidx(), ...tidx(), ...tsize(), 0xfc, 14, 0, 0);
        break; // table.copy
      case 7:
        b.push(...tidx(), ...I.i32(int(3)), ...I.i32(int(3)), 0xfc, 12, 0, 0);
        break; // table.init
      case 8:
        if (rand() < 0.05) b.push(0xfc, 13, 0);
        break; // elem.drop
      case 9:
        b.push(...ref(), ...I.i32(rand() < 0.8 ? int(8) : 1000), 0xfc, 15, 0, ...I.i32(1), 0x6a);
        mix();
        break; // table.grow
      case 10:
        b.push(0xfc, 16, 0);
        mix();
        break; // table.size
      case 11:
        b.push(...I.get(ACC2), ...I.i32(rand() < 0.97 ? int(3) : int(200)), 0x11, 0, 0);
        mix();
        break; // call_indirect
      case 12:
        b.push(...I.i32(int(300)), 0x28, 0x00, 0x00);
        mix();
        break; // i32.load
      default:
        b.push(0x3f, 0);
        mix(); // memory.size
    }
  };
  const n = 4 + int(10);
  for (let i = 0; i < n; i++) {
    if (rand() < 0.25) {
      b.push(...I.i32(1 + int(5)), ...I.set(CTR), 0x03, 0x40);
      for (let k = 1 + int(3); k > 0; k--) op();
      b.push(...I.get(CTR), ...I.i32(1), 0x6b, ...I.tee(CTR), ...I.brIf(0), 0x0b);
    } else op();
  }
  b.push(...I.get(ACC2));
  return b;
}

test('random modules with tables and bulk operations behave the same instrumented (same result and memory, or same trap)', () => {
  const v = { params: [T.i32], results: [T.i32] };
  let same = 0;
  let traps = 0;
  for (let seed = 1; seed <= 400; seed++) {
    const rand = rng(seed * 104729);
    const bytes = assemble({
      types: [v],
      funcs: [
        { type: 0, locals: [[2, T.i32]], body: [...I.get(0), ...I.set(1), ...genBulk(rand)] },
        { type: 0, body: [...I.get(0), ...I.i32(3), 0x6a] },
        { type: 0, body: [...I.get(0), ...I.i32(5), 0x6c] },
        { type: 0, body: [...I.get(0), ...I.i32(7), 0x73] },
      ],
      tables: [{ type: T.funcref, min: 16, max: 64 }],
      memories: [{ min: 1, max: 3 }],
      exports: [
        { name: 'f', kind: 0, index: 0 },
        { name: 'memory', kind: 2, index: 0 },
      ],
      // active segment at table offset 0: funcs 1, 2, 3; a passive one of 5 entries
      elements: [
        [0x00, ...I.i32(0), 0x0b, 3, 1, 2, 3],
        [0x01, 0x00, 5, 3, 2, 1, 2, 3],
      ],
      dataCount: 1,
      data: [[0x01, 40, ...Array.from({ length: 40 }, (_, i) => (i * 37 + seed) & 0xff)]],
    });
    assert.ok(WebAssembly.validate(bytes), `seed ${seed}: generator produced an invalid module`);
    const outcome = (f: (x: number) => number, mem: { buffer: ArrayBuffer }, x: number): string => {
      let r: string;
      try {
        r = `=${f(x)}`;
      } catch (e) {
        if (!(e instanceof WebAssembly.RuntimeError)) throw e;
        r = `trap ${(e as Error).message}`;
      }
      const m = new Uint8Array(mem.buffer);
      let h = 0;
      for (let i = 0; i < m.length; i += 1) h = (Math.imul(h, 31) + m[i]) | 0;
      return `${r} mem ${m.length}:${h}`;
    };
    for (const x of [0, 7]) {
      const plain = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
      const want = outcome(plain.f, plain.memory, x);
      const { bytes: out } = instrument(bytes, { memoryMaxPages: 4, pollInterval: 50 });
      const inst = new WebAssembly.Instance(new WebAssembly.Module(out), {
        vecron_rt: {
          out_of_fuel() {
            throw new Error('fuel');
          },
          poll() {},
        },
      }).exports;
      setFuel(inst, 100_000_000n, 50);
      assert.equal(outcome(inst.f, inst.memory, x), want, `seed ${seed}, input ${x}`);
      if (want.startsWith('trap')) traps++;
      same++;
    }
  }
  assert.equal(same, 800);
  assert.ok(traps > 50 && traps < 700, `traps ${traps}: the generator should produce both outcomes`);
});
