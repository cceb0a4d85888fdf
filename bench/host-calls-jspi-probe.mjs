// A design probe for issue 15's bridged-call goal, not the product: how far below the bridge's
// floor a call gets when the guest's worker does the I/O on its own event loop, the guest being
// suspended with JSPI (V8's JavaScript Promise Integration) instead of blocking in Atomics.wait
// while the main thread does the I/O. No thread is woken per call beyond the database's own.
//
// Run by bench/host-calls.ts as a child process, because JSPI in Node 20 (V8 11.3) needs
// `--experimental-wasm-stack-switching` on node's command line: set later with v8.setFlagsFromString,
// the API appears but a worker that suspends around socket I/O crashed the process (SIGSEGV) here.
//
// The guest (11 instructions, below as text) loops n times over an import that takes the suspender
// as its first argument (the API of V8 11.3: the module threads it through a global). The import is
// a plain `pool.query('SELECT 1')` on a pool of the worker's: no JSON, no permission, no record, so
// the difference to the direct query is the floor of that design, as the bench's bare round trip
// is the floor of the bridge.
//
//   (module
//     (import "env" "q" (func $q (param externref i32) (result i32)))
//     (global $s (mut externref) (ref.null extern))
//     (func $run (param $n i32) (result i32) (local $i i32) (local $acc i32)
//       (block $done (loop $l
//         (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
//         (local.set $acc (i32.add (local.get $acc) (call $q (global.get $s) (local.get $i))))
//         (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
//       (local.get $acc))
//     (func (export "run_s") (param $susp externref) (param $n i32) (result i32)
//       (global.set $s (local.get $susp)) (call $run (local.get $n))))
//
// Usage: node --experimental-wasm-stack-switching bench/host-calls-jspi-probe.mjs URL CALLS ROUNDS
// Prints one JSON line: {"direct": [us...], "jspi": [us...]} (rounds alternate; a JSPI time is from
// the start of one call to the start of the next, so it includes suspending and resuming the guest).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const GUEST_HEX =
  '0061736d01000000010c0260026f7f017f60017f017f02090103656e760171000003030201000606016f01d06f0b0709010572756e5f7300020a34022701027f02400340200120004f0d0120022300200110006a2102200141016a21010c000b0b20020b0a0020002400200110010b';

const [url, callsArg, roundsArg] = process.argv.slice(2);
const calls = Number(callsArg) || 2000;
const rounds = Number(roundsArg) || 3;
if (typeof WebAssembly.Suspender !== 'function') {
  console.log(JSON.stringify({ error: 'JSPI is not available: run node with --experimental-wasm-stack-switching' }));
  process.exit(0);
}
const require = createRequire(new URL('../package.json', import.meta.url));
const pg = require('pg');

const worker = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads');
   const pg = require(workerData.pgPath);
   const pool = new pg.Pool({ connectionString: workerData.url, max: 1 });
   const mod = new WebAssembly.Module(Buffer.from(workerData.hex, 'hex'));
   let times = [];
   let last = 0;
   // From one call's start to the next's: the query, the resumption of the guest and its loop.
   const q = new WebAssembly.Function({ parameters: ['externref', 'i32'], results: ['i32'] }, async () => {
     const t0 = performance.now();
     if (last !== 0) times.push((t0 - last) * 1000);
     last = t0;
     const r = await pool.query('SELECT 1 AS x');
     return r.rows[0].x;
   }, { suspending: 'first' });
   const inst = new WebAssembly.Instance(mod, { env: { q } });
   const run = new WebAssembly.Function({ parameters: ['i32'], results: ['externref'] }, inst.exports.run_s, { promising: 'first' });
   pool.query('SELECT 1').then(() => parentPort.postMessage('ready'));
   parentPort.on('message', async (n) => { times = []; last = 0; await run(n); parentPort.postMessage(times); });`,
  { eval: true, workerData: { url, hex: GUEST_HEX, pgPath: require.resolve('pg') } },
);
const ask = (m) =>
  new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    if (m !== undefined) worker.postMessage(m);
  });
await ask();

const pool = new pg.Pool({ connectionString: url, max: 1 });
await pool.query('SELECT 1');
const direct = [];
const jspi = [];
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await pool.query('SELECT 1 AS x');
    if (i > 0) direct.push((performance.now() - t0) * 1000);
  }
  jspi.push(...(await ask(calls)));
}
await pool.end();
await worker.terminate();
console.log(JSON.stringify({ direct, jspi }));
