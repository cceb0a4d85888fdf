import type { StepExecute } from '../executor.ts';
import type { HttpStepConfig } from './definition.ts';
import { StepError } from '../../engine/step-error.ts';

// Placeholder replaced by the HTTP executor implementation (in progress).
export const execute: StepExecute<HttpStepConfig> = async () => {
  throw new StepError('step_type_unavailable', 'the http executor is being built', { retryable: false });
};
