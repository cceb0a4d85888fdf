/**
 * A host-call session and context for unit tests of main-thread host functions: a small real
 * implementation of HostCallContext over checkPermission (denials are reported to `denials` and
 * thrown as HostCallError('permission_denied')), without the runtime. The dispatch in
 * src/wasm/host serves the same contract for real runs.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { PermissionDenied, checkPermission, type Permission } from '../../../src/modules/permissions.ts';
import type { WasmRunResult } from '../../../src/wasm/runtime/index.ts';
import type { BlobStore } from '../../../src/storage/blob-store.ts';
import {
  HostCallError,
  errorResponse,
  type HostAnswer,
  type HostCallContext,
  type HostDispatch,
  type HostFunction,
  type HostLimits,
  type HostSession,
} from '../../../src/wasm/host/types.ts';

export const TEST_LIMITS: HostLimits = { maxRequestBytes: 1 << 20, maxResponseBytes: 1 << 20, maxRows: 1000, maxCallMs: 10_000 };

export interface Denial {
  function: string;
  permission: string;
  resource: string;
  reason: string;
}

export interface TestSession extends HostSession {
  denials: Denial[];
}

export function testSession(opts: {
  permissions?: Permission[];
  variables?: Record<string, unknown>;
  limits?: Partial<HostLimits>;
  deadline?: number;
  blobs?: BlobStore;
}): TestSession {
  const denials: Denial[] = [];
  const vars = opts.variables ?? {};
  return {
    jobId: 'job-1',
    executionId: 'exec-1',
    stepId: 'step-1',
    module: { id: 'mod-1', name: 'test-module', version: '1.0.0' },
    permissions: opts.permissions ?? [],
    blobs: opts.blobs ?? (null as unknown as BlobStore),
    variable: (name) => vars[name],
    limits: { ...TEST_LIMITS, ...opts.limits },
    deadline: opts.deadline ?? Date.now() + 60_000,
    onDenied: (d) => denials.push(d),
    denials,
  };
}

export interface TestContext extends HostCallContext {
  /** What the call set as its target (null if it did not). */
  readonly targetValue: string | null;
}

/** A call context for `fn` in `session`; the signal defaults to one that never fires. */
export function testContext(session: HostSession, fn: string, signal: AbortSignal = new AbortController().signal): TestContext {
  let target: string | null = null;
  return {
    session,
    signal,
    get targetValue() {
      return target;
    },
    target(t) {
      target = t;
    },
    require(permission, resource) {
      try {
        return checkPermission(session.permissions, permission, resource);
      } catch (err) {
        if (!(err instanceof PermissionDenied)) throw err;
        const ofType = session.permissions.some((p) => p.type === permission);
        const reason = ofType ? 'no resource pattern of the module matches' : 'the module has no such permission';
        session.onDenied({ function: fn, permission, resource: err.resource, reason });
        throw new HostCallError('permission_denied', `permission denied: ${permission} for '${err.resource}' (${reason})`, permission);
      }
    },
  };
}

/** The HostCallError a call failed with (fails the test if it succeeded or threw something else). */
export async function hostError(p: Promise<unknown>): Promise<HostCallError> {
  try {
    const r = await p;
    throw new Error(`expected a HostCallError, got ${JSON.stringify(r).slice(0, 300)}`);
  } catch (err) {
    if (err instanceof HostCallError) return err;
    throw err;
  }
}

/**
 * A HostDispatch over `functions` with testContext, for runs through the real runtime: refusals and
 * failures become error answers as the contract says (the real dispatch is in src/wasm/host).
 */
export function testDispatch(session: HostSession, functions: HostFunction[]): HostDispatch {
  const byName = new Map(functions.map((f) => [f.name as string, f]));
  return async (fn, request, signal): Promise<HostAnswer> => {
    const f = byName.get(fn);
    const ctx = testContext(session, fn, signal);
    if (!f) return { response: errorResponse('bad_request', `no ${fn} here`), target: null, outcome: 'bad_request' };
    try {
      const response = await f.call(request as Record<string, unknown>, ctx);
      return { response, target: ctx.targetValue, outcome: 'ok' };
    } catch (err) {
      if (!(err instanceof HostCallError)) throw err;
      const a: HostAnswer = { response: errorResponse(err.code, err.message), target: ctx.targetValue, outcome: err.code };
      if (err.permission) a.permission = err.permission;
      return a;
    }
  };
}

/** A run's output, or the test fails with the run's error. */
export function output(r: WasmRunResult): any {
  if (!r.ok) assert.fail(`the run failed: ${r.error.code}: ${r.error.message}`);
  return r.output;
}

/**
 * A loopback HTTP upstream for guests' http_request: `GET /hang` is never answered, any other
 * request gets `respond(url)` as JSON; `closed()` counts the responses closed (answered or aborted).
 */
export async function startUpstream(respond: (url: string) => unknown): Promise<{ base: string; closed(): number; close(): Promise<void> }> {
  let closed = 0;
  const server = createServer((req, res) => {
    res.on('close', () => closed++);
    if (req.url === '/hang') return; // never answers
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(respond(req.url ?? '/')));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    base: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    closed: () => closed,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
