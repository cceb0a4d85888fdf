#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so there is no build step. Everything is found relative to
// this file, not the working directory: tsx and the sources through the package's own
// node_modules and src/, and the package's tsconfig.json (tsx would otherwise read the one in the
// current directory, whose "paths" could redirect our imports). Install with `npm install -g .` or
// `npm link` to run it from anywhere (docs/operations.md).
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli/wasm-cli.ts');
