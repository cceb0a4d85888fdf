import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseModule, Reader, WasmFormatError, assemble, I, T, uleb, type AsmModule } from '../../src/wasm/binary/index.ts';

// The project's tsconfig has no WebAssembly typings (lib ES2023, no DOM): use the runtime global untyped.
const WebAssembly: any = (globalThis as any).WebAssembly;

const V = { params: [], results: [] };

function fails(bytes: Uint8Array, code: string, pattern?: RegExp): WasmFormatError {
  try {
    parseModule(bytes);
  } catch (err) {
    assert.ok(err instanceof WasmFormatError, `expected WasmFormatError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail('expected parseModule to fail');
}

/** One function of type [] -> [] (plus memory/table/data so that every instruction has a target). */
function oneFunc(body: number[], extra: Partial<AsmModule> = {}): Uint8Array {
  return assemble({ types: [V], funcs: [{ type: 0, body }], memories: [{ min: 1 }], ...extra });
}

test('LEB128 readers enforce their bounds', () => {
  assert.equal(new Reader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f])).u32(), 0xffffffff);
  assert.throws(() => new Reader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x1f])).u32(), /out of range/);
  assert.throws(() => new Reader(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x00])).u32(), /out of range|too long/);
  assert.throws(() => new Reader(Uint8Array.from([0x80, 0x80])).u32(), /unexpected end/);
  assert.equal(new Reader(Uint8Array.from([0x7f])).s32(), -1);
  assert.equal(new Reader(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x78])).s32(), -2147483648);
  assert.equal(new Reader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x07])).s32(), 2147483647);
  assert.throws(() => new Reader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f])).s32(), /out of range/);
  assert.equal(new Reader(Uint8Array.from([0x40])).s33(), -64);
  assert.equal(new Reader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f])).s33(), 0xffffffff);
  assert.equal(new Reader(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f])).s64(), -(2n ** 63n));
  assert.throws(() => new Reader(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])).s64(), /out of range/);
});

test('parseModule describes imports, exports, functions, memories and globals', () => {
  const bytes = assemble({
    types: [V, { params: [T.i32, T.i32], results: [T.i32] }],
    imports: [
      { module: 'vecron', name: 'log', func: 1 },
      { module: 'env', name: 'memory', memory: { min: 2, max: 10 } },
      { module: 'env', name: 'g', global: { type: T.i32, mutable: false } },
    ],
    funcs: [
      { type: 1, body: [...I.get(0), ...I.get(1), 0x6a] },
      { type: 0, body: [] },
    ],
    globals: [
      { type: T.i64, mutable: true, init: I.i64(-5) },
      { type: T.funcref, mutable: false, init: I.refFunc(2) },
    ],
    exports: [
      { name: 'add', kind: 0, index: 1 },
      { name: 'memory', kind: 2, index: 0 },
      { name: 'counter', kind: 3, index: 1 },
    ],
    start: 2,
    customs: [{ name: 'producers', bytes: [0] }],
  });
  assert.ok(WebAssembly.validate(bytes));
  const info = parseModule(bytes);
  assert.equal(info.functionCount, 3);
  assert.equal(info.importedFunctionCount, 1);
  assert.deepEqual(
    info.imports.map(({ module, name, kind }) => ({ module, name, kind })),
    [
      { module: 'vecron', name: 'log', kind: 'function' },
      { module: 'env', name: 'memory', kind: 'memory' },
      { module: 'env', name: 'g', kind: 'global' },
    ],
  );
  assert.deepEqual(info.exports, [
    { name: 'add', kind: 'function', index: 1 },
    { name: 'memory', kind: 'memory', index: 0 },
    { name: 'counter', kind: 'global', index: 1 },
  ]);
  assert.equal(info.memories.length, 1);
  assert.equal(info.memories[0].min, 2);
  assert.equal(info.memories[0].max, 10);
  assert.equal(info.memories[0].imported, true);
  assert.deepEqual(
    info.globals.map((g) => [g.type, g.mutable, g.imported]),
    [
      ['i32', false, true],
      ['i64', true, false],
      ['funcref', false, false],
    ],
  );
  assert.deepEqual(info.types[1], { params: ['i32', 'i32'], results: ['i32'] });
  assert.equal(info.start, 2);
  assert.deepEqual(
    info.customSections.map((c) => c.name),
    ['producers'],
  );
});

test('malformed structure is refused with code malformed', () => {
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6e, 1, 0, 0, 0]), 'malformed', /magic/);
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]), 'malformed', /version/);
  fails(Uint8Array.from([0, 0x61, 0x73]), 'malformed');
  // section runs past the end
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 10, 0]), 'malformed', /past the end/);
  // sections out of order: function (3) before type (1)
  const ok = oneFunc([]);
  const typeSec = [1, 4, 1, 0x60, 0, 0];
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1, ...typeSec]), 'malformed', /out of order/);
  // unknown section
  fails(Uint8Array.from([...ok, 14, 0]), 'malformed', /unknown section/);
  // truncated function body: drop the final end
  const noEnd = assemble({ types: [V], funcs: [{ type: 0, body: [] }] });
  const cut = Uint8Array.from(noEnd);
  cut[cut.length - 1] = 0x01; // end -> nop: the body never closes
  fails(cut, 'malformed', /ends before/);
  // over-long LEB in a section size
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 'malformed');
  // else without if, call to a missing function, block type index out of range
  fails(oneFunc([0x05]), 'malformed', /else without if/);
  fails(oneFunc(I.call(7)), 'malformed', /function index 7/);
  fails(oneFunc([0x02, 0x05, 0x0b]), 'malformed', /block type index 5/);
  // indices the rewrite could otherwise make valid (it adds locals, globals, functions, types)
  fails(oneFunc([...I.get(0), 0x1a]), 'malformed', /local index 0/);
  fails(oneFunc([...I.gget(0), 0x1a]), 'malformed', /global index 0/);
  fails(oneFunc(I.br(1)), 'malformed', /branch depth 1/);
  fails(oneFunc([...I.i32(0), 0x0e, 0, 3]), 'malformed', /br_table depth/);
  fails(oneFunc([...I.i32(0), 0x11, 1, 0]), 'malformed', /type index 1/);
  // duplicate export
  fails(
    assemble({
      types: [V],
      funcs: [{ type: 0, body: [] }],
      exports: [
        { name: 'a', kind: 0, index: 0 },
        { name: 'a', kind: 0, index: 0 },
      ],
    }),
    'malformed',
    /duplicate export/,
  );
});

test('every instruction family of the current standard is walked', () => {
  const v128c = [0xfd, 12, ...new Array(16).fill(7)];
  const bodies: [string, number[]][] = [
    [
      'mvp control + numeric',
      [0x02, 0x40, 0x03, 0x40, ...I.i32(0), ...I.brIf(1), 0x0b, 0x0b, ...I.i32(1), 0x04, 0x40, 0x01, 0x05, 0x01, 0x0b, ...I.i32(5), 0x0e, 2, 0, 0, 0],
    ],
    ['loads/stores', [...I.i32(0), 0x28, 2, 0, 0x1a, ...I.i32(0), 0x42, 1, 0x37, 3, 8, ...I.i32(0), 0x2d, 0, 100, 0x1a, 0x3f, 0, 0x40, 0, 0x1a]],
    ['consts', [...I.i64(-1n << 62n), 0x1a, 0x43, 0, 0, 0x80, 0x3f, 0x1a, 0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x1a]],
    ['sign extension', [...I.i32(200), 0xc0, 0xc1, 0x1a, ...I.i64(5), 0xc2, 0xc3, 0xc4, 0x1a]],
    ['saturating truncation', [0x43, 0, 0, 0, 0, 0xfc, 0, 0x1a, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0xfc, 7, 0x1a]],
    [
      'bulk memory',
      [
        ...I.i32(0),
        ...I.i32(0),
        ...I.i32(1),
        0xfc,
        8,
        0,
        0,
        0xfc,
        9,
        0,
        ...I.i32(0),
        ...I.i32(0),
        ...I.i32(1),
        0xfc,
        10,
        0,
        0,
        ...I.i32(0),
        ...I.i32(0),
        ...I.i32(1),
        0xfc,
        11,
        0,
      ],
    ],
    [
      'reference types',
      [
        0xd0,
        0x70,
        0xd1,
        0x1a,
        ...I.refFunc(0),
        0x1a,
        ...I.i32(0),
        0x25,
        0,
        0x1a,
        ...I.i32(0),
        0xd0,
        0x70,
        0x26,
        0,
        0xfc,
        16,
        0,
        0x1a,
        0xd0,
        0x70,
        ...I.i32(0),
        0xfc,
        15,
        0,
        0x1a,
        ...I.i32(0),
        0xd0,
        0x70,
        ...I.i32(0),
        0xfc,
        17,
        0,
        ...I.i32(0),
        ...I.i32(0),
        ...I.i32(0),
        0xfc,
        12,
        0,
        0,
        0xfc,
        13,
        0,
        ...I.i32(0),
        ...I.i32(0),
        ...I.i32(0),
        0xfc,
        14,
        0,
        0,
        ...I.i32(1),
        ...I.i32(2),
        ...I.i32(0),
        0x1c,
        1,
        T.i32,
        0x1a,
      ],
    ],
    [
      'simd',
      [
        ...I.i32(0),
        0xfd,
        0,
        4,
        0,
        ...v128c,
        0xfd,
        13,
        ...[0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23],
        0xfd,
        21,
        3,
        0x1a,
        ...v128c,
        ...I.i32(9),
        0xfd,
        23,
        15,
        ...v128c,
        0xfd,
        0xae,
        0x01,
        0xfd,
        0x53,
        0x1a,
        ...I.i32(0),
        ...v128c,
        0xfd,
        84,
        0,
        0,
        5,
        0x1a,
        ...I.i32(0),
        ...v128c,
        0xfd,
        91,
        3,
        0,
        1,
        ...I.i32(0),
        0xfd,
        92,
        2,
        0,
        0x1a,
        ...v128c,
        0xfd,
        0xff,
        0x01,
        0x1a,
      ],
    ],
    ['multi-value block type', [...I.i32(1), 0x02, 1, ...I.i32(2), 0x0b, 0x6a, 0x1a]],
  ];
  for (const [name, body] of bodies) {
    const bytes = assemble({
      types: [V, { params: [T.i32], results: [T.i32, T.i32] }],
      funcs: [{ type: 0, body }],
      memories: [{ min: 1 }],
      tables: [{ type: T.funcref, min: 1 }],
      elements: [[5, T.funcref, 1, ...I.refFunc(0), 0x0b]],
      dataCount: 1,
      data: [[1, 1, 0]],
    });
    let v8 = 'valid';
    try {
      new WebAssembly.Module(bytes);
    } catch (e) {
      v8 = String(e);
    }
    assert.equal(v8, 'valid', `${name}: the test module itself must be valid`);
    const info = parseModule(bytes);
    assert.equal(info.functionCount, 1, name);
  }
});

test('tail calls are walked', () => {
  const bytes = assemble({
    types: [V],
    funcs: [
      { type: 0, body: [0x12, 1] },
      { type: 0, body: [...I.i32(0), 0x13, 0, 0] },
    ],
    tables: [{ type: T.funcref, min: 1 }],
  });
  assert.ok(WebAssembly.validate(bytes));
  assert.equal(parseModule(bytes).functionCount, 2);
});

test('unsupported features are named, with the function and the offset', () => {
  let e = fails(oneFunc([...I.i32(0), 0xfe, 0x10, 2, 0, 0x1a]), 'unsupported_feature', /threads/);
  assert.equal(e.funcIndex, 0);
  assert.match(e.message, /function 0/);
  assert.match(e.message, /byte offset/);
  assert.equal(typeof e.offset, 'number');
  e = fails(oneFunc([0x06, 0x40, 0x0b]), 'unsupported_feature', /exception handling/);
  fails(oneFunc([0xfb, 0x01, 0x00]), 'unsupported_feature', /GC/);
  fails(oneFunc([0x14, 0x00]), 'unsupported_feature', /typed function references/);
  fails(oneFunc([0xff]), 'unsupported_feature', /unknown opcode 0xff|opcode 0xff/);
  fails(oneFunc([0xfd, 0x80, 0x02]), 'unsupported_feature', /relaxed SIMD/);
  fails(oneFunc([0xfc, 0x30]), 'unsupported_feature', /opcode 0xfc 48/);
  fails(oneFunc([...I.i32(0), 0x28, 0x42, 1, 0, 0x1a]), 'unsupported_feature', /multi-memory/);
  fails(oneFunc([0x3f, 1, 0x1a]), 'unsupported_feature', /multi-memory/);
  // memory64 / shared memory / two memories
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 4, 1]), 'unsupported_feature', /memory64/);
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 4, 1, 3, 1, 1]), 'unsupported_feature', /threads/);
  fails(assemble({ memories: [{ min: 1 }, { min: 1 }] }), 'unsupported_feature', /multi-memory/);
  fails(assemble({ imports: [{ module: 'env', name: 'm', memory: { min: 1 } }], memories: [{ min: 1 }] }), 'unsupported_feature', /multi-memory/);
  // GC type, tag section, tag import, extended-const
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 3, 1, 0x5f, 0]), 'unsupported_feature', /GC/);
  fails(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 13, 1, 0]), 'unsupported_feature', /exception handling/);
  fails(assemble({ globals: [{ type: T.i32, mutable: false, init: [...I.i32(1), ...I.i32(2), 0x6a] }] }), 'unsupported_feature', /extended-const/);
  fails(oneFunc([0xd0, 0x00, 0x1a]), 'unsupported_feature', /GC \/ typed/);
  void uleb;
});
