/**
 * One local run of a module with the server's runtime (instrumentation, worker pool, limits, host
 * functions, WASI), judged as a job step judges it: the verdict (a module error or `{"valid":
 * false}` fails) and the route the output takes. Used by `wasm-cli test` for `--input` and for
 * every test case.
 */
import { routeOf, type Route } from '../../engine/routing.ts';
import { verdictOf, type Verdict } from '../../executors/wasm/verdict.ts';
import type { WasmRunResult, WasmRuntime, PreparedModule } from '../../wasm/runtime/index.ts';
import { WasmModuleError } from '../../wasm/runtime/index.ts';
import type { Grants } from './grants.ts';
import { createHostDispatch } from '../../wasm/host/index.ts';
import { createLocalSession } from '../../wasm/host/session.ts';
import { UsageError } from './errors.ts';

export interface RunLimits {
  fuel: number;
  timeoutMs: number;
  memoryMb: number;
  tableLimit: number;
}

export interface RouteView {
  route: Route | null;
  text: string | null;
  error?: string;
}

/** The route a step with this output takes (as the engine reads it), or the routing error. */
export function routeText(output: unknown): RouteView {
  try {
    const route = routeOf(output, 'test');
    if (route.kind === 'none') return { route, text: null };
    if (route.kind === 'end') return { route, text: 'the execution ends here (next_steps: [])' };
    return { route, text: `next: ${route.ids.join(' -> ')}` };
  } catch (err) {
    return { route: null, text: null, error: (err as Error).message };
  }
}

export interface LocalRun {
  result: WasmRunResult;
  verdict: Verdict;
  route: RouteView;
  /** The verdict and the route together: the step would succeed. */
  passed: boolean;
  /** The code the step would fail with, if it fails. */
  errorCode: string | null;
}

/**
 * The function a run calls when none is named: the manifest's entry, else the module's only entry
 * (`_start` for a WASI command). Several candidates: a usage error naming them.
 */
export function defaultFunction(prepared: PreparedModule, manifestEntry: string | undefined): string {
  if (manifestEntry) return manifestEntry;
  const abi = prepared.exports.some((e) => e.name === 'alloc' && e.kind === 'function');
  const entries = prepared.entries.filter((e) => (e.form === 'C' ? true : abi && e.name !== 'alloc')).map((e) => e.name);
  if (entries.length === 1) return entries[0];
  if (entries.length === 0) {
    throw new WasmModuleError(
      'abi_error',
      `the module has no entry function (exports: ${prepared.exports.map((e) => e.name).join(', ') || 'none'}); export alloc, memory and a (ptr, len) -> i64 function, or build a WASI command (docs/abi.md)`,
    );
  }
  throw new UsageError(`the module has several entry functions (${entries.join(', ')}): name one with --function, or set "entry" in the manifest`);
}

export async function runLocal(
  rt: WasmRuntime,
  req: { bytes: Uint8Array; functionName: string; input: unknown; context?: unknown; limits: RunLimits; grants: Grants },
): Promise<LocalRun> {
  const context = (req.context ?? req.input) as Record<string, unknown>;
  // The host functions get exactly what the job would grant: the manifest's permissions plus the
  // command line's, the named datasources and secrets, the folder standing for the job's files.
  const session = createLocalSession({
    grants: req.grants.permissions,
    datasources: req.grants.datasources,
    secrets: req.grants.secrets,
    filesDir: req.grants.filesDir ?? undefined,
    deadline: Date.now() + req.limits.timeoutMs,
  });
  const result = await rt.run({
    host: createHostDispatch(session),
    bytes: req.bytes,
    functionName: req.functionName,
    input: req.input,
    context: context && typeof context === 'object' && !Array.isArray(context) ? context : {},
    limits: req.limits,
    env: { JOB_ID: 'local', EXECUTION_ID: 'local' },
  });
  const verdict = verdictOf(result);
  const route = result.ok ? routeText(result.output) : { route: null, text: null };
  const passed = verdict.error === null && route.error === undefined;
  return { result, verdict, route, passed, errorCode: verdict.error?.code ?? (route.error !== undefined ? 'routing_error' : null) };
}
