/**
 * `npm run bench`: runs the benchmark suites below one after the other, each in its own Node
 * process (so one suite's pools, timers or global settings cannot affect the next), and exits
 * non-zero if any of them failed. `npm run bench -- queue` runs only the suites whose name matches.
 *
 * To add a suite: create bench/<name>.ts (a script that prints its results and writes its section
 * of docs/benchmarks.md through bench/report.ts), then add its name here.
 */
import { spawn } from 'node:child_process';

const SUITES: string[] = ['queue', 'wasm', 'host-calls', 'scale', 'startup', 'api'];

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const selected = SUITES.filter((s) => filters.length === 0 || filters.some((f) => s.includes(f)));
if (selected.length === 0) {
  console.error(`no benchmark suite matches ${filters.join(' ')} (suites: ${SUITES.join(', ')})`);
  process.exit(2);
}
const command =
  process.env.npm_lifecycle_event === 'bench'
    ? `npm run bench${filters.length ? ` -- ${filters.join(' ')}` : ''}`
    : `node ${process.execArgv.filter((f) => f.startsWith('--experimental-wasm') || f.startsWith('--wasm')).join(' ')} --import tsx bench/run.ts${filters.length ? ` ${filters.join(' ')}` : ''}`.replace(
        / {2,}/g,
        ' ',
      );

function runSuite(name: string): Promise<number> {
  return new Promise((resolve) => {
    // The V8 flags of this process (JSPI, as `npm run bench` sets them) go to each suite.
    const v8 = process.execArgv.filter((f) => f.startsWith('--experimental-wasm') || f.startsWith('--wasm'));
    const child = spawn(process.execPath, [...v8, '--import', 'tsx', `bench/${name}.ts`], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, BENCH_COMMAND: process.env.BENCH_COMMAND ?? command },
    });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 : 1));
    });
    child.on('error', (err) => {
      console.error(`bench ${name}: ${err.message}`);
      resolve(1);
    });
  });
}

const failed: string[] = [];
for (const name of selected) {
  const t0 = Date.now();
  console.error(`\n=== bench ${name} ===`);
  const code = await runSuite(name);
  console.error(`=== bench ${name}: ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s ===`);
  if (code !== 0) failed.push(name);
}
if (failed.length) {
  console.error(`failed suites: ${failed.join(', ')}`);
  process.exit(1);
}
