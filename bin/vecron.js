#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so there is no build step. Everything is found relative to
// this file, not the working directory: tsx and the sources through the package's own
// node_modules and src/, and the package's tsconfig.json (tsx would otherwise read the one in the
// current directory, whose "paths" could redirect our imports). Install with `npm install -g .` or
// `npm link` to run it from anywhere (docs/operations.md).
// SIGTERM/SIGINT handlers first (src/cli/signals.ts takes these over): a signal while tsx and the
// modules still load exits cleanly (code 0) instead of killing the process by signal.
const signals = { delegate: null };
globalThis[Symbol.for('vecron.signals')] = signals;
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (signals.delegate ? signals.delegate(sig) : process.exit(0)));
const { fileURLToPath } = await import('node:url');
const { register } = await import('tsx/esm/api');
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli/vecron.ts');
