/**
 * A run's HostSession as plain data, so that the guest's worker serves `http_request` and
 * `db_query` itself while the guest is suspended (JSPI, see runtime/worker.ts): no thread hop per
 * call, each way a wake-up of tens of microseconds on a VM (issue 15's goal for bridged calls).
 *
 * The main thread makes the wire form once per run (createDispatch registers how); the worker
 * turns it back into a HostSession and runs the same functions through the same dispatch
 * (dispatch.ts): the same request checks, permission checks, egress policy (a snapshot of this
 * thread's, applied in the worker), limits, deadline and answers. What stays on the main thread:
 * - a denial's audit row and metric (`session.onDenied`): the worker reports each one in a message;
 * - the full log line of an `upstream_error` (`session.logger`): reported the same way;
 * - a datasource the module names through a glob pattern, and every file function: those calls
 *   are bridged as before (the worker knows only the datasources sent here).
 *
 * The datasources sent are the plain names (no glob characters) in the datasource part of the
 * module's `database:read` / `database:write` patterns whose variable holds text: the URLs go to
 * the worker's heap with the run, never to the guest, a record or a log (as worker-keys.ts).
 */
import picomatch from 'picomatch';
import { type EgressSnapshot, egressSnapshot } from '../../egress/index.ts';
import type { Permission } from '../../modules/permissions.ts';
import type { BlobStore } from '../../storage/blob-store.ts';
import { HostCallError, type HostDispatch, type HostLimits, type HostSession } from './types.ts';

export interface WireSession {
  jobId: string;
  executionId: string;
  stepId: string;
  module: HostSession['module'];
  permissions: Permission[];
  limits: HostLimits;
  deadline: number;
  /** Datasource name -> connection URL, for the names the module's database patterns spell out. */
  datasources: Record<string, string>;
  egress: EgressSnapshot;
}

/** What the main thread does with the worker's reports of a run (its session's own callbacks). */
export interface WorkerSessionSide {
  wire(): WireSession;
  onDenied: HostSession['onDenied'];
  logger: HostSession['logger'];
}

/** A denial or a log line reported by the worker, as it travels. */
export type WorkerSessionReport =
  | { kind: 'denied'; denial: Parameters<HostSession['onDenied']>[0] }
  | { kind: 'log'; level: 'warn' | 'error'; obj: Record<string, unknown>; msg: string };

const MAX_DATASOURCES = 100;
const sides = new WeakMap<HostDispatch, WorkerSessionSide>();

/** The plain datasource names of a module's database permissions (createDispatch's session). */
function datasourceNames(permissions: readonly Permission[]): string[] {
  const names = new Set<string>();
  for (const p of permissions) {
    if ((p.type !== 'database:read' && p.type !== 'database:write') || p.resource_pattern === null) continue;
    const slash = p.resource_pattern.indexOf('/');
    if (slash < 0) continue; // a pattern without '/' names tables of any datasource: no name here
    const name = p.resource_pattern.slice(0, slash);
    if (name === '' || name.length > 128 || picomatch.scan(name).isGlob || name.includes('\\')) continue;
    names.add(name);
    if (names.size >= MAX_DATASOURCES) break;
  }
  return [...names];
}

/** Registers how a dispatch's session goes to a worker (createDispatch does, for its session). */
export function registerWorkerSession(dispatch: HostDispatch, session: HostSession): void {
  sides.set(dispatch, {
    wire() {
      const datasources: Record<string, string> = Object.create(null);
      for (const name of datasourceNames(session.permissions)) {
        const v = session.variable(name);
        if (typeof v === 'string' && v.trim() !== '') datasources[name] = v;
      }
      return {
        jobId: session.jobId,
        executionId: session.executionId,
        stepId: session.stepId,
        module: { ...session.module },
        permissions: session.permissions.map((p) => ({ ...p })),
        limits: { ...session.limits },
        deadline: session.deadline,
        datasources,
        egress: egressSnapshot(),
      };
    },
    onDenied: (d) => session.onDenied(d),
    logger: session.logger,
  });
}

/** The worker side of the run served by `dispatch` (none for a dispatch that did not register one). */
export function workerSessionOf(dispatch: HostDispatch | undefined): WorkerSessionSide | undefined {
  return dispatch === undefined ? undefined : sides.get(dispatch);
}

/** Hands a worker's report to the run's session (main thread); a report that fails is logged, never thrown. */
export function applyWorkerReport(side: WorkerSessionSide, r: WorkerSessionReport): void {
  try {
    if (r.kind === 'denied') side.onDenied(r.denial);
    else side.logger?.[r.level === 'warn' ? 'warn' : 'error'](r.obj, r.msg);
  } catch (err) {
    side.logger?.error({ err }, 'could not apply a host-call report of a WASM worker');
  }
}

const noFiles = (): never => {
  throw new HostCallError('unavailable', 'files are served by the main thread');
};
const NO_FILES: BlobStore = { kind: 'fs', put: noFiles, putStream: noFiles, get: noFiles, getStream: noFiles, stat: noFiles, delete: noFiles, list: noFiles };

/** The worker's HostSession for a run (worker thread): reports go back through `report`. */
export function sessionFromWire(w: WireSession, report: (r: WorkerSessionReport) => void): HostSession {
  const datasources = w.datasources;
  const plain = (obj: object): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = v instanceof Error ? { message: v.message, stack: v.stack, code: (v as { code?: unknown }).code } : v;
    return out;
  };
  return {
    jobId: w.jobId,
    executionId: w.executionId,
    stepId: w.stepId,
    module: w.module,
    permissions: w.permissions,
    blobs: NO_FILES,
    variable: (name) => (Object.hasOwn(datasources, name) ? datasources[name] : undefined),
    limits: w.limits,
    deadline: w.deadline,
    onDenied: (denial) => report({ kind: 'denied', denial }),
    logger: {
      warn: (obj, msg) => report({ kind: 'log', level: 'warn', obj: plain(obj), msg }),
      error: (obj, msg) => report({ kind: 'log', level: 'error', obj: plain(obj), msg }),
    },
  };
}

/** Whether the worker serves this call itself (else it is bridged): http_request always, db_query for a datasource it was sent. */
export function servedInWorker(w: WireSession, fn: string, request: Record<string, unknown>): boolean {
  if (fn === 'http_request') return true;
  if (fn === 'db_query') return typeof request.datasource === 'string' && Object.hasOwn(w.datasources, request.datasource);
  return false;
}
