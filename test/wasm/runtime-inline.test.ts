import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WasmRuntime, type WasmRunRequest, type WasmRunResult } from '../../src/wasm/runtime/index.ts';
import type { HostAnswer, HostDispatch } from '../../src/wasm/host/types.ts';
import binaryen from 'binaryen';

// Inline runs (src/wasm/runtime/inline-run.ts): a short run goes on the calling thread; anything
// else is dropped and run in a worker. Every run here is compared with the same run on a runtime
// whose runs all go to a worker (inline: false): the two must be indistinguishable.
const root = new URL('../../fixtures/wasm/', import.meta.url);
const fx = (p: string): Uint8Array => new Uint8Array(readFileSync(new URL(p, root)));
const echo = fx('echo/echo.wasm');
const worker = new WasmRuntime({ poolSize: 1, inline: false });
after(() => worker.close());

/**
 * A module with the context host functions and no WASI: `run` logs its input, reads the context
 * key "greeting", writes it back as "seen" and returns it; `run_all` returns the whole context.
 */
const contextGuest = (() => {
  const m = binaryen.parseText(`(module
    (import "vecron" "log" (func $log (param i32 i32 i32)))
    (import "vecron" "get_context" (func $get (param i32 i32) (result i64)))
    (import "vecron" "set_context" (func $set (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "greeting")
    (data (i32.const 32) "seen")
    (global $heap (mut i32) (i32.const 1024))
    (func $alloc (export "alloc") (param $n i32) (result i32)
      (local $p i32) (local $end i32)
      (local.set $p (global.get $heap))
      (local.set $end (i32.add (local.get $p) (local.get $n)))
      (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
        (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))) (i32.const -1)) (then unreachable))))
      (global.set $heap (local.get $end))
      (local.get $p))
    (func (export "run") (param $p i32) (param $l i32) (result i64)
      (local $v i64)
      (call $log (i32.const 1) (local.get $p) (local.get $l))
      (local.set $v (call $get (i32.const 16) (i32.const 8)))
      (drop (call $set (i32.const 32) (i32.const 4) (i32.wrap_i64 (i64.shr_u (local.get $v) (i64.const 32))) (i32.wrap_i64 (local.get $v))))
      (local.get $v))
    (func (export "run_all") (param $p i32) (param $l i32) (result i64)
      (call $get (i32.const 0) (i32.const 0))))`);
  const bytes = m.emitBinary();
  m.dispose();
  return bytes;
})();

/**
 * A fresh inline runtime for `fn` (its per-module back-off starts empty), closed after. Its time
 * slice is long, so that whether a run goes inline never depends on how loaded the machine is
 * (the fuel slice still bounds every attempt).
 */
async function withInline<T>(fn: (rt: WasmRuntime) => Promise<T>, inlineSliceMs = 60_000): Promise<T> {
  const rt = new WasmRuntime({ poolSize: 1, inlineSliceMs });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

/** What must be the same on both paths: everything but the timings (and the log lines' clock). */
function comparable(r: WasmRunResult): unknown {
  const { durationMs: _d, logs, ...rest } = r;
  return { ...rest, logs: logs.map(({ at: _at, ...l }) => l) };
}

const spills = (rt: WasmRuntime): number => {
  const s = rt.stats().inlineSpills;
  return s.slice + s.host_call + s.failed;
};

test('short runs go inline, with results identical to the worker path (output, fuel, memory, logs, context writes)', async () => {
  const lowStock = fx('low-stock/low-stock.wasm');
  const sum = fx('sum-amounts/sum-amounts.wasm'); // C: imports WASI (stdio), does not call it here
  const amounts = { steps: { fetch_amounts: { output: { amounts: [10, 20.5, -0.5, 1e3, 0.1, 0.2] } } } };
  const stock = { steps: { check_inventory: { output: { data: { stock_level: 42 } } } } };
  const cases: WasmRunRequest[] = [
    { bytes: echo, functionName: 'echo', input: { a: [1, 2, 3], s: 'é'.repeat(500) } },
    { bytes: echo, functionName: 'echo_copy', input: { n: 1 } },
    { bytes: echo, functionName: 'echo_cstr', input: 'a string' },
    { bytes: contextGuest, functionName: 'run', input: { x: 1 }, context: { greeting: { hello: 'world' }, other: 1 } },
    { bytes: contextGuest, functionName: 'run', input: { greeting: [1, 2, 3] } }, // no context: the input is the context
    { bytes: contextGuest, functionName: 'run_all', input: { x: 1 }, context: { variables: { a: 'é' } } },
    { bytes: sum, functionName: 'sum_amounts', input: amounts, context: { source_step: 'fetch_amounts' } },
    { bytes: sum, functionName: 'sum_amounts', input: amounts },
    { bytes: lowStock, functionName: 'route_decision', input: stock }, // a start function, log
    { bytes: lowStock, functionName: 'route_decision_cstr', input: stock },
  ];
  await withInline(async (rt) => {
    for (const req of cases) {
      const before = rt.stats().inlineRuns;
      const a = await rt.run(req);
      const b = await worker.run(req);
      assert.ok(a.ok, JSON.stringify(!a.ok && a.error));
      assert.equal(rt.stats().inlineRuns, before + 1, `${req.functionName} ran inline`);
      assert.deepEqual(comparable(a), comparable(b), req.functionName);
    }
    assert.equal(rt.stats().workers, 0, 'no worker was needed');
  });
});

/**
 * `probe` answers `true` when its memory is as a fresh one (1 page, zero outside the data segments
 * and the input), then writes 0xff over all of it (but its answers); `grow` grows it by a page first.
 */
const memoryProbe = (() => {
  const m = binaryen.parseText(`(module
    (memory (export "memory") 1)
    (data (i32.const 16) "true")
    (data (i32.const 32) "false")
    (global $heap (mut i32) (i32.const 1024))
    (func $alloc (export "alloc") (param $n i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (local.get $p) (local.get $n)))
      (local.get $p))
    (func $scribble
      (local $i i32)
      (local.set $i (i32.const 0))
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (i32.shl (memory.size) (i32.const 16))))
        (i64.store (local.get $i) (i64.const -1))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $l))))
    (func $answers
      (i32.store (i32.const 16) (i32.const 0x65757274))
      (i32.store (i32.const 32) (i32.const 0x736c6166))
      (i32.store8 (i32.const 36) (i32.const 0x65)))
    (func $clean (result i32)
      (local $i i32) (local $ok i32)
      (local.set $ok (i32.eq (memory.size) (i32.const 1)))
      (local.set $i (i32.const 40))
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (i32.shl (memory.size) (i32.const 16))))
        (if (i32.and (i32.or (i32.lt_u (local.get $i) (i32.const 1024)) (i32.ge_u (local.get $i) (i32.const 2048)))
                     (i64.ne (i64.load (local.get $i)) (i64.const 0)))
          (then (local.set $ok (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $l)))
      (i32.and (local.get $ok) (i32.eq (i32.load (i32.const 16)) (i32.const 0x65757274))))
    (func (export "probe") (param i32 i32) (result i64)
      (local $ok i32)
      (local.set $ok (call $clean))
      (call $scribble)
      (call $answers)
      (if (result i64) (local.get $ok)
        (then (i64.const 0x1000000004))
        (else (i64.const 0x2000000005))))
    (func (export "grow") (param i32 i32) (result i64)
      (drop (memory.grow (i32.const 1)))
      (call $scribble)
      (call $answers)
      (i64.const 0x1000000004)))`);
  const bytes = m.emitBinary();
  m.dispose();
  return bytes;
})();

test('inline runs reuse linear memories, and each run still starts from a fresh memory', async () => {
  await withInline(async (rt) => {
    for (const fn of ['probe', 'probe', 'grow', 'probe', 'probe']) {
      const r = await rt.run({ bytes: memoryProbe, functionName: fn, input: {} });
      assert.ok(r.ok, JSON.stringify(!r.ok && r.error));
      if (fn === 'probe') assert.equal(r.output, true, 'the memory is zero but for the data segments, and 1 page');
    }
    assert.equal(rt.stats().inlineRuns, 5);
    const w = await worker.run({ bytes: memoryProbe, functionName: 'probe', input: {} });
    const i = await rt.run({ bytes: memoryProbe, functionName: 'probe', input: {} });
    assert.deepEqual(comparable(i), comparable(w));
  });
});

test('a run kept with its complete record (issue 20) records the same inline as in a worker', async () => {
  const req: WasmRunRequest = { bytes: contextGuest, functionName: 'run', input: {}, context: { greeting: 'hi' }, record: true };
  await withInline(async (rt) => {
    const a = await rt.run(req);
    const b = await worker.run(req);
    assert.equal(rt.stats().inlineRuns, 1);
    assert.ok(a.record && b.record);
    assert.ok(a.record.context_reads.length > 0, 'the context reads are recorded');
    assert.deepEqual(comparable(a), comparable(b));
  });
});

test('every limit ends an inline attempt, and the run ends with the same error as in a worker', async () => {
  const loop = fx('endless-loop/endless-loop.wasm');
  const cases: [string, WasmRunRequest][] = [
    ['fuel_exhausted', { bytes: loop, functionName: 'run', input: {}, limits: { fuel: 100_000 } }], // the run's fuel is below the slice
    ['fuel_exhausted', { bytes: loop, functionName: 'run', input: {}, limits: { fuel: 20_000_000 } }], // above it
    ['timeout', { bytes: loop, functionName: 'run', input: {}, limits: { fuel: 1e15, timeoutMs: 300 } }],
    ['memory_limit', { bytes: fx('memory-bomb/memory-bomb.wasm'), functionName: 'run', input: {}, limits: { memoryMb: 16 } }],
    ['memory_limit', { bytes: fx('sandbox-holes/tables.wasm'), functionName: 'grow', input: {}, limits: { memoryMb: 16 } }], // table limit
    ['stack_overflow', { bytes: fx('deep-recursion/deep-recursion.wasm'), functionName: 'run', input: {}, limits: { fuel: 1e12 } }],
    ['trap', { bytes: fx('trap/trap.wasm'), functionName: 'run', input: {} }],
    ['abi_error', { bytes: fx('oob-pointer/oob-pointer.wasm'), functionName: 'run', input: {} }],
    ['abi_error', { bytes: fx('oob-pointer/oob-pointer.wasm'), functionName: 'run_log_oob', input: {} }],
    ['invalid_output', { bytes: fx('invalid-utf8/invalid-utf8.wasm'), functionName: 'run', input: {} }],
    ['invalid_output', { bytes: fx('invalid-utf8/invalid-utf8.wasm'), functionName: 'run_not_json', input: {} }],
    ['output_too_large', { bytes: fx('oversize-output/oversize-output.wasm'), functionName: 'run', input: {}, limits: { fuel: 1e9, maxOutputBytes: 1000 } }],
  ];
  for (const [code, req] of cases) {
    await withInline(async (rt) => {
      const a = await rt.run(req);
      const b = await worker.run(req);
      const what = `${req.functionName} ${JSON.stringify(req.limits ?? {})}`;
      assert.equal(spills(rt), 1, `${what}: tried inline, then spilled`);
      assert.equal(rt.stats().inlineRuns, 0, what);
      assert.ok(!a.ok && !b.ok, what);
      if (a.ok || b.ok) return;
      assert.equal(a.error.code, code, `${what}: ${a.error.message}`);
      assert.equal(a.error.code, b.error.code, what);
      assert.equal(a.error.message, b.error.message, what);
      if (code !== 'timeout') assert.equal(a.fuelConsumed, b.fuelConsumed, what); // where a timeout stops is the clock's
    });
  }
});

test('a spinning guest gives the main thread back after its slice: a timer set before the run cancels it', async () => {
  await withInline(async (rt) => {
    const ac = new AbortController();
    // If the guest held the main thread until its timeout, this timer could only fire after the
    // run had ended (timeout); it fires during the run, so the run ends cancelled.
    setTimeout(() => ac.abort(), 0);
    const r = await rt.run({
      bytes: fx('endless-loop/endless-loop.wasm'),
      functionName: 'run',
      input: {},
      limits: { fuel: 1e15, timeoutMs: 60_000 },
      signal: ac.signal,
    });
    assert.ok(!r.ok);
    if (!r.ok) assert.equal(r.error.code, 'cancelled', r.error.message);
    assert.equal(rt.stats().inlineSpills.slice, 1, 'it was tried inline and ran out of its slice');
  }, 1); // the default time slice: whichever of fuel or time ends the attempt first
});

test("a spilled run's effects happen once: its logs and host calls come from the worker's run only", async () => {
  const abi = fx('host-abi/host-abi.wasm');
  const calls: string[] = [];
  const host = (async (fn: string, req: unknown): Promise<HostAnswer> => {
    calls.push(fn);
    return { response: { fn, req }, target: `t:${fn}`, outcome: 'ok' };
  }) as HostDispatch;
  await withInline(async (rt) => {
    const logged = await rt.run({ bytes: abi, functionName: 'log_and_call', input: { op: 'now', tz: 'UTC' }, host });
    assert.ok(logged.ok, JSON.stringify(!logged.ok && logged.error));
    assert.equal(logged.logs.length, 1, 'the inline attempt logged before it spilled: that line is not kept');
    assert.equal(rt.stats().inlineSpills.host_call, 1);
  });
  await withInline(async (rt) => {
    const a = await rt.run({ bytes: abi, functionName: 'sequence', input: { x: 1 }, host });
    const inlineCalls = calls.splice(0);
    const b = await worker.run({ bytes: abi, functionName: 'sequence', input: { x: 1 }, host });
    assert.ok(a.ok && b.ok);
    assert.deepEqual(inlineCalls, calls, 'each bridged call was made once, by the worker');
    assert.deepEqual(
      a.hostCalls.map((c) => c.function),
      b.hostCalls.map((c) => c.function),
    );
    assert.deepEqual(a.output, b.output);
    assert.equal(a.fuelConsumed, b.fuelConsumed);
  });
});

test('a WASI call spills before the shim serves it (a clock or random bytes are read once, in the worker)', async () => {
  const m = binaryen.parseText(`(module
    (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "true")
    (global $heap (mut i32) (i32.const 1024))
    (func (export "alloc") (param $n i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (local.get $p) (local.get $n)))
      (local.get $p))
    (func (export "run") (param i32 i32) (result i64)
      (drop (call $random (i32.const 64) (i32.const 8)))
      (i64.const 0x1000000004)))`);
  const bytes = m.emitBinary();
  m.dispose();
  await withInline(async (rt) => {
    const a = await rt.run({ bytes, functionName: 'run', input: {} });
    const b = await worker.run({ bytes, functionName: 'run', input: {} });
    assert.equal(rt.stats().inlineSpills.host_call, 1);
    assert.equal(rt.stats().inlineRuns, 0);
    assert.deepEqual(comparable(a), comparable(b));
    assert.ok(a.ok && a.output === true);
  });
});

test('a module whose runs spill goes straight to a worker for its next runs; others still go inline', async () => {
  await withInline(async (rt) => {
    const loop = { bytes: fx('endless-loop/endless-loop.wasm'), functionName: 'run', input: {}, limits: { fuel: 20_000_000 } };
    for (let i = 0; i < 4; i++) {
      const r = await rt.run(loop);
      assert.ok(!r.ok && r.error.code === 'fuel_exhausted');
    }
    assert.equal(spills(rt), 1, 'tried inline once, then sent to the worker');
    const r = await rt.run({ bytes: echo, functionName: 'echo', input: { still: 'inline' } });
    assert.ok(r.ok);
    assert.equal(rt.stats().inlineRuns, 1);
  });
});

test('runs that cannot be proven equal inline go to the worker without an attempt', async () => {
  await withInline(async (rt) => {
    // A stack limit below the main thread's V8 stack: a recursion that fits here might not fit there.
    const small = await rt.run({ bytes: echo, functionName: 'echo', input: 1, limits: { stackKb: 512 } });
    assert.ok(small.ok);
    // A WASI command (form C): its whole run is WASI calls (stdin, stdout, clocks, random).
    const wasi = await rt.run({ bytes: fx('wasi-probe/wasi-probe.wasm'), functionName: '_start', input: {} });
    assert.equal(rt.stats().inlineRuns, 0);
    assert.equal(spills(rt), 0);
    assert.equal(typeof wasi.ok, 'boolean');
  });
});

test('back-to-back inline runs still let the event loop turn', async () => {
  await withInline(async (rt) => {
    let turns = 0;
    const tick = (): void => {
      turns++;
      if (!done) setImmediate(tick);
    };
    let done = false;
    setImmediate(tick);
    // Awaited one after the other: each result is a microtask, so without a yield now and then
    // no setImmediate callback could run until the loop ended.
    for (let i = 0; i < 3000; i++) {
      const r = await rt.run({ bytes: echo, functionName: 'echo', input: { i } });
      assert.ok(r.ok);
    }
    const during = turns;
    done = true;
    assert.ok(during > 0, 'the event loop turned during the loop');
    assert.equal(rt.stats().inlineRuns, 3000);
  });
});
