import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, I, T, parseModule, WasmFormatError, type AsmModule } from '../../src/wasm/binary/index.ts';
import { instrument, setFuel, fuelLeft, type InstrumentOptions } from '../../src/wasm/instrument/index.ts';

// The project's tsconfig has no WebAssembly typings (lib ES2023, no DOM): use the runtime global untyped.
const WebAssembly: any = (globalThis as any).WebAssembly;

const V = { params: [], results: [] };
class OutOfFuel extends Error {}
class Interrupted extends Error {}

interface Run {
  exports: Record<string, any>;
  polls: () => number;
  setFuel: (n: bigint) => void;
  consumed: () => bigint;
}

function prepare(
  mod: AsmModule | Uint8Array,
  opts: Partial<InstrumentOptions> = {},
  extra: { imports?: Record<string, Record<string, unknown>>; interruptAfterPolls?: number } = {},
): Run {
  const bytes = mod instanceof Uint8Array ? mod : assemble(mod);
  assert.ok(WebAssembly.validate(bytes), 'input module must be valid');
  const { bytes: out, meta } = instrument(bytes, { memoryMaxPages: 16, ...opts });
  let err = '';
  try {
    new WebAssembly.Module(out);
  } catch (e) {
    err = String(e);
  }
  assert.equal(err, '', 'instrumented module must validate');
  let polls = 0;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(out), {
    ...extra.imports,
    vecron_rt: {
      out_of_fuel() {
        throw new OutOfFuel('fuel exhausted');
      },
      poll() {
        polls++;
        if (extra.interruptAfterPolls !== undefined && polls >= extra.interruptAfterPolls) throw new Interrupted('timeout');
      },
    },
  });
  let budget = 0n;
  return {
    exports: inst.exports as Record<string, any>,
    polls: () => polls,
    setFuel: (n) => {
      budget = n;
      setFuel(inst.exports, n, meta.pollInterval);
    },
    consumed: () => budget - fuelLeft(inst.exports),
  };
}

test('a straight-line function consumes exactly its instruction count', () => {
  const r = prepare({
    types: [{ params: [], results: [T.i32] }],
    funcs: [{ type: 0, body: [...I.i32(1), ...I.i32(2), 0x6a] }],
    exports: [{ name: 'f', kind: 0, index: 0 }],
  });
  r.setFuel(1000n);
  assert.equal(r.exports.f(), 3);
  assert.equal(r.consumed(), 3n);
  r.setFuel(1000n);
  r.exports.f();
  assert.equal(r.consumed(), 3n);
});

test('a run may use exactly its budget; one unit less traps; a trap has paid for its whole block', () => {
  const r = prepare({
    types: [{ params: [], results: [T.i32] }, V],
    funcs: [
      { type: 0, body: [...I.i32(1), ...I.i32(2), 0x6a] },
      { type: 1, body: [...I.i32(1), ...I.i32(0), 0x6d, 0x1a] }, // 1 / 0: traps at the third instruction
    ],
    exports: [
      { name: 'f', kind: 0, index: 0 },
      { name: 'div0', kind: 0, index: 1 },
    ],
  });
  r.setFuel(3n);
  assert.equal(r.exports.f(), 3);
  assert.equal(r.consumed(), 3n);
  r.setFuel(2n);
  assert.throws(() => r.exports.f(), OutOfFuel);
  r.setFuel(100n);
  assert.throws(
    () => r.exports.div0(),
    (e: unknown) => e instanceof WebAssembly.RuntimeError && /divide by zero/.test(String(e)),
  );
  assert.equal(r.consumed(), 4n);
});

test('branches are charged per block: only the block taken pays', () => {
  // local.get 0; if (result i32) i32.const 10; i32.const 1; i32.add; else i32.const 20; end
  const r = prepare({
    types: [{ params: [T.i32], results: [T.i32] }],
    funcs: [{ type: 0, body: [...I.get(0), 0x04, T.i32, ...I.i32(10), ...I.i32(1), 0x6a, 0x05, ...I.i32(20), 0x0b] }],
    exports: [{ name: 'f', kind: 0, index: 0 }],
  });
  r.setFuel(1000n);
  assert.equal(r.exports.f(1), 11);
  assert.equal(r.consumed(), 2n + 3n);
  r.setFuel(1000n);
  assert.equal(r.exports.f(0), 20);
  assert.equal(r.consumed(), 2n + 1n);
});

const sumLoop: AsmModule = {
  types: [{ params: [T.i32], results: [T.i32] }],
  funcs: [
    {
      type: 0,
      locals: [[1, T.i32]],
      body: [
        0x03,
        0x40, // loop                                   (1, entry block)
        ...I.get(1),
        ...I.get(0),
        0x6a,
        ...I.set(1), //        4 per iteration
        ...I.get(0),
        ...I.i32(1),
        0x6b,
        ...I.tee(0), //         4
        ...I.brIf(0), //                                        1
        0x0b, //                                                end (0)
        ...I.get(1), //                                         1
      ],
    },
  ],
  exports: [{ name: 'sum', kind: 0, index: 0 }],
};

test('a loop consumes 9 per iteration plus its entry and exit blocks', () => {
  const r = prepare(sumLoop);
  for (const n of [1, 10, 1000]) {
    r.setFuel(1_000_000n);
    assert.equal(r.exports.sum(n), (n * (n + 1)) / 2);
    assert.equal(r.consumed(), BigInt(9 * n + 2));
  }
});

test('an endless loop stops with out_of_fuel, exact to the block', () => {
  const r = prepare({
    types: [V],
    funcs: [{ type: 0, body: [0x03, 0x40, ...I.br(0), 0x0b] }],
    exports: [{ name: 'spin', kind: 0, index: 0 }],
  });
  r.setFuel(1000n);
  assert.throws(() => r.exports.spin(), OutOfFuel);
  // entry block (loop = 1) + n header blocks of 1 (br): stops at the first check that sees fuel < 0
  assert.equal(r.consumed(), 1001n);
  // a guest trap is not a fuel trap
  const t = prepare({ types: [V], funcs: [{ type: 0, body: [0x00] }], exports: [{ name: 'trap', kind: 0, index: 0 }] });
  t.setFuel(10n);
  assert.throws(
    () => t.exports.trap(),
    (e: unknown) => e instanceof WebAssembly.RuntimeError,
  );
  // no fuel set: the first check fails
  const z = prepare(sumLoop);
  assert.throws(() => z.exports.sum(5), OutOfFuel);
});

test('deep recursion without loops is metered at function entries', () => {
  // f(n) = n == 0 ? 0 : f(n - 1)
  const r = prepare({
    types: [{ params: [T.i32], results: [T.i32] }],
    funcs: [
      {
        type: 0,
        body: [...I.get(0), 0x45, 0x04, T.i32, ...I.i32(0), 0x05, ...I.get(0), ...I.i32(1), 0x6b, ...I.call(0), 0x0b],
      },
    ],
    exports: [{ name: 'f', kind: 0, index: 0 }],
  });
  r.setFuel(1_000_000n);
  assert.equal(r.exports.f(100), 0);
  // per level: get, eqz, if (3) + else branch get, const, sub, call (4); last level: 3 + 1
  assert.equal(r.consumed(), BigInt(100 * 7 + 4));
  r.setFuel(50n);
  assert.throws(() => r.exports.f(100), OutOfFuel);
});

test('poll is called during a long loop, and an interrupt stops it cleanly', () => {
  const r = prepare(sumLoop, { pollInterval: 1000 });
  r.setFuel(10_000_000n);
  r.exports.sum(100_000); // 900,002 units
  // one poll per interval; each interval overshoots by at most one loop body (9)
  assert.ok(r.polls() >= 890 && r.polls() <= 901, `polls: ${r.polls()}`);

  const d = prepare(sumLoop); // default interval 2^16
  d.setFuel(10_000_000_000n);
  d.exports.sum(1_000_000);
  assert.ok(d.polls() >= 130 && d.polls() <= 140, `polls: ${d.polls()}`);

  const s = prepare(
    { types: [V], funcs: [{ type: 0, body: [0x03, 0x40, ...I.br(0), 0x0b] }], exports: [{ name: 'spin', kind: 0, index: 0 }] },
    { pollInterval: 4096 },
    { interruptAfterPolls: 5 },
  );
  s.setFuel(1n << 60n);
  assert.throws(() => s.exports.spin(), Interrupted);
  assert.equal(s.polls(), 5);
});

test('fuel passed between functions: wrappers, multi-value, locals past 127, tail calls, traps after calls', () => {
  const x2i = { params: [T.i32], results: [T.i32] };
  const rci = (type: number) => [0x13, type, 0x00]; // return_call_indirect type, table 0
  const r = prepare({
    types: [x2i, { params: [T.i32], results: [T.i32, T.i64] }],
    funcs: [
      /* 0 add1 */ { type: 0, body: [...I.get(0), ...I.i32(1), 0x6a] },
      /* 1 multi: a branch to the function label with two values, a local past 127 */
      { type: 1, locals: [[200, T.i32]], body: [...I.get(0), ...I.set(150), ...I.get(150), ...I.i64(7), ...I.br(0)] },
      /* 2 via the table */ { type: 0, body: [...I.get(0), ...I.i32(0), 0x11, 0x00, 0x00] },
      /* 3 countdown by return_call */
      { type: 0, body: [...I.get(0), 0x45, 0x04, T.i32, ...I.get(0), 0x05, ...I.get(0), ...I.i32(1), 0x6b, 0x12, 3, 0x0b] },
      /* 4 return_call_indirect: global form */ { type: 0, body: [...I.get(0), ...I.i32(0), ...rci(0)] },
      /* 5 calls 4 */ { type: 0, body: [...I.get(0), ...I.call(4), ...I.i32(1), 0x6a] },
      /* 6 tail-calls 4: global form too */ { type: 0, body: [...I.get(0), 0x12, 4] },
      /* 7 global form, tail-calls 0 (through its wrapper) or the table */
      { type: 0, body: [...I.get(0), 0x04, T.i32, ...I.get(0), 0x12, 0, 0x05, ...I.get(0), ...I.i32(0), ...rci(0), 0x0b] },
      /* 8 a trap after a call */ { type: 0, body: [...I.get(0), ...I.call(0), 0x1a, ...I.i32(70000), 0x28, 0x02, 0x00] },
      /* 9 ref.func */ { type: 0, body: [...I.refFunc(0), 0xd1] },
      /* 10 br_table to the function label */ { type: 0, body: [...I.get(0), ...I.get(0), 0x0e, 0x01, 0x00, 0x00] },
    ],
    tables: [{ type: T.funcref, min: 1 }],
    memories: [{ min: 1 }],
    elements: [[0x00, ...I.i32(0), 0x0b, 0x01, 0x00]],
    exports: ['add1', 'multi', 'viaTable', 'countdown', 'tailInd', 'callsTailInd', 'tailToGlobal', 'mixed', 'trapAfterCall', 'refFunc', 'brTable'].map(
      (name, index) => ({ name, kind: 0, index }),
    ),
  });
  const expect = (name: string, arg: number, result: unknown, fuel: number) => {
    r.setFuel(10_000_000n);
    assert.deepEqual(r.exports[name](arg), result, name);
    assert.equal(r.consumed(), BigInt(fuel), `${name}(${arg}) fuel`);
  };
  expect('add1', 4, 5, 3);
  expect('multi', 9, [9, 7n], 5);
  expect('viaTable', 4, 5, 3 + 3);
  expect('countdown', 10, 0, 7 * 10 + 4);
  expect('countdown', 1_000_000, 0, 7 * 1_000_000 + 4); // still a tail call: no stack overflow
  expect('tailInd', 4, 5, 3 + 3);
  expect('callsTailInd', 4, 6, 4 + 6);
  expect('tailToGlobal', 4, 5, 2 + 6);
  expect('mixed', 1, 2, 2 + 2 + 3);
  expect('mixed', 0, 1, 2 + 3 + 3);
  expect('refFunc', 0, 0, 2);
  expect('brTable', 6, 6, 3);
  // a trap after a call has paid for its whole block, and for the callee
  r.setFuel(1000n);
  assert.throws(
    () => r.exports.trapAfterCall(1),
    (e: unknown) => e instanceof WebAssembly.RuntimeError,
  );
  assert.equal(r.consumed(), 5n + 3n);
  // the table holds the original type
  assert.equal(r.exports.viaTable.length, 1);
  // exhaustion is detected in the callee's entry check, exact to the block
  r.setFuel(7n * 5n + 2n);
  assert.throws(() => r.exports.countdown(10), OutOfFuel);
  assert.equal(r.consumed(), 7n * 5n + 3n);
});

test('memory.copy / memory.fill / memory.init pay size/64 more', () => {
  const r = prepare({
    types: [{ params: [T.i32], results: [] }],
    funcs: [
      { type: 0, body: [...I.i32(0), ...I.i32(7), ...I.get(0), 0xfc, 11, 0] },
      { type: 0, body: [...I.i32(100), ...I.i32(0), ...I.get(0), 0xfc, 10, 0, 0] },
      { type: 0, body: [...I.i32(0), ...I.i32(0), ...I.get(0), 0xfc, 8, 0, 0] },
    ],
    memories: [{ min: 1 }],
    dataCount: 1,
    data: [[1, 0x80, 0x01, ...new Array(128).fill(3)]],
    exports: [
      { name: 'fill', kind: 0, index: 0 },
      { name: 'copy', kind: 0, index: 1 },
      { name: 'init', kind: 0, index: 2 },
      { name: 'memory', kind: 2, index: 0 },
    ],
  });
  r.setFuel(100_000n);
  r.exports.fill(6400);
  assert.equal(r.consumed(), 4n + 100n);
  assert.equal(new Uint8Array(r.exports.memory.buffer)[6399], 7);
  r.setFuel(100_000n);
  r.exports.copy(640);
  assert.equal(r.consumed(), 4n + 10n);
  r.setFuel(100_000n);
  r.exports.init(128);
  assert.equal(r.consumed(), 4n + 2n);
  // the size is charged before the instruction runs: without the fuel for it, it never starts
  r.setFuel(50n);
  new Uint8Array(r.exports.memory.buffer).fill(0);
  assert.throws(() => r.exports.fill(65536), OutOfFuel);
  assert.equal(new Uint8Array(r.exports.memory.buffer)[0], 0, 'the fill did not run');
  // a size beyond the memory is charged as the whole memory at most (it traps without the work)
  r.setFuel(100_000n);
  assert.throws(() => r.exports.fill(-1), WebAssembly.RuntimeError);
  assert.equal(r.consumed(), 4n + (16n * 65536n) / 64n); // the clamp: 16 pages
});

test('memory maximum is clamped: growth past it fails inside the guest', () => {
  const mod: AsmModule = {
    types: [{ params: [T.i32], results: [T.i32] }],
    funcs: [{ type: 0, body: [...I.get(0), 0x40, 0] }],
    memories: [{ min: 1 }],
    exports: [
      { name: 'grow', kind: 0, index: 0 },
      { name: 'memory', kind: 2, index: 0 },
    ],
  };
  const r = prepare(mod, { memoryMaxPages: 4 });
  r.setFuel(1000n);
  assert.equal(r.exports.grow(3), 1);
  assert.equal(r.exports.grow(1), -1);
  assert.equal(r.exports.memory.buffer.byteLength, 4 * 65536);
  // a declared smaller maximum is kept
  const small = instrument(assemble({ ...mod, memories: [{ min: 1, max: 2 }] }), { memoryMaxPages: 4 });
  assert.equal(parseModule(small.bytes).memories[0].max, 2);
  // initial size above the limit
  assert.throws(
    () => instrument(assemble({ ...mod, memories: [{ min: 20 }] }), { memoryMaxPages: 16 }),
    (e: unknown) => e instanceof WasmFormatError && e.code === 'memory_limit' && /20 pages/.test(e.message) && /16 pages/.test(e.message),
  );
});

test('an imported memory is clamped too', () => {
  const mod = assemble({
    types: [{ params: [T.i32], results: [T.i32] }],
    imports: [{ module: 'env', name: 'memory', memory: { min: 1, max: 1000 } }],
    funcs: [{ type: 0, body: [...I.get(0), 0x40, 0] }],
    exports: [{ name: 'grow', kind: 0, index: 0 }],
  });
  const { bytes, meta } = instrument(mod, { memoryMaxPages: 8 });
  const info = parseModule(bytes);
  assert.deepEqual([info.memories[0].min, info.memories[0].max, info.memories[0].imported], [1, 8, true]);
  assert.deepEqual(meta.memory, { min: 1, max: 8, imported: true });
  const rt = { out_of_fuel() {}, poll() {} };
  const m = new WebAssembly.Module(bytes);
  assert.throws(
    () => new WebAssembly.Instance(m, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1000 }) }, vecron_rt: rt }),
    WebAssembly.LinkError,
  );
  const inst = new WebAssembly.Instance(m, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 8 }) }, vecron_rt: rt });
  setFuel(inst.exports, 10_000n);
  assert.equal((inst.exports.grow as (n: number) => number)(7), 1);
  assert.equal((inst.exports.grow as (n: number) => number)(1), -1);
});

test('function indices are remapped everywhere: calls, exports, tables, ref.func, start, names', () => {
  const nameSection = [
    1, // function names
    ...(() => {
      const enc = (s: string) => [s.length, ...Buffer.from(s)];
      const payload = [4, 0, ...enc('log'), 1, ...enc('add'), 2, ...enc('boom'), 3, ...enc('init')];
      return [payload.length, ...payload];
    })(),
  ];
  const logged: number[] = [];
  const r = prepare(
    {
      types: [{ params: [T.i32], results: [] }, { params: [T.i32, T.i32], results: [T.i32] }, V],
      imports: [{ module: 'vecron', name: 'log', func: 0 }],
      funcs: [
        { type: 1, body: [...I.get(0), ...I.get(1), 0x6a, ...I.tee(0), ...I.call(0), ...I.get(0)] }, // 1 add (logs)
        { type: 2, body: [0x00] }, // 2 boom
        { type: 2, body: [...I.i32(42), ...I.gset(0)] }, // 3 init (start)
        // 4: call_indirect through the table (slot 0 = add), 5: through ref.func in a global
        { type: 1, body: [...I.get(0), ...I.get(1), ...I.i32(0), 0x11, 1, 0] },
        { type: 1, body: [...I.get(0), ...I.get(1), ...I.gget(1), 0xd1, 0x1a, ...I.i32(1), 0x11, 1, 0] },
      ],
      tables: [{ type: T.funcref, min: 2 }],
      globals: [
        { type: T.i32, mutable: true, init: I.i32(0) },
        { type: T.funcref, mutable: false, init: I.refFunc(1) },
      ],
      exports: [
        { name: 'add', kind: 0, index: 1 },
        { name: 'boom', kind: 0, index: 2 },
        { name: 'viaTable', kind: 0, index: 4 },
        { name: 'viaTable2', kind: 0, index: 5 },
        { name: 'g', kind: 3, index: 0 },
      ],
      start: 3,
      elements: [
        [0, ...I.i32(0), 0x0b, 1, 1], // active, funcref indices: [add]
        [4, ...I.i32(1), 0x0b, 1, ...I.refFunc(1), 0x0b], // active, exprs: [ref.func add]
        [3, 0, 1, 5], // declarative
      ],
      customs: [{ name: 'name', bytes: nameSection }],
    },
    {},
    { imports: { vecron: { log: (v: number) => logged.push(v) } } },
  );
  r.setFuel(10_000n);
  assert.equal(r.exports.add(2, 3), 5);
  assert.deepEqual(logged, [5]);
  assert.equal(r.exports.viaTable(4, 5), 9);
  assert.equal(r.exports.viaTable2(1, 1), 2);
  // the start function did not run at instantiation; it is exported for the host to call with fuel
  assert.equal(r.exports.g.value, 0);
  r.exports.__vecron_start();
  assert.equal(r.exports.g.value, 42);
  // names still point at the right functions
  assert.throws(
    () => r.exports.boom(),
    (e: any) => e instanceof WebAssembly.RuntimeError && /boom/.test(e.stack) && !/\binit\b/.test(e.stack.split('\n')[1]),
  );
});

test('modules using SIMD, multi-value, tail calls and reference types still validate after the rewrite', () => {
  const v128c = [0xfd, 12, ...new Array(16).fill(1)];
  const r = prepare({
    types: [
      { params: [], results: [T.i32] },
      { params: [T.i32], results: [T.i32, T.i32] },
      { params: [T.i32], results: [T.i32] },
    ],
    funcs: [
      // SIMD: i32x4.extract_lane 0 of (v + v)
      { type: 0, body: [...v128c, ...v128c, 0xfd, 0xae, 0x01, 0xfd, 27, 0] },
      // multi-value block
      { type: 2, body: [...I.get(0), 0x02, 1, ...I.i32(2), 0x0b, 0x6a] },
      // tail call into function 1
      { type: 2, body: [...I.get(0), 0x12, 1] },
      // ref types: table.grow / table.size
      { type: 0, body: [0xd0, 0x70, ...I.i32(3), 0xfc, 15, 0, 0x1a, 0xfc, 16, 0] },
    ],
    tables: [{ type: T.funcref, min: 1 }],
    exports: [
      { name: 'simd', kind: 0, index: 0 },
      { name: 'mv', kind: 0, index: 1 },
      { name: 'tail', kind: 0, index: 2 },
      { name: 'tables', kind: 0, index: 3 },
    ],
  });
  r.setFuel(1000n);
  assert.equal(r.exports.simd(), 0x01010101 * 2);
  assert.equal(r.exports.mv(5), 7);
  assert.equal(r.exports.tail(1), 3);
  assert.equal(r.exports.tables(), 4);
});

test('loops with parameters, nested loops and branches across them keep their meaning', () => {
  const mod: AsmModule = {
    types: [{ params: [T.i32], results: [T.i32] }, V, { params: [T.i32], results: [T.i32] }],
    funcs: [
      {
        type: 0,
        locals: [[2, T.i32]],
        body: [
          ...I.i32(0), // acc
          0x03,
          2, // loop $L1 (param i32) (result i32)
          ...I.set(2), // local2 = acc
          ...I.get(0),
          0x45,
          0x04,
          0x40,
          ...I.get(2),
          ...I.br(2),
          0x0b, // n == 0 -> return acc (br to the function label)
          ...I.get(0),
          ...I.i32(1),
          0x6b,
          ...I.set(0), // n--
          ...I.get(0),
          ...I.set(1), // j = n
          0x02,
          0x40, // block $done
          0x03,
          0x40, // loop $L2
          ...I.get(1),
          0x45,
          ...I.brIf(1), // j == 0 -> $done
          ...I.get(2),
          ...I.i32(1),
          0x6a,
          ...I.set(2), // acc++
          ...I.get(1),
          ...I.i32(1),
          0x6b,
          ...I.set(1), // j--
          ...I.get(1),
          ...I.i32(3),
          0x70, // j % 3
          0x0e,
          2,
          0,
          0,
          0, // br_table [$L2 $L2] default $L2
          0x0b, // end $L2
          0x0b, // end $done
          ...I.get(2),
          ...I.br(0), // continue $L1 with acc
          0x0b, // end $L1
        ],
      },
    ],
    exports: [{ name: 'tri', kind: 0, index: 0 }],
  };
  const plain = new WebAssembly.Instance(new WebAssembly.Module(assemble(mod))).exports;
  const r = prepare(mod, { pollInterval: 7 });
  for (const n of [0, 1, 2, 5, 30]) {
    r.setFuel(1_000_000n);
    assert.equal(r.exports.tri(n), (n * (n - 1)) / 2 + 0);
    assert.equal(plain.tri(n), (n * (n - 1)) / 2 + 0);
  }
  assert.ok(r.polls() > 10);
  r.setFuel(100n);
  assert.throws(() => r.exports.tri(30), OutOfFuel);
});

test('reserved names are refused', () => {
  assert.throws(() => instrument(assemble({ types: [V], imports: [{ module: 'vecron_rt', name: 'poll', func: 0 }] }), { memoryMaxPages: 1 }), /reserved/);
  assert.throws(
    () =>
      instrument(assemble({ types: [V], funcs: [{ type: 0, body: [] }], exports: [{ name: '__vecron_fuel', kind: 0, index: 0 }] }), {
        memoryMaxPages: 1,
      }),
    /reserved/,
  );
});

test('unsupported features are refused by instrument too', () => {
  const bytes = assemble({ types: [V], funcs: [{ type: 0, body: [...I.i32(0), 0xfe, 0x10, 2, 0, 0x1a] }], memories: [{ min: 1 }] });
  assert.throws(
    () => instrument(bytes, { memoryMaxPages: 1 }),
    (e: unknown) => e instanceof WasmFormatError && e.code === 'unsupported_feature' && /threads/.test(e.message),
  );
});

test('a busy loop in a worker thread stops cleanly when another thread sets the interrupt flag', async () => {
  const { Worker } = await import('node:worker_threads');
  const { bytes } = instrument(
    assemble({
      types: [V],
      funcs: [{ type: 0, body: [0x03, 0x40, ...I.br(0), 0x0b] }],
      exports: [{ name: 'spin', kind: 0, index: 0 }],
    }),
    { memoryMaxPages: 1 },
  );
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  // Plain JS worker (the same logic as runtimeImports, inlined: a worker has no tsx here).
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    const flag = new Int32Array(workerData.sab);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(workerData.bytes), {
      vecron_rt: {
        out_of_fuel() { throw new Error('fuel'); },
        poll() { if (Atomics.load(flag, 0) !== 0) throw new Error('interrupted'); },
      },
    });
    inst.exports.__vecron_fuel.value = 65536n;
    inst.exports.__vecron_fuel_reserve.value = 1n << 62n;
    parentPort.postMessage('started');
    const t = Date.now();
    try { inst.exports.spin(); parentPort.postMessage({ error: 'returned' }); }
    catch (e) { parentPort.postMessage({ error: e.message, ms: Date.now() - t, left: String(inst.exports.__vecron_fuel_reserve.value) }); }
    `,
    { eval: true, workerData: { bytes, sab } },
  );
  const result = await new Promise<{ error: string; ms: number }>((resolve, reject) => {
    worker.on('message', (m) => {
      if (m === 'started') setTimeout(() => Atomics.store(flag, 0, 1), 50);
      else resolve(m);
    });
    worker.on('error', reject);
  });
  await worker.terminate();
  assert.equal(result.error, 'interrupted');
  assert.ok(result.ms >= 40 && result.ms < 2000, `stopped after ${result.ms} ms`);
});

test('runtimeImports: out_of_fuel and poll throw errors the host can tell apart', async () => {
  const { runtimeImports, FuelExhaustedError, InterruptedError } = await import('../../src/wasm/instrument/index.ts');
  const { bytes } = instrument(
    assemble({ types: [V], funcs: [{ type: 0, body: [0x03, 0x40, ...I.br(0), 0x0b] }], exports: [{ name: 'spin', kind: 0, index: 0 }] }),
    { memoryMaxPages: 1, pollInterval: 1000 },
  );
  const flag = new Int32Array(new SharedArrayBuffer(4));
  let polls = 0;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), runtimeImports({ interrupt: flag, onPoll: () => polls++ })).exports;
  setFuel(inst, 100_000n, 1000);
  assert.throws(
    () => inst.spin(),
    (e: unknown) => e instanceof FuelExhaustedError && e.code === 'fuel_exhausted',
  );
  assert.ok(polls >= 90, `polls ${polls}`);
  Atomics.store(flag, 0, 1);
  setFuel(inst, 100_000n, 1000);
  assert.throws(
    () => inst.spin(),
    (e: unknown) => e instanceof InterruptedError && e.code === 'timeout',
  );
});

test('tables: clamped all together; table.fill / copy / init / grow pay by size before they run', () => {
  const mod: AsmModule = {
    types: [{ params: [T.i32], results: [T.i32] }],
    funcs: [
      { type: 0, body: [...I.i32(0), 0xd0, 0x70, ...I.get(0), 0xfc, 17, 0, ...I.i32(0)] }, // fill(n)
      { type: 0, body: [...I.i32(1), ...I.i32(0), ...I.get(0), 0xfc, 14, 0, 0, ...I.i32(0)] }, // copy(n)
      { type: 0, body: [0xd0, 0x70, ...I.get(0), 0xfc, 15, 0] }, // grow(n) on table 0
      { type: 0, body: [0xd0, 0x70, ...I.get(0), 0xfc, 15, 1] }, // grow(n) on table 1
      { type: 0, body: [...I.i32(0), ...I.i32(0), ...I.get(0), 0xfc, 12, 0, 0, ...I.i32(0)] }, // init(n)
    ],
    tables: [
      { type: T.funcref, min: 100 },
      { type: T.funcref, min: 10, max: 20 },
    ],
    elements: [[0x01, 0x00, 4, 0, 1, 2, 3]],
    exports: ['fill', 'copy', 'grow', 'grow1', 'init'].map((name, index) => ({ name, kind: 0, index })),
  };
  const r = prepare(mod, { tableMaxEntries: 150 });
  r.setFuel(100_000n);
  r.exports.fill(100);
  assert.equal(r.consumed(), 5n + 100n);
  r.setFuel(100_000n);
  r.exports.copy(50);
  assert.equal(r.consumed(), 5n + 50n);
  r.setFuel(100_000n);
  r.exports.init(4);
  assert.equal(r.consumed(), 5n + 4n);
  // without the fuel for it the fill never starts
  r.setFuel(50n);
  assert.throws(() => r.exports.fill(100), OutOfFuel);
  // the clamp: 150 entries in all, table 0 (no maximum) gets the room first: 100 + 40, table 1 keeps 10
  r.setFuel(100_000n);
  assert.equal(r.exports.grow(40), 100);
  assert.equal(r.exports.grow(1), -1);
  assert.equal(r.exports.grow1(1), -1);
  // a size past the clamp is charged as the clamp (it fails without the work)
  r.setFuel(100_000n);
  assert.equal(r.exports.grow(9_000_000), -1);
  assert.equal(r.consumed(), 3n + 150n);
  const { meta } = instrument(assemble(mod), { memoryMaxPages: 1, tableMaxEntries: 150 });
  assert.deepEqual(meta.tables, [
    { min: 100, max: 140, export: '__vecron_table_0' },
    { min: 10, max: 10, export: '__vecron_table_1' },
  ]);
  // minimums above the limit: memory_limit, with the offset in the uploaded module
  assert.throws(
    () => instrument(assemble(mod), { memoryMaxPages: 1, tableMaxEntries: 100 }),
    (e: unknown) =>
      e instanceof WasmFormatError &&
      e.code === 'memory_limit' &&
      /110 initial entries together \(table 0: 100\), above the table limit of 100/.test(e.message) &&
      e.offset !== undefined,
  );
});

test('a function at 1,000 parameters or results keeps the fuel in a local; one at 50,000 locals is refused naming it', () => {
  const many = (n: number) => new Array(n).fill(T.i32);
  const wide = assemble({
    types: [
      { params: many(1000), results: [T.i32] },
      { params: [], results: [T.i32] },
    ],
    funcs: [
      { type: 0, body: [...I.get(0), ...I.get(999), 0x6a] },
      { type: 1, body: [...Array.from({ length: 1000 }, (_, i) => I.i32(i + 1)).flat(), ...I.call(0)] },
    ],
    exports: [{ name: 'f', kind: 0, index: 1 }],
  });
  const r = prepare(wide);
  r.setFuel(100_000n);
  assert.equal(r.exports.f(), 1001);
  const fat = assemble({
    types: [{ params: [T.i32], results: [T.i32] }],
    funcs: [{ type: 0, locals: [[49_999, T.i32]], body: [...I.get(0)] }],
    exports: [{ name: 'fat', kind: 0, index: 0 }],
  });
  assert.throws(
    () => instrument(fat, { memoryMaxPages: 1 }),
    (e: unknown) =>
      e instanceof WasmFormatError &&
      /function #0 \('fat'\) has 50000 locals \(1 parameters \+ 49999 declared, at byte offset \d+\).*limit is 50000/.test(e.message),
  );
});
