#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so there is no build step.
// SIGTERM/SIGINT handlers first (src/cli/signals.ts takes these over): a signal while tsx and the
// modules still load exits cleanly (code 0) instead of killing the process by signal.
const signals = { delegate: null };
globalThis[Symbol.for('vecron.signals')] = signals;
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (signals.delegate ? signals.delegate(sig) : process.exit(0)));
const { register } = await import('tsx/esm/api');
register();
await import('../src/cli/vecron.ts');
