import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, I, T } from '../../src/wasm/binary/index.ts';
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
  if (process.env.FUZZ_VERBOSE) console.log("stopped", stopped);
});
