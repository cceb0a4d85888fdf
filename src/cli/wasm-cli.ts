/**
 * `wasm-cli`: the module developer's tool.
 *   wasm-cli test [module.wasm] --function NAME --input context.json [--fuel N] [--timeout S] [--memory MB] [--table-limit N] [--json]
 *   wasm-cli keygen | sign | upload | list | download   (the module registry: src/cli/wasm/registry-commands.ts)
 * Runs a module from the local filesystem with the same runtime as the server (instrumentation,
 * worker pool, limits, host functions, WASI) and prints the output, logs, fuel, memory and duration.
 * The input file is the job context, and it is what get_context reads, as in a job step; the verdict
 * is the step's (an output of `{"valid": false}` fails, exit 1), and a routing output shows the
 * route it takes.
 */
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { WasmRuntime, type WasmRunResult } from '../wasm/runtime/index.ts';
import { VERSION } from '../version.ts';
import { registerRegistryCommands } from './wasm/registry-commands.ts';
import { CliError } from './wasm/server.ts';
import { verdictOf, type Verdict } from '../executors/wasm/verdict.ts';
import { routeOf, type Route } from '../engine/routing.ts';

/** The route a step with this output takes (as the engine reads it), or the routing error. */
function routeText(output: unknown): { route: Route | null; text: string | null; error?: string } {
  try {
    const route = routeOf(output, 'test');
    if (route.kind === 'none') return { route, text: null };
    if (route.kind === 'end') return { route, text: 'the execution ends here (next_steps: [])' };
    return { route, text: `next: ${route.ids.join(' -> ')}` };
  } catch (err) {
    return { route: null, text: null, error: (err as Error).message };
  }
}

const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number`);
  return Number(v);
};
const positiveNumber = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

function findModule(given: string | undefined): string {
  if (given) return resolve(given);
  // No path given: the single .wasm in the current directory or its build folders.
  for (const dir of ['.', 'build', 'dist', 'target/wasm32-wasip1/release', 'target/wasm32-wasi/release']) {
    if (!existsSync(dir)) continue;
    const found = readdirSync(dir).filter((f) => f.endsWith('.wasm'));
    if (found.length === 1) return resolve(dir, found[0]);
    if (found.length > 1) throw new Error(`several .wasm files in ${dir}: name the module to test`);
  }
  throw new Error('no module given and no .wasm file found here: wasm-cli test <module.wasm> --function <name>');
}

function printHuman(r: WasmRunResult, file: string, verdict: Verdict, route: ReturnType<typeof routeText>): void {
  const out = process.stdout;
  for (const l of r.logs) out.write(`[${l.level}] ${l.message}\n`);
  if (r.stderr) out.write(`stderr: ${r.stderr.trimEnd()}\n`);
  if (r.ok) out.write(JSON.stringify(r.output, null, 2) + '\n');
  if (verdict.error) {
    process.stderr.write(`error ${verdict.error.code}: ${verdict.error.message}\n`);
    if (verdict.error.stack) process.stderr.write(verdict.error.stack + '\n');
  }
  if (route.text) process.stderr.write(`route: ${route.text}\n`);
  if (route.error) process.stderr.write(`error routing_error: ${route.error}\n`);
  const writes = Object.keys(r.contextWrites);
  const failed = verdict.error !== null || route.error !== undefined;
  process.stderr.write(
    `${file}: ${failed ? (r.ok ? 'failed (the step would fail)' : 'failed') : 'ok'} · fuel ${r.fuelConsumed.toLocaleString('en')}` +
      (r.initFuelConsumed ? ` (+${r.initFuelConsumed.toLocaleString('en')} init)` : '') +
      ` · memory ${(r.memoryPeakBytes / 1048576).toFixed(2)} MiB · ${r.durationMs.toFixed(2)} ms` +
      (writes.length ? ` · set_context: ${writes.join(', ')}` : '') +
      (r.exitCode !== null ? ` · exit ${r.exitCode}` : '') +
      '\n',
  );
}

const program = new Command();
program.name('wasm-cli').description('build, test and publish vecron WebAssembly modules').version(VERSION);

program
  .command('test')
  .argument('[module]', 'the .wasm file (default: the one .wasm in ., build/ or dist/)')
  .requiredOption('-f, --function <name>', 'entry function (or _start for a WASI command)')
  .option('-i, --input <file>', 'JSON file with the input (the job context); - for stdin', undefined)
  .option('--fuel <n>', 'fuel limit (instructions)', positiveInt('--fuel'), 1_000_000)
  .option('--timeout <seconds>', 'timeout in seconds', positiveNumber('--timeout'), 30)
  .option('--memory <mb>', 'memory limit in MB', positiveInt('--memory'), 64)
  .option('--table-limit <n>', "table entries, all tables together (the step's table_limit)", positiveInt('--table-limit'), 100_000)
  .option('--json', 'print one machine-readable JSON object')
  .description('run a module locally with the server runtime and its limits')
  .action(
    async (
      moduleArg: string | undefined,
      opts: { function: string; input?: string; fuel: number; timeout: number; memory: number; tableLimit: number; json?: boolean },
    ) => {
      let file: string;
      let input: unknown = {};
      try {
        file = findModule(moduleArg);
        if (opts.input) {
          const text = opts.input === '-' ? readFileSync(0, 'utf8') : readFileSync(resolve(opts.input), 'utf8');
          try {
            input = JSON.parse(text);
          } catch (err) {
            throw new Error(`${opts.input} is not valid JSON: ${(err as Error).message}`);
          }
        }
      } catch (err) {
        process.stderr.write(`wasm-cli: ${(err as Error).message}\n`);
        process.exit(2);
      }
      const bytes = new Uint8Array(readFileSync(file));
      const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
      try {
        let result: WasmRunResult;
        try {
          result = await rt.run({
            bytes,
            functionName: opts.function,
            input,
            context: input as Record<string, unknown>,
            limits: { fuel: opts.fuel, timeoutMs: opts.timeout * 1000, memoryMb: opts.memory, tableLimit: opts.tableLimit },
            env: { JOB_ID: 'local', EXECUTION_ID: 'local' },
          });
        } catch (err) {
          // A module refused before it runs (invalid binary, foreign import, ...).
          const e = err as { code?: string; message: string };
          const failure = { ok: false, error: { code: e.code ?? 'invalid_module', message: e.message }, file };
          if (opts.json) process.stdout.write(JSON.stringify(failure) + '\n');
          else process.stderr.write(`error ${failure.error.code}: ${failure.error.message}\n`);
          process.exitCode = 1;
          return;
        }
        const verdict = verdictOf(result);
        const route = result.ok ? routeText(result.output) : { route: null, text: null };
        const passed = verdict.error === null && route.error === undefined;
        if (opts.json) {
          const verdictJson = passed ? { ok: true } : { ok: false, error: verdict.error ?? { code: 'routing_error', message: route.error! } };
          process.stdout.write(
            JSON.stringify({ file, ...result, verdict: verdictJson, ...(route.route && route.route.kind !== 'none' ? { route: route.route } : {}) }) + '\n',
          );
        } else printHuman(result, file, verdict, route);
        process.exitCode = passed ? 0 : 1;
      } finally {
        await rt.close();
      }
    },
  );

registerRegistryCommands(program);

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`wasm-cli: ${(err as Error).message}\n`);
  // A refusal by the server or a bad argument: 1; anything unexpected: 2.
  process.exit(err instanceof CliError ? 1 : 2);
});
