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
import { registerWorkerKeys, resolveWorkerKeys } from './worker-keys.ts';
import { registerWorkerSession } from './worker-session.ts';
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
  RESPONSE_JSON,
} from './types.ts';

/** Why a refusal happened, in the words of the audit row and the guest's message. */
function denialReason(session: HostSession, permission: PermissionType, resource: string, applicable: number): string {
  const ofType = session.permissions.filter((p) => p.type === permission).length;
  if (ofType === 0) return 'the module has no such permission';
  if (applicable === 0 && isShared(resource)) return 'the shared area is reachable only through a pattern that names it (shared/...)';
  return 'no resource pattern of the module matches';
}

/**
 * One call's context. A class, not an object of closures: a run makes thousands of calls, and
 * every closure made per call costs (tsx names each one with a defineProperty).
 */
class CallContext implements HostCallContext {
  /** What the record shows as the call's target (set by the function). */
  targetValue: string | null = null;
  constructor(
    readonly session: HostSession,
    readonly fn: string,
    readonly signal: AbortSignal,
  ) {}
  target(t: string): void {
    this.targetValue = t;
  }
  require(permission: PermissionType, resource: string): string {
    const session = this.session;
    const grants = applicableGrants(session.permissions, permission, resource);
    try {
      return checkPermission(grants, permission, resource);
    } catch (err) {
      if (!(err instanceof PermissionDenied)) throw err;
      const reason = denialReason(session, permission, err.resource, grants.filter((p) => p.type === permission).length);
      // A report that fails must not turn a clean refusal into a crash of the call.
      try {
        session.onDenied({ function: this.fn, permission, resource: err.resource, reason });
      } catch (reportErr) {
        session.logger?.error({ err: reportErr }, 'could not report a host-call denial');
      }
      throw new HostCallError('permission_denied', `permission denied: ${permission} for '${err.resource}' (${reason})`, permission);
    }
  }
}

/**
 * The signal every call of one run gets: aborted when the run's own signal aborts, or at the step's
 * deadline even if the run's timer has not fired yet. One per run (one timer, one listener), not
 * one per call: a run makes many calls on one long-lived run signal.
 */
class RunLink {
  readonly ac = new AbortController();
  pastDeadline = false;
  private readonly timer: NodeJS.Timeout;
  constructor(
    readonly run: AbortSignal,
    deadline: number,
  ) {
    this.timer = setTimeout(
      () => {
        this.pastDeadline = true;
        this.ac.abort(new HostCallError('timeout', "the call did not finish before the step's deadline"));
      },
      Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS),
    );
    this.timer.unref(); // held only while a call is in flight (begin/end)
    run.addEventListener('abort', () => this.stop(), { once: true });
  }
  private inFlight = 0;
  /** A call starts: the deadline keeps the process alive while it runs (a call can wait for nothing else). */
  begin(): void {
    if (this.inFlight++ === 0) this.timer.ref();
  }
  end(): void {
    if (--this.inFlight === 0) this.timer.unref();
  }
  /** The run is over (or stopped): its calls are aborted with the run's reason, the timer goes. */
  stop(): void {
    clearTimeout(this.timer);
    if (!this.ac.signal.aborted) this.ac.abort(this.run.reason);
  }
}
const MAX_TIMER_MS = 2 ** 31 - 1;

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

function answerOf(response: HostResponse, target: string | null, outcome: HostAnswer['outcome'], permission?: string): HostAnswer {
  return permission ? { response, target, outcome, permission } : { response, target, outcome };
}
function refusal(target: string | null, code: HostErrorCode, message: string, permission?: string): HostAnswer {
  return answerOf(errorResponse(code, message), target, code, permission);
}

/** A dispatch over `functions` for one run's session. */
export function createDispatch(session: HostSession, functions: ReadonlyMap<string, HostFunction>): HostDispatch {
  let link: RunLink | null = null;
  // A span per call while tracing is on (src/tracing/host-calls.ts); the dispatch itself otherwise.
  const dispatch = traceDispatch(async (fn, request, runSignal): Promise<HostAnswer> => {
    const f = functions.get(fn);
    if (!f)
      return refusal(null, 'bad_request', `no host function '${String(fn).slice(0, 100)}' is served here (functions: ${[...functions.keys()].join(', ')})`);
    if (request === null || typeof request !== 'object' || Array.isArray(request))
      return refusal(null, 'bad_request', `the ${fn} request must be a JSON object`);
    if (session.deadline - Date.now() <= 0) return refusal(null, 'timeout', `the step's deadline has passed: ${fn} was not started`);
    if (runSignal.aborted) return refusal(null, 'cancelled', `the run was stopped: ${fn} was not started`);
    // A new run signal gets a link of its own; a former one lives on for its calls in flight and
    // ends with its signal or at the deadline (its timer holds nothing once they are done).
    if (link === null || link.run !== runSignal) link = new RunLink(runSignal, session.deadline);
    const run = link;
    const ctx = new CallContext(session, fn, run.ac.signal);

    let response: HostResponse;
    run.begin();
    try {
      response = await f.call(request as Record<string, unknown>, ctx);
    } catch (err) {
      const target = ctx.targetValue;
      if (run.pastDeadline) return refusal(target, 'timeout', `${fn} did not finish before the step's deadline`);
      if (runSignal.aborted) return refusal(target, 'cancelled', `${fn} was stopped: the run was cancelled or timed out`);
      if (err instanceof HostCallError) return refusal(target, err.code, err.message, err.permission);
      session.logger?.error({ err, function: fn, target }, 'host call failed');
      const what = err instanceof VecronError ? err.message : 'an internal error (see the step log)';
      return refusal(target, 'upstream_error', `${fn} failed: ${what}`);
    } finally {
      run.end();
    }

    const target = ctx.targetValue;
    let json: string;
    try {
      json = JSON.stringify(response);
    } catch (err) {
      session.logger?.error({ err, function: fn }, 'host call answer is not JSON');
      return refusal(target, 'upstream_error', `${fn} produced an answer that is not JSON`);
    }
    // Past the limit for certain only when the text could be (UTF-8 takes at most 3 bytes per unit).
    const size = json.length * 3 > session.limits.maxResponseBytes ? byteLength(json) : 0;
    if (size > session.limits.maxResponseBytes) {
      return refusal(
        target,
        'too_large',
        `the ${fn} answer is ${size} bytes of JSON; the limit is ${session.limits.maxResponseBytes} (VECRON_WASM_HOST_MAX_RESPONSE_BYTES)`,
      );
    }
    RESPONSE_JSON.set(response, json);
    return answerOf(response, target, 'ok');
  });
  // The keys the module may name by a plain name go to its worker with each run (worker-keys.ts):
  // crypto with those keys is then served there, without the hop.
  registerWorkerKeys(dispatch, () => resolveWorkerKeys(session));
  // With JSPI the worker serves http_request and db_query itself, over this session (worker-session.ts).
  registerWorkerSession(dispatch, session);
  return dispatch;
}
