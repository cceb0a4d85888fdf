import type { Database } from '../db/database.ts';
import { lazyChild, type Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { JobDefinition, Step } from '../jobs/types.ts';
import type { ClaimedExecution } from '../state/claim.ts';
import type { Outcome } from '../state/finish.ts';
import { failStep, skipSteps, startStep, succeedStep, type StepOwner, type StepRef, type StepStart } from '../state/steps.ts';
import { SKIP_REASONS } from '../state/statuses.ts';
import type { ExecutorServices, StepExecutorModule, StepRunContext } from '../executors/executor.ts';
import { stepDefinitions } from '../executors/definitions.ts';
import { StepError, isStepError } from './step-error.ts';
import { resolveTemplates } from './templates.ts';
import { createMasker } from './masking.ts';
import { storedFormOf } from './credentials.ts';
import { retryDelayMs } from '../queue/backoff.ts';
import { replayPlan, type StepPlan } from './routing.ts';
import { sleep } from './sleep.ts';
import { saveOutcome, type LeaseTracker } from '../queue/outcome-retry.ts';
import { traceStep } from '../tracing/spans.ts';

/** Largest step output kept in the execution record (JSON bytes). */
export const MAX_STEP_OUTPUT_BYTES = 16 * 1024 * 1024;

export interface RunVariables {
  values: Record<string, unknown>;
  /** Plaintexts of secret variables: masked in everything persisted or logged. */
  secrets: string[];
}

export interface EngineEnv {
  db: Database;
  logger: Logger;
  metrics?: Metrics;
  services: Omit<ExecutorServices, 'variable'>;
  workerId: string;
  /** The worker's leases: a write that meets a database outage is retried while the lease holds. */
  leases?: LeaseTracker;
  /** The execution's variables from the rows the claim fetched, merged with the job document's. */
  loadVariables(exec: ClaimedExecution, documentVariables: Record<string, unknown>): Promise<RunVariables>;
  /** Writes a step's start (the worker's group commit, src/queue/start-writer.ts); one statement per start without it. */
  startStep?: (start: StepStart) => Promise<boolean>;
}

/** Why an execution was stopped from outside; set as the AbortSignal's reason. */
export class StopRequest extends Error {
  constructor(readonly kind: 'lease_lost' | 'shutdown') {
    super(kind === 'lease_lost' ? 'another worker took over this execution (lease lost)' : 'worker is shutting down');
  }
}

/** Thrown when a fenced write finds that this worker no longer owns the execution. */
class LeaseLost extends Error {}

interface StepState {
  status: string;
  output: unknown;
  started_at: string | null;
  completed_at: string | null;
}

/**
 * Runs the steps of one claimed execution in order, from the first one that has not succeeded yet
 * (so a retried or taken-over execution resumes where it stopped). Each step's output is persisted
 * the moment the step ends. Returns the outcome; the caller records it (state/finish.ts).
 */
export async function runExecution(exec: ClaimedExecution, env: EngineEnv, signal: AbortSignal): Promise<Outcome> {
  const job = exec.job_snapshot as JobDefinition;
  const log = lazyChild(env.logger, { execution: exec.id, job: job.name, attempt: exec.attempt });
  // Every step write goes through src/state and is fenced: it applies only while this worker still
  // owns the execution; when it did not apply, the lease was lost. A write that meets a database
  // outage is retried while the lease holds (src/queue/outcome-retry.ts).
  const owner: StepOwner = { executionId: exec.id, jobId: exec.job_id, workerId: env.workerId };
  const fenced = async (write: () => Promise<boolean>): Promise<void> => {
    const applied = await saveOutcome(write, {
      what: 'a step result',
      executionId: exec.id,
      leases: env.leases,
      until: env.leases ? undefined : Date.now() + 30_000,
      log,
    });
    if (!applied) throw new LeaseLost();
  };

  const vars = await env.loadVariables(exec, job.variables ?? {});
  const mask = createMasker(vars.secrets);
  const steps: Record<string, StepState> = {};
  for (const r of exec.done_steps ?? []) {
    steps[r.step_id] = { status: 'succeeded', output: r.output, started_at: r.started_at, completed_at: r.completed_at };
  }
  const context: Record<string, unknown> = {
    job: { id: exec.job_id, name: job.name, version: exec.job_version },
    execution: { id: exec.id, attempt: exec.attempt, fire_time: exec.fire_time?.toISOString() ?? null },
    variables: vars.values,
    trigger: exec.trigger,
    steps,
  };

  try {
    // Written together with the first step's 'running' row (one statement less per execution).
    let contextJson: string | null = JSON.stringify(mask({ variables: vars.values, trigger: exec.trigger }));

    // The job timeout counts per attempt, from the moment this worker started it.
    const deadline = Date.now() + job.timeout_seconds * 1000;
    const se: StepEnv = { exec, env, job, context, steps, deadline, signal, mask, owner, fenced, log, vars, writes: {} };
    // A resumed execution keeps the set_context values of its earlier attempts.
    const earlier = exec.context?.set_context;
    if (earlier && typeof earlier === 'object') {
      applyContextWrites(se, '(earlier attempt)', earlier);
      contextJson = se.pendingContext ?? contextJson;
      se.pendingContext = null;
    }
    // Where to start: the route the already-succeeded steps chose (a fresh run starts at the first step).
    const done = new Map(Object.entries(steps).map(([id, st]) => [id, st.output]));
    let plan: StepPlan;
    try {
      plan = replayPlan(job.steps, done);
    } catch (err) {
      return failedOutcome(err as StepError, null);
    }
    for (;;) {
      let index: number | null;
      try {
        index = plan.take();
      } catch (err) {
        return failedOutcome(err as StepError, null);
      }
      if (index === null) return { status: 'succeeded', contextJson: takeContext(se) };
      const step = job.steps[index];
      const result = await runStep(step, se, contextJson);
      contextJson = null;
      if ('status' in result) return result;
      let routingFailure: StepError | null = null;
      try {
        plan.afterSuccess(index, result.output);
      } catch (err) {
        routingFailure = err as StepError;
      }
      const last = routingFailure === null && plan.peek() === null;
      // Steps the route never reached are recorded as skipped (linear jobs have none).
      const skipped = last ? plan.notRun().filter((i) => steps[job.steps[i].id]?.status !== 'succeeded') : [];
      if (last && skipped.length === 0) {
        // The last step's result goes with the execution's final status, in one statement (state/finish.ts).
        return { status: 'succeeded', lastStep: { stepId: step.id, completedAt: result.completedAt, outputJson: result.json }, contextJson: takeContext(se) };
      }
      await recordStepSuccess(step, se, result);
      if (routingFailure) return failedOutcome(routingFailure, step.id);
      if (last) {
        await fenced(() =>
          skipSteps(
            env.db,
            owner,
            skipped.map((i) => stepRef(job, i)),
            SKIP_REASONS.offRoute,
          ),
        );
        return { status: 'succeeded', contextJson: takeContext(se) };
      }
    }
  } catch (err) {
    if (err instanceof LeaseLost) throw new StopRequest('lease_lost');
    throw err;
  }
}

interface StepEnv {
  exec: ClaimedExecution;
  env: EngineEnv;
  job: JobDefinition;
  context: Record<string, unknown>;
  steps: Record<string, StepState>;
  deadline: number;
  signal: AbortSignal;
  mask: (v: unknown) => unknown;
  owner: StepOwner;
  fenced: (write: () => Promise<boolean>) => Promise<void>;
  log: Logger;
  vars: RunVariables;
  /** Context not yet written (the first step was started by the claim): written with the next write. */
  pendingContext?: string | null;
  /** The variables with secrets masked, for shownConfig (computed once, on first use). */
  maskedVariables?: Record<string, unknown>;
  /** Values steps wrote with set_context: top-level names of the job context for later steps. */
  writes: Record<string, unknown>;
  /** The claim's start of the first step applies to the first step run of this attempt only. */
  claimStartUsed?: boolean;
}

interface StepSuccess {
  output: unknown;
  /** The output as stored (secrets masked), JSON. */
  json: string;
  startedAt: Date;
  completedAt: Date;
}

function failedOutcome(e: StepError, stepId: string | null): Outcome {
  return {
    status: 'failed',
    error: { code: e.code, message: e.message, retryable: e.retryable, ...(stepId ? { step_id: stepId } : {}), details: e.details },
  };
}

/**
 * Runs one step and records its start and, on failure, its end. Returns the failed execution's
 * outcome, or the step's result for the caller to record (it may be the last one, written with the
 * execution's final status).
 */
function runStep(step: Step, s: StepEnv, contextJson: string | null): Promise<Outcome | StepSuccess> {
  // Inside the step's span when tracing is on (src/tracing): host calls and log lines attach to it.
  return traceStep(
    step,
    s.exec.attempt,
    s.mask,
    () => runStepUntraced(step, s, contextJson),
    (r) => ('status' in r ? { status: r.status, errorCode: r.status === 'failed' ? r.error.code : undefined } : { status: 'succeeded' }),
  );
}

async function runStepUntraced(step: Step, s: StepEnv, contextJson: string | null): Promise<Outcome | StepSuccess> {
  const { exec, env, fenced, mask, owner } = s;
  let startedAt = new Date();
  const markedByClaim = !s.claimStartUsed && exec.first_step_id === step.id && exec.first_step_started_at !== null;
  s.claimStartUsed = true;
  if (markedByClaim) {
    // The claim already wrote this step's 'running' row (and its event); the context goes with the next write.
    startedAt = exec.first_step_started_at!;
    s.pendingContext = contextJson;
  } else {
    // Step rows are created as steps start (a queued execution has none); a rerun updates its row.
    const start: StepStart = { owner, step: stepRef(s.job, s.job.steps.indexOf(step)), startedAt, attempt: exec.attempt, contextJson };
    await fenced(() => (env.startStep ? env.startStep(start) : startStep(env.db, start.owner, start.step, startedAt, start.attempt, contextJson)));
  }
  if (exec.fire_time && env.metrics && Object.keys(s.steps).length === 0) {
    env.metrics.scheduleLag.observe((startedAt.getTime() - exec.fire_time.getTime()) / 1000);
  }

  let output: unknown;
  let error: StepError | null = null;
  const maxTries = 1 + (step.max_retries ?? 0);
  for (let tryNo = 1; tryNo <= maxTries; tryNo++) {
    try {
      output = await runStepOnce(step, s);
      error = null;
      break;
    } catch (err) {
      if (err instanceof StopRequest || err instanceof LeaseLost) throw err;
      if (s.signal.aborted && s.signal.reason instanceof StopRequest) throw s.signal.reason;
      error = isStepError(err) ? err : new StepError('step_failed', (err as Error)?.message ?? String(err), { cause: err });
      const remaining = s.deadline - Date.now();
      if (!error.retryable || tryNo === maxTries || error.code === 'job_timeout' || remaining <= 0) break;
      const wait = Math.min(retryDelayMs(s.job.retry_backoff_seconds, tryNo), remaining);
      s.log.warn({ step: step.id, code: error.code, retryInMs: wait }, 'step failed; retrying');
      await sleep(wait, s.signal);
    }
  }

  const completedAt = new Date();
  env.metrics?.stepDuration.observe({ type: step.type, status: error ? 'failed' : 'succeeded' }, (completedAt.getTime() - startedAt.getTime()) / 1000);
  if (error) {
    const errJson = mask({ ...error.toJSON(), step_id: step.id }) as any;
    const ctxJson = takeContext(s);
    await fenced(() => failStep(env.db, owner, step.id, completedAt, errJson, ctxJson));
    s.log.warn({ step: step.id, code: error.code, err: errJson.message }, 'step failed');
    return {
      status: 'failed',
      error: {
        code: error.code,
        message: `step '${step.id}' failed: ${errJson.message}`,
        retryable: error.retryable,
        step_id: step.id,
        details: errJson.details,
      },
    };
  }

  const masked = mask(storedFormOf(output ?? null));
  const json = JSON.stringify(masked);
  if (json.length > MAX_STEP_OUTPUT_BYTES) {
    const e = new StepError('output_too_large', `step output is ${json.length} bytes; the limit is ${MAX_STEP_OUTPUT_BYTES}`, { retryable: false });
    const ctxJson = takeContext(s);
    await fenced(() => failStep(env.db, owner, step.id, completedAt, { ...e.toJSON(), step_id: step.id }, ctxJson));
    return { status: 'failed', error: { code: e.code, message: `step '${step.id}' failed: ${e.message}`, retryable: false, step_id: step.id } };
  }
  return { output, json, startedAt, completedAt };
}

function stepRef(job: JobDefinition, index: number): StepRef {
  return { id: job.steps[index].id, position: index, type: job.steps[index].type };
}

/** Writes a step's success (not the last one: that goes with the final status) and its event. */
async function recordStepSuccess(step: Step, s: StepEnv, r: StepSuccess): Promise<void> {
  const ctxJson = takeContext(s);
  await s.fenced(() => succeedStep(s.env.db, s.owner, step.id, r.completedAt, r.json, ctxJson));
  // Later steps see the real (unmasked) output; only what is stored and shown is masked.
  s.steps[step.id] = { status: 'succeeded', output: r.output, started_at: r.startedAt.toISOString(), completed_at: r.completedAt.toISOString() };
}

async function runStepOnce(step: Step, s: StepEnv): Promise<unknown> {
  const config = resolveTemplates(step.config, s.context);
  const now = Date.now();
  const stepLimit = step.timeout_seconds ? now + step.timeout_seconds * 1000 : Infinity;
  const deadline = Math.min(s.deadline, stepLimit);
  const ac = new AbortController();
  const onParent = () => ac.abort(s.signal.reason);
  if (s.signal.aborted) throw s.signal.reason;
  s.signal.addEventListener('abort', onParent, { once: true });
  const timer = setTimeout(
    () => {
      ac.abort(
        deadline === stepLimit && stepLimit < s.deadline
          ? new StepError('step_timeout', `step '${step.id}' exceeded its timeout of ${step.timeout_seconds}s`)
          : new StepError('job_timeout', `job '${s.job.name}' exceeded its timeout of ${s.job.timeout_seconds}s during step '${step.id}'`),
      );
    },
    Math.max(0, deadline - now),
  );
  const ctx: StepRunContext = {
    jobId: s.exec.job_id,
    executionId: s.exec.id,
    stepId: step.id,
    attempt: s.exec.attempt,
    signal: ac.signal,
    deadline,
    deadlineEnforced: true,
    context: s.context,
    services: { ...s.env.services, variable: (name) => s.vars.values[name] },
    logger: lazyChild(s.log, { step: step.id }),
    setContext: (writes) => applyContextWrites(s, step.id, writes),
    // Without secret variables the shown config is the config itself: the same object, so an
    // executor can reuse what it built from it (the http step's URL and headers).
    shownConfig: () => (s.vars.secrets.length === 0 ? config : shownConfig(step, s)),
    mask: s.mask,
  };
  try {
    const mod = await loadExecutor(step.type);
    // The race makes a step end at its deadline even if an executor ignores the signal.
    return await Promise.race([
      mod.execute(config as never, ctx),
      new Promise((_, reject) => {
        if (ac.signal.aborted) reject(ac.signal.reason);
        ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    s.signal.removeEventListener('abort', onParent);
  }
}

/**
 * The step's config resolved against the context with secret variables masked (`***`), then masked
 * again (a secret reaching the config through a step output or the trigger): what executors record
 * of what they sent. Computed only when an executor asks.
 */
function shownConfig(step: Step, s: StepEnv): unknown {
  s.maskedVariables ??= s.mask(s.vars.values) as Record<string, unknown>;
  try {
    return s.mask(resolveTemplates(step.config, { ...s.context, variables: s.maskedVariables }));
  } catch {
    return s.mask(step.config);
  }
}

/** The job context's own names; set_context cannot overwrite them. */
const RESERVED_CONTEXT_KEYS = new Set(['job', 'execution', 'variables', 'trigger', 'steps']);

/**
 * set_context writes become top-level names of the job context (`{{key}}` in later steps'
 * templates, `get_context("key")` in later modules) and are kept in the execution record under
 * `context.set_context`.
 */
function applyContextWrites(s: StepEnv, stepId: string, writes: Record<string, unknown>): void {
  let changed = false;
  for (const [k, v] of Object.entries(writes)) {
    if (RESERVED_CONTEXT_KEYS.has(k)) {
      s.log.warn({ step: stepId, key: k }, `set_context('${k}') ignored: '${k}' is a reserved name of the job context`);
      continue;
    }
    s.writes[k] = v;
    s.context[k] = v;
    changed = true;
  }
  if (changed) {
    s.pendingContext = JSON.stringify(s.mask({ variables: s.vars.values, trigger: s.exec.trigger, set_context: s.writes }));
  }
}

function takeContext(s: StepEnv): string | null {
  const c = s.pendingContext ?? null;
  s.pendingContext = null;
  return c;
}

// Executor modules are loaded once per process (a dynamic import per step costs ~0.2 ms under tsx).
const executors = new Map<string, Promise<StepExecutorModule>>();
function loadExecutor(type: Step['type']): Promise<StepExecutorModule> {
  let m = executors.get(type);
  if (!m) {
    m = stepDefinitions[type].loadExecutor() as Promise<StepExecutorModule>;
    m.catch(() => executors.delete(type));
    executors.set(type, m);
  }
  return m;
}
