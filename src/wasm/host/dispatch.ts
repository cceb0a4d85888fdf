/**
 * Serves one run's bridged host calls: finds the function, gives it a call context (permission
 * checks that report denials, the call's target, a signal that also fires at the step's deadline),
 * and turns whatever happens into an answer the guest can handle. Nothing a guest sends can make
 * this throw: an unknown function or a malformed request is `bad_request`, a refusal is
 * `permission_denied`, an unexpected failure is `upstream_error` (logged in full, told to the guest
 * in one line), and an answer larger than `limits.maxResponseBytes` is `too_large`.
 */
import { PermissionDenied, checkPermission, type PermissionType } from '../../modules/permissions.ts';
import { VecronError } from '../../errors.ts';
import { traceDispatch } from '../../tracing/host-calls.ts';
import { applicableGrants, isShared } from './file-area.ts';
import {
  HostCallError,
  errorResponse,
  type HostAnswer,
  type HostCallContext,
  type HostDispatch,
  type HostErrorCode,
  type HostFunction,
  type HostResponse,
  type HostSession,
} from './types.ts';

/** Why a refusal happened, in the words of the audit row and the guest's message. */
function denialReason(session: HostSession, permission: PermissionType, resource: string, applicable: number): string {
  const ofType = session.permissions.filter((p) => p.type === permission).length;
  if (ofType === 0) return 'the module has no such permission';
  if (applicable === 0 && isShared(resource)) return 'the shared area is reachable only through a pattern that names it (shared/...)';
  return 'no resource pattern of the module matches';
}

function contextFor(session: HostSession, fn: string, signal: AbortSignal, setTarget: (t: string) => void): HostCallContext {
  return {
    session,
    signal,
    target: setTarget,
    require(permission, resource) {
      const grants = applicableGrants(session.permissions, permission, resource);
      try {
        return checkPermission(grants, permission, resource);
      } catch (err) {
        if (!(err instanceof PermissionDenied)) throw err;
        const reason = denialReason(session, permission, err.resource, grants.filter((p) => p.type === permission).length);
        // A report that fails must not turn a clean refusal into a crash of the call.
        try {
          session.onDenied({ function: fn, permission, resource: err.resource, reason });
        } catch (reportErr) {
          session.logger?.error({ err: reportErr }, 'could not report a host-call denial');
        }
        throw new HostCallError('permission_denied', `permission denied: ${permission} for '${err.resource}' (${reason})`, permission);
      }
    },
  };
}

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A dispatch over `functions` for one run's session. */
export function createDispatch(session: HostSession, functions: ReadonlyMap<string, HostFunction>): HostDispatch {
  // A span per call while tracing is on (src/tracing/host-calls.ts); the dispatch itself otherwise.
  return traceDispatch(async (fn, request, runSignal): Promise<HostAnswer> => {
    let target: string | null = null;
    const answer = (response: HostResponse, outcome: HostAnswer['outcome'], permission?: string): HostAnswer =>
      permission ? { response, target, outcome, permission } : { response, target, outcome };
    const refuse = (code: HostErrorCode, message: string, permission?: string): HostAnswer => answer(errorResponse(code, message), code, permission);

    const f = functions.get(fn);
    if (!f) return refuse('bad_request', `no host function '${String(fn).slice(0, 100)}' is served here (functions: ${[...functions.keys()].join(', ')})`);
    if (request === null || typeof request !== 'object' || Array.isArray(request)) return refuse('bad_request', `the ${fn} request must be a JSON object`);
    const left = session.deadline - Date.now();
    if (left <= 0) return refuse('timeout', `the step's deadline has passed: ${fn} was not started`);
    if (runSignal.aborted) return refuse('cancelled', `the run was stopped: ${fn} was not started`);
    // The step's deadline bounds the call even if the run's own timer has not fired yet. (By hand,
    // not AbortSignal.any: one run makes many calls on one long-lived run signal.)
    const call = new AbortController();
    let pastDeadline = false;
    const onRunAbort = () => call.abort(runSignal.reason);
    runSignal.addEventListener('abort', onRunAbort, { once: true });
    const timer = setTimeout(() => {
      pastDeadline = true;
      call.abort(new HostCallError('timeout', `${fn} did not finish before the step's deadline`));
    }, left);

    let response: HostResponse;
    try {
      response = await f.call(
        request as Record<string, unknown>,
        contextFor(session, fn, call.signal, (t) => (target = t)),
      );
    } catch (err) {
      if (pastDeadline) return refuse('timeout', `${fn} did not finish before the step's deadline`);
      if (runSignal.aborted) return refuse('cancelled', `${fn} was stopped: the run was cancelled or timed out`);
      if (err instanceof HostCallError) return refuse(err.code, err.message, err.permission);
      session.logger?.error({ err, function: fn, target }, 'host call failed');
      const what = err instanceof VecronError ? err.message : 'an internal error (see the step log)';
      return refuse('upstream_error', `${fn} failed: ${what}`);
    } finally {
      clearTimeout(timer);
      runSignal.removeEventListener('abort', onRunAbort);
    }

    let json: string;
    try {
      json = JSON.stringify(response);
    } catch (err) {
      session.logger?.error({ err, function: fn }, 'host call answer is not JSON');
      return refuse('upstream_error', `${fn} produced an answer that is not JSON`);
    }
    const size = byteLength(json);
    if (size > session.limits.maxResponseBytes) {
      return refuse(
        'too_large',
        `the ${fn} answer is ${size} bytes of JSON; the limit is ${session.limits.maxResponseBytes} (VECRON_WASM_HOST_MAX_RESPONSE_BYTES)`,
      );
    }
    return answer(response, 'ok');
  });
}
