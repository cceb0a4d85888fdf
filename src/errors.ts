/**
 * One error type for the whole service. Every failure a user can act on is a VecronError with a
 * stable `code`; the API turns the code into an HTTP status in one place (src/api/error-handler.ts).
 * Anything that is not a VecronError is a bug and becomes a 500.
 */
export const ERROR_CODES = [
  'validation_failed',
  'invalid_json',
  'invalid_config',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'idempotency_key_reused',
  'rate_limited',
  'payload_too_large',
  'unsupported_media_type',
  'unavailable',
  'invalid_signature',
  'invalid_module',
  'import_not_allowed',
  'integrity_check_failed',
  'internal',
] as const;
/**
 * Exactly the codes vecron throws as VecronErrors, each documented in docs/api.md's error table
 * (test/api/error-docs.test.ts holds the three together). A step's failures are StepErrors
 * (src/engine/step-error.ts) with their own codes, recorded in the execution, never thrown to the API.
 */
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface Problem {
  /** JSON path of the offending value, e.g. `steps[1].config.url`; `` for the whole document. */
  path: string;
  message: string;
}

export class VecronError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'VecronError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }
}

export const notFound = (what: string, id: string): VecronError => new VecronError('not_found', `${what} '${id}' does not exist`);

export const validationFailed = (problems: Problem[], what = 'input'): VecronError =>
  new VecronError('validation_failed', `${what} is invalid: ` + problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '), { problems });

export function isVecronError(err: unknown): err is VecronError {
  return err instanceof VecronError;
}
