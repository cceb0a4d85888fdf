/**
 * A step failure with a stable code (`http_status`, `timeout`, `fuel_exhausted`, `auth_failed`,
 * ...). `retryable` false means retrying cannot help (bad credentials, missing file, invalid
 * output): the execution fails at once instead of burning its retries.
 */
export class StepError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details?: unknown;

  constructor(code: string, message: string, opts: { retryable?: boolean; details?: unknown; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'StepError';
    this.code = code;
    this.retryable = opts.retryable ?? true;
    this.details = opts.details;
  }

  toJSON(): { code: string; message: string; retryable: boolean; details?: unknown } {
    const base = { code: this.code, message: this.message, retryable: this.retryable };
    return this.details === undefined ? base : { ...base, details: this.details };
  }
}

export function isStepError(e: unknown): e is StepError {
  return e instanceof StepError;
}
