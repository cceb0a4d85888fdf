/**
 * `wasm-cli test`: runs a module locally with the server's runtime and its limits.
 *   wasm-cli test                      in a project: every case of the manifest's `tests` glob
 *   wasm-cli test --input FILE         one run (the seed's form); FILE is the job context
 *   wasm-cli test [module.wasm] [--function NAME] [--fuel N] [--timeout S] [--memory MB] [--json]
 * The function defaults to the manifest's entry, else the module's only entry. Host functions get
 * the manifest's permissions plus the --allow/--datasource/--files/--secret grants (grants.ts).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { WasmRuntime, WasmModuleError, DEFAULT_LIMITS, type PreparedModule } from '../../wasm/runtime/index.ts';
import { collect, positiveInt, positiveNumber } from './args.ts';
import { CliError, UsageError } from './errors.ts';
import { makeGrants, type Grants } from './grants.ts';
import { findProject, type Project } from './project.ts';
import { defaultFunction, runLocal, type LocalRun, type RunLimits } from './test-run.ts';
import { judgeCase, loadCases } from './test-cases.ts';
import { denialHints, hostCallLines } from './host-calls.ts';

interface TestOptions {
  function?: string;
  input?: string;
  fuel?: number;
  timeout?: number;
  memory?: number;
  tableLimit?: number;
  json?: boolean;
  allow?: string[];
  datasource?: string[];
  files?: string;
  secret?: string[];
}

function findModule(given: string | undefined, project: Project | null): string {
  if (given) return resolve(given);
  if (project?.manifest.build) {
    const out = resolve(project.root, project.manifest.build.output);
    if (!existsSync(out)) throw new CliError(`${relative(process.cwd(), out) || out} does not exist yet: run \`wasm-cli build\` first`);
    return out;
  }
  // No path given: the single .wasm in the current directory or its build folders.
  for (const dir of ['.', 'build', 'dist', 'target/wasm32-wasip1/release', 'target/wasm32-wasi/release']) {
    if (!existsSync(dir)) continue;
    const found = readdirSync(dir).filter((f) => f.endsWith('.wasm'));
    if (found.length === 1) return resolve(dir, found[0]);
    if (found.length > 1) throw new UsageError(`several .wasm files in ${dir}: name the module to test`);
  }
  throw new UsageError('no module given and no .wasm file found here: wasm-cli test <module.wasm> --input input.json (or run it in a project)');
}

function readInput(path: string): unknown {
  let text: string;
  try {
    text = path === '-' ? readFileSync(0, 'utf8') : readFileSync(resolve(path), 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the input ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

const fmtInt = (n: number) => n.toLocaleString('en');

function stats(run: LocalRun): string {
  const r = run.result;
  const writes = Object.keys(r.contextWrites);
  return (
    `fuel ${fmtInt(r.fuelConsumed)}` +
    (r.initFuelConsumed ? ` (+${fmtInt(r.initFuelConsumed)} init)` : '') +
    ` · memory ${(r.memoryPeakBytes / 1048576).toFixed(2)} MiB · ${r.durationMs.toFixed(2)} ms` +
    (writes.length ? ` · set_context: ${writes.join(', ')}` : '') +
    (r.exitCode !== null ? ` · exit ${r.exitCode}` : '')
  );
}

function printSingle(run: LocalRun, file: string): void {
  const r = run.result;
  const out = process.stdout;
  for (const l of r.logs) out.write(`[${l.level}] ${l.message}\n`);
  if (r.stderr) out.write(`stderr: ${r.stderr.trimEnd()}\n`);
  if (r.ok) out.write(JSON.stringify(r.output, null, 2) + '\n');
  const { verdict, route } = run;
  if (verdict.error) {
    process.stderr.write(`error ${verdict.error.code}: ${verdict.error.message}\n`);
    if (verdict.error.stack) process.stderr.write(verdict.error.stack + '\n');
  }
  if (route.text) process.stderr.write(`route: ${route.text}\n`);
  if (route.error) process.stderr.write(`error routing_error: ${route.error}\n`);
  for (const l of [...hostCallLines(r.hostCalls), ...denialHints(r.hostCalls)]) process.stderr.write(`${l}\n`);
  const failed = !run.passed;
  process.stderr.write(`${file}: ${failed ? (r.ok ? 'failed (the step would fail)' : 'failed') : 'ok'} · ${stats(run)}\n`);
}

function singleJson(run: LocalRun, file: string): string {
  const { result, verdict, route } = run;
  const verdictJson = run.passed ? { ok: true } : { ok: false, error: verdict.error ?? { code: 'routing_error', message: route.error! } };
  return JSON.stringify({ file, ...result, verdict: verdictJson, ...(route.route && route.route.kind !== 'none' ? { route: route.route } : {}) });
}

export function registerTest(program: Command): void {
  program
    .command('test')
    .argument('[module]', 'the .wasm file (default: the project build.output, else the one .wasm in ., build/ or dist/)')
    .option('-f, --function <name>', "entry function (default: the manifest's entry, else the module's only entry; _start for a WASI command)")
    .option('-i, --input <file>', 'run once with this JSON input (the job context); - for stdin. Without it, in a project: run the test cases')
    .option('--fuel <n>', 'fuel limit (instructions; default: the manifest limits.fuel, else 1,000,000)', positiveInt('--fuel'))
    .option('--timeout <seconds>', 'timeout in seconds (default: limits.timeout_seconds, else 30)', positiveNumber('--timeout'))
    .option('--memory <mb>', 'memory limit in MB (default: limits.memory_mb, else 64)', positiveInt('--memory'))
    .option('--table-limit <n>', "table entries, all tables together (the step's table_limit)", positiveInt('--table-limit'))
    .option('--allow <grant>', "grant a permission besides the manifest's: TYPE=PATTERN, e.g. http:read=https://api.example.com/** (repeatable)", collect)
    .option('--datasource <name=url>', 'a datasource for db_query: NAME=postgres://... or mysql://... (repeatable)', collect)
    .option('--files <dir>', "the folder that stands for the job's file area (without it, file calls answer unavailable)")
    .option('--secret <name=value>', 'a secret variable a crypto call may name as its key (repeatable)', collect)
    .option('--json', 'print one machine-readable JSON object')
    .description("run a module locally with the server runtime and its limits: the project's test cases, or one --input")
    .action(async (moduleArg: string | undefined, opts: TestOptions) => {
      const project = findProject();
      const m = project?.manifest;
      const file = findModule(moduleArg, project);
      const grants = makeGrants(m?.permissions ?? [], opts);
      const limits: RunLimits = {
        fuel: opts.fuel ?? m?.limits.fuel ?? DEFAULT_LIMITS.fuel,
        timeoutMs: (opts.timeout ?? m?.limits.timeout_seconds ?? DEFAULT_LIMITS.timeoutMs / 1000) * 1000,
        memoryMb: opts.memory ?? m?.limits.memory_mb ?? DEFAULT_LIMITS.memoryMb,
        tableLimit: opts.tableLimit ?? DEFAULT_LIMITS.tableLimit,
      };
      const single = opts.input !== undefined || !project;
      const input = opts.input !== undefined ? readInput(opts.input) : {};
      const cases = single ? [] : loadCases(project!.root, m!.tests);
      if (!single && cases.length === 0) {
        throw new CliError(
          `no test cases: ${m!.tests} matches no file in ${project!.root}; add one (tests/basic.json: {"name", "input", "expected_output"}) or run once with --input FILE`,
        );
      }
      const bytes = new Uint8Array(readFileSync(file));
      const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
      try {
        let prepared: PreparedModule;
        try {
          prepared = await rt.prepare(bytes, { memoryMb: limits.memoryMb, tableLimit: limits.tableLimit });
        } catch (err) {
          // A module refused before it runs (invalid binary, foreign import, ...).
          if (!(err instanceof WasmModuleError)) throw err;
          const failure = { ok: false, error: { code: err.code, message: err.message }, file };
          if (opts.json) process.stdout.write(JSON.stringify(failure) + '\n');
          else process.stderr.write(`error ${failure.error.code}: ${failure.error.message}\n`);
          process.exitCode = 1;
          return;
        }
        if (single) await runOnce(rt, { bytes, file, prepared, entry: opts.function ?? m?.entry, input, limits, grants, json: opts.json });
        else await runCases(rt, { bytes, prepared, project: project!, cases, fn: opts.function, limits, grants, json: opts.json });
      } finally {
        await rt.close();
      }
    });
}

async function runOnce(
  rt: WasmRuntime,
  a: { bytes: Uint8Array; file: string; prepared: PreparedModule; entry?: string; input: unknown; limits: RunLimits; grants: Grants; json?: boolean },
): Promise<void> {
  let functionName: string;
  try {
    functionName = a.entry ?? defaultFunction(a.prepared, undefined);
  } catch (err) {
    if (!(err instanceof WasmModuleError)) throw err;
    const failure = { ok: false, error: { code: err.code, message: err.message }, file: a.file };
    if (a.json) process.stdout.write(JSON.stringify(failure) + '\n');
    else process.stderr.write(`error ${err.code}: ${err.message}\n`);
    process.exitCode = 1;
    return;
  }
  const run = await runLocal(rt, { bytes: a.bytes, functionName, input: a.input, limits: a.limits, grants: a.grants });
  if (a.json) process.stdout.write(singleJson(run, a.file) + '\n');
  else printSingle(run, a.file);
  process.exitCode = run.passed ? 0 : 1;
}

async function runCases(
  rt: WasmRuntime,
  a: {
    bytes: Uint8Array;
    prepared: PreparedModule;
    project: Project;
    cases: ReturnType<typeof loadCases>;
    fn?: string;
    limits: RunLimits;
    grants: Grants;
    json?: boolean;
  },
): Promise<void> {
  const fallback = a.fn ?? defaultFunction(a.prepared, a.project.manifest.entry);
  const results: { name: string; file: string; passed: boolean; problems: string[]; run: LocalRun }[] = [];
  for (const c of a.cases) {
    const run = await runLocal(rt, {
      bytes: a.bytes,
      functionName: c.function ?? fallback,
      input: c.input,
      context: c.context,
      limits: { ...a.limits, fuel: c.fuel ?? a.limits.fuel },
      grants: a.grants,
    });
    const problems = judgeCase(c, run);
    results.push({ name: c.name, file: c.file, passed: problems.length === 0, problems, run });
    if (a.json) continue;
    const out = process.stdout;
    out.write(`${problems.length === 0 ? 'PASS' : 'FAIL'} ${c.name} (${c.file}) · ${stats(run)}\n`);
    for (const l of hostCallLines(run.result.hostCalls)) out.write(`     ${l}\n`);
    if (problems.length) {
      for (const l of denialHints(run.result.hostCalls)) out.write(`     ${l}\n`);
      for (const p of problems) out.write(`     ${p}\n`);
      for (const l of run.result.logs) out.write(`     [${l.level}] ${l.message}\n`);
      if (run.result.stderr) out.write(`     stderr: ${run.result.stderr.trimEnd()}\n`);
    }
  }
  const failed = results.filter((r) => !r.passed).length;
  if (a.json) {
    process.stdout.write(
      JSON.stringify({
        passed: results.length - failed,
        failed,
        cases: results.map((r) => ({
          name: r.name,
          file: r.file,
          passed: r.passed,
          problems: r.problems,
          output: r.run.result.ok ? r.run.result.output : undefined,
          error: r.run.errorCode,
          fuel: r.run.result.fuelConsumed,
          host_calls: r.run.result.hostCalls,
          duration_ms: r.run.result.durationMs,
        })),
      }) + '\n',
    );
  } else {
    process.stdout.write(`${results.length} case(s): ${results.length - failed} passed, ${failed} failed\n`);
  }
  if (failed) process.exitCode = 1;
}
