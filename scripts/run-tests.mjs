#!/usr/bin/env node
// Runs every test/**/*.test.ts file with Node's own test runner (through tsx for TypeScript).
// Node 20's `--test` does not expand globs itself, so we list the files here.
// Usage: npm test [-- <filter substring> ...]
//
// Before the tests: Biome checks formatting and lint (biome.jsonc); a problem fails a full run, and
// is only reported when filters are given (so one test file can run while code is being edited).
// During a full run, V8 collects coverage (NODE_V8_COVERAGE, inherited by every process the tests
// start: servers, CLIs, workers); after the runner's own summary, c8 prints the coverage of src/ and
// the run fails when lines are at or under COVERAGE_MIN_LINES (80 %, the design study's bar).
// VECRON_COVERAGE=0 skips coverage, VECRON_COVERAGE=1 measures a filtered run too.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const COVERAGE_MIN_LINES = 80;

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const bin = (name) => join(root, 'node_modules', '.bin', name);

const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched', filters);
  process.exit(1);
}

// Formatter and linter first: `npm run format` fixes formatting, `npm run lint` shows the findings.
const biomeArgs = ['check', '--error-on-warnings', ...(filters.length ? ['--reporter=summary'] : ['--max-diagnostics=30']), '.'];
const biome = spawnSync(bin('biome'), biomeArgs, { cwd: root, stdio: 'inherit' });
if (biome.status !== 0) {
  if (filters.length === 0) {
    console.error('biome check failed: run `npm run format` for formatting, fix the lint findings shown above');
    process.exit(1);
  }
  console.error('biome check failed (reported only, as filters were given)');
}

const measure = process.env.VECRON_COVERAGE === '1' || (process.env.VECRON_COVERAGE !== '0' && filters.length === 0);
const coverageDir = join(root, 'coverage', 'v8');
// VECRON_RUN_FROM=src: the CLIs the tests start run src/ through tsx, never a dist/ build (coverage
// is of src/, and a test must not pass on compiled code older than the sources). test/cli/dist.test.ts
// sets VECRON_RUN_FROM=dist for the processes it starts.
const env = { ...process.env, NODE_ENV: 'test', VECRON_RUN_FROM: process.env.VECRON_RUN_FROM ?? 'src' };
if (measure) {
  rmSync(coverageDir, { recursive: true, force: true });
  env.NODE_V8_COVERAGE = coverageDir;
}

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// JSPI (the guest suspended during its I/O host calls) needs this V8 flag on node's command line, as
// `vecron start` sets it; VECRON_JSPI=0 runs the suite without it (every such call on the bridge).
const jspiFlag = process.env.VECRON_JSPI === '0' ? [] : ['--experimental-wasm-stack-switching', '--wasm-stack-switching-stack-size=1024'];
const child = spawn(process.execPath, [...jspiFlag, '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  cwd: root,
  env,
});
child.on('exit', (code, signal) => {
  const testsCode = code ?? (signal ? 1 : 0);
  if (!measure) process.exit(testsCode);
  // --all counts the files of src/ that no test loaded, as 0 %.
  const c8 = ['--temp-directory', coverageDir, '--reports-dir', join(root, 'coverage'), '--all', '--src', 'src', '--include', 'src/**'];
  console.log('\ncoverage of src/ (c8, V8 coverage of every process the tests started):');
  spawnSync(bin('c8'), ['report', ...c8, '--reporter', 'text-summary'], { cwd: root, stdio: 'inherit' });
  const check = spawnSync(bin('c8'), ['check-coverage', ...c8, '--lines', String(COVERAGE_MIN_LINES + 0.01)], { cwd: root, stdio: 'inherit' });
  if (check.status !== 0) console.error(`coverage of lines in src/ is not over ${COVERAGE_MIN_LINES} %`);
  rmSync(coverageDir, { recursive: true, force: true });
  process.exit(testsCode || (check.status === 0 ? 0 : 1));
});
