/**
 * `wasm-cli replay EXECUTION_ID [--step ID] [--attempt N] [--module FILE] [--json] --url --token`
 * (issue 20, docs/replay.md): fetches a WASM step run's record and its module (SHA-256 checked
 * against the registry and against the record), re-runs it here with every host call and WASI
 * input answered from the record (nothing is sent anywhere), and prints whether it reproduced.
 * `--module FILE` replays another build against the same record.
 *
 * Exit codes (its own, not the other commands'): 0 reproduced, 1 diverged (the first divergence
 * printed), 2 could not replay (the record was cut or masked, the run ended by the clock, the
 * record or module could not be fetched, the command line is wrong).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { WasmRuntime } from '../../wasm/runtime/index.ts';
import { formatReplay, replayExitCode, replayRun, type NotReplayableReason, type ReplayResult, type WasmRunRecord } from '../../wasm/replay/index.ts';
import { CliError, UsageError } from './errors.ts';
import { call, serverOf, type ServerOptions } from './server.ts';
import { serverOptions } from './server-options.ts';
import { sha256 } from './module-file.ts';
import { positiveInt } from './args.ts';
import { runShadow } from './replay-shadow.ts';

/** The registry's module is not the record's (a reason of its own in the answer). */
class ModuleMismatch extends CliError {
  readonly reason: NotReplayableReason = 'module_mismatch';
}

export interface ReplayOptions extends ServerOptions {
  step?: string;
  attempt?: string;
  module?: string;
  json?: boolean;
  /** The shadow test (replay-shadow.ts): the job whose step's last --last records to replay with --module. */
  job?: string;
  last?: number;
  budget?: number;
}

/** The execution's record: of the named step, or of its one recorded wasm step. */
async function fetchRecord(
  base: string,
  headers: Record<string, string>,
  executionId: string,
  step: string | undefined,
  attempt: string | undefined,
): Promise<WasmRunRecord> {
  const q = attempt ? `?attempt=${encodeURIComponent(attempt)}` : '';
  let stepId = step;
  if (stepId === undefined) {
    const res = await call(`${base}/api/v1/wasm/executions/${encodeURIComponent(executionId)}/logs`, { headers }, "fetching the execution's WASM runs");
    const steps = [...new Set(((await res.json()) as { logs: { step_id: string }[] }).logs.map((l) => l.step_id))];
    if (steps.length === 0) throw new CliError(`execution ${executionId} has no WASM step runs`);
    if (steps.length > 1) throw new UsageError(`execution ${executionId} ran several WASM steps (${steps.join(', ')}): name one with --step`);
    stepId = steps[0];
  }
  const res = await call(
    `${base}/api/v1/executions/${encodeURIComponent(executionId)}/steps/${encodeURIComponent(stepId)}/wasm-record${q}`,
    { headers },
    'fetching the run record',
  );
  return (await res.json()) as WasmRunRecord;
}

/** The module's bytes from the registry, checked against the registry's hash and the record's. */
async function fetchModule(base: string, headers: Record<string, string>, record: WasmRunRecord): Promise<Uint8Array> {
  const ref = record.module.id ?? (record.module.name && record.module.version ? `${record.module.name}@${record.module.version}` : null);
  if (!ref) throw new CliError('the record does not name its module: give the bytes with --module FILE');
  const res = await call(`${base}/api/v1/wasm/modules/${encodeURIComponent(ref)}/download`, { headers }, `downloading module ${ref}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const got = sha256(bytes);
  const registry = res.headers.get('x-vecron-module-sha256');
  if (registry && got !== registry) throw new CliError(`the download of ${ref} is corrupted: sha256 ${got}, the registry says ${registry}`);
  if (got !== record.module.hash) {
    throw new ModuleMismatch(
      `module ${ref} in the registry (sha256 ${got}) is not the one the run used (sha256 ${record.module.hash}); give that build with --module FILE`,
    );
  }
  return bytes;
}

export async function replayCommand(executionId: string | undefined, opts: ReplayOptions): Promise<ReplayResult> {
  if (!executionId) throw new UsageError('which run? wasm-cli replay EXECUTION_ID [--step ID] [--module FILE]');
  if (opts.attempt !== undefined && !/^[1-9]\d{0,3}$/.test(opts.attempt)) throw new UsageError(`--attempt must be a positive integer, got '${opts.attempt}'`);
  let other: Uint8Array | undefined;
  if (opts.module) {
    try {
      other = new Uint8Array(readFileSync(resolve(opts.module)));
    } catch (e) {
      throw new UsageError(`--module ${opts.module}: ${(e as Error).message}`);
    }
  }
  const { base, headers } = serverOf(opts);
  const record = await fetchRecord(base, headers, executionId, opts.step, opts.attempt);
  const bytes = other ?? (await fetchModule(base, headers, record));
  const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
  try {
    return await replayRun(rt, bytes, record, { otherBuild: other !== undefined });
  } finally {
    await rt.close();
  }
}

export function registerReplay(program: Command): void {
  serverOptions(
    program
      .command('replay')
      .argument('[execution_id]', 'the execution whose WASM step run to replay')
      .option('--step <id>', "the step (default: the execution's one WASM step)")
      .option('--attempt <n>', 'the attempt (default: the latest)')
      .option('--module <file>', 'replay another build of the module against the same record')
      .option('--json', 'print the result as JSON')
      .option('--job <id|name>', 'shadow test: replay the last --last recorded runs of --step of this job with --module (docs/replay.md)')
      .option('--last <n>', 'shadow test: how many recorded runs (default 20, at most 200)', positiveInt('--last'))
      .option('--budget <seconds>', 'shadow test: stop after this long (the runs not reached are reported not_run)', positiveInt('--budget')),
  )
    .description('re-run a recorded WASM step run locally, every host call answered from its record (exit 0 reproduced, 1 diverged, 2 could not replay)')
    .action(async (executionId: string | undefined, opts: ReplayOptions) => {
      if (opts.job !== undefined) {
        // The shadow test: exit 0 all the same, 1 some run differs, 2 nothing could be replayed.
        try {
          if (executionId) throw new UsageError('give an EXECUTION_ID (one run) or --job (a shadow test), not both');
          process.exitCode = await runShadow({ ...opts, job: opts.job });
        } catch (e) {
          if (!(e instanceof CliError || e instanceof UsageError)) throw e;
          process.stderr.write(`wasm-cli: ${e.message}\n`);
          process.exitCode = 2;
        }
        return;
      }
      let r: ReplayResult;
      try {
        r = await replayCommand(executionId, opts);
      } catch (e) {
        // Anything that stops the replay before it ran (the command line, the server, the module) is "could not replay".
        if (!(e instanceof CliError || e instanceof UsageError)) throw e;
        r = { status: 'could_not_replay', reason: e instanceof ModuleMismatch ? e.reason : 'record_unavailable', message: e.message };
      }
      process.stdout.write(`${opts.json ? JSON.stringify(r, null, 2) : formatReplay(r)}\n`);
      process.exitCode = replayExitCode(r);
    });
}
