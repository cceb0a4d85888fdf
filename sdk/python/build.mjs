#!/usr/bin/env node
// Builds a vecron Python module (docs/sdk/python.md): `node vecron-sdk/build.mjs` in the project
// folder (what the template's vecron.json `build.command` runs, and so `wasm-cli build`).
//
//   node build.mjs [--project DIR] [--out FILE]   build the project in DIR (default: .)
//   node build.mjs --engine                       only fetch and build (or find) the cached engine
//
// Exit codes: 0 built; 1 the project failed to build (an exception while importing it, a bad
// manifest, a missing toolchain: the message says what to do); 2 a bad command line.
import { resolve } from 'node:path';
import { ensureEngine } from './lib/engine.mjs';
import { buildProject } from './lib/project.mjs';

const args = process.argv.slice(2);
const opts = { project: '.', out: undefined, engineOnly: false };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => {
    if (i + 1 >= args.length) usage(`${a} needs a value`);
    return args[++i];
  };
  if (a === '--project') opts.project = value();
  else if (a === '--out') opts.out = value();
  else if (a === '--engine') opts.engineOnly = true;
  else if (a === '-h' || a === '--help') usage(null);
  else usage(`unknown argument: ${a}`);
}

function usage(problem) {
  if (problem) process.stderr.write(`build.mjs: ${problem}\n`);
  process.stderr.write('usage: node build.mjs [--project DIR] [--out FILE] | --engine\n');
  process.exit(problem ? 2 : 0);
}

const log = (m) => process.stderr.write(`${m}\n`);
try {
  if (opts.engineOnly) {
    const e = await ensureEngine({ log });
    process.stdout.write(`engine ${e.python} in ${e.dir}\n`);
  } else {
    const r = await buildProject(resolve(opts.project), { log, output: opts.out });
    if (r.printed.trim()) process.stderr.write(`printed while importing the module:\n${r.printed.trim()}\n`);
    process.stdout.write(
      `built ${r.relative}: ${r.size} bytes, sha256 ${r.sha256}\n` +
        `  files: ${r.files.join(', ')}; exports: ${r.entries.join(', ')}; host functions: ${r.hostFunctions.join(', ') || 'none'}\n`,
    );
  }
} catch (e) {
  const known = ['ProjectError', 'ToolchainError'].includes(e.name);
  process.stderr.write(`build.mjs: ${known ? e.message : (e.stack ?? e)}\n`);
  process.exit(1);
}
