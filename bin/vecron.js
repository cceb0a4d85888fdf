#!/usr/bin/env -S node --experimental-wasm-stack-switching --wasm-stack-switching-stack-size=1024
// The `vecron` command. The flags on the first line let a WASM guest wait for its I/O host calls
// suspended (JSPI) instead of blocking its worker (docs/operations.md); without them it still works.
// The `vecron` command: Runs the compiled dist/ when it is current, else src/ through tsx
// (bin/entry.js says how it decides). Everything is found relative to this file, not the working
// directory. Install with `npm install -g .` or `npm link` to run it from anywhere (docs/operations.md).
// SIGTERM/SIGINT handlers first (src/cli/signals.ts takes these over): a signal while the modules
// still load exits cleanly (code 0) instead of killing the process by signal.
const signals = { delegate: null };
globalThis[Symbol.for('vecron.signals')] = signals;
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (signals.delegate ? signals.delegate(sig) : process.exit(0)));
// WebAssembly tier-up deferred until the service has started (bin/startup-tiering.js); `vecron start`
// calls the restore function through this global once every role runs.
const { deferWasmTierUp } = await import('./startup-tiering.js');
globalThis[Symbol.for('vecron.restoreWasmTierUp')] = deferWasmTierUp();
const { runCli } = await import('./entry.js');
await runCli('vecron');
