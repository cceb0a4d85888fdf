#!/usr/bin/env node
// The `wasm-cli` command. Runs the compiled dist/ when it is current, else src/ through tsx
// (bin/entry.js says how it decides). Everything is found relative to this file, not the working
// directory. Install with `npm install -g .` or `npm link` to run it from anywhere (docs/operations.md).
import { runCli } from './entry.js';

await runCli('wasm-cli');
