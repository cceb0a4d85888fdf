/** A `StepRunContext` for calling an executor directly, and a helper that expects a step to fail. */
import assert from 'node:assert/strict';
import type { ExecutorServices, StepRunContext } from '../../src/executors/executor.ts';
import { StepError } from '../../src/engine/step-error.ts';
import { createLogger } from '../../src/logger.ts';

const silent = createLogger('silent');

/** Defaults: job-1/exec-1, step 'step', attempt 1, a fresh signal, 60 s deadline, no services, a silent logger. */
export function stepRunContext(over: Omit<Partial<StepRunContext>, 'services'> & { services?: Partial<ExecutorServices> } = {}): StepRunContext {
  return {
    jobId: 'job-1',
    executionId: 'exec-1',
    stepId: 'step',
    attempt: 1,
    signal: new AbortController().signal,
    deadline: Date.now() + 60_000,
    context: {},
    logger: silent,
    ...over,
    services: (over.services ?? {}) as ExecutorServices,
  };
}

/** The StepError that `p` rejects with; fails the test if it resolves or rejects with anything else. */
export async function stepError(p: Promise<unknown>): Promise<StepError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StepError, `expected a StepError, got ${err}`);
    return err;
  }
  assert.fail('expected the step to fail');
}
