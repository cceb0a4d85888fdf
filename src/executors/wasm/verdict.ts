/**
 * What a wasm step makes of a run's result: the job step and `wasm-cli test` both judge with this,
 * so the CLI reports the verdict the step would reach.
 */
import type { WasmRunResult } from '../../wasm/runtime/index.ts';

/** Module failures that the same module and input can never get past: no retry. */
const PERMANENT = new Set(['abi_error', 'import_not_allowed', 'invalid_module', 'unsupported_feature', 'invalid_output']);

export interface Verdict {
  error: { code: string; message: string; stack?: string; errors?: unknown[] } | null;
  retryable: boolean;
}

/** A module error, or an output of `{"valid": false, "errors": [...]}`: both fail the step. */
export function verdictOf(r: WasmRunResult): Verdict {
  if (!r.ok) return { error: { code: r.error.code, message: r.error.message, stack: r.error.stack }, retryable: !PERMANENT.has(r.error.code) };
  const out = r.output as { valid?: unknown; errors?: unknown } | null;
  if (out && typeof out === 'object' && !Array.isArray(out) && out.valid === false) {
    const errors = Array.isArray(out.errors) ? out.errors : out.errors === undefined ? [] : [out.errors];
    const text = errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('; ');
    // The module judged the data: the same data fails the same way, so it is not retried.
    return { error: { code: 'validation_failed', message: `the module found the data invalid: ${text || '(no errors given)'}`, errors }, retryable: false };
  }
  return { error: null, retryable: false };
}
