/** A HostSession over a real blob store for the host-function tests, recording its denials. */
import { randomUUID } from 'node:crypto';
import type { Permission, PermissionType } from '../../src/modules/permissions.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { createHostDispatch } from '../../src/wasm/host/index.ts';
import type { HostAnswer, HostLimits, HostSession } from '../../src/wasm/host/types.ts';

export const TEST_LIMITS: HostLimits = { maxRequestBytes: 1 << 20, maxResponseBytes: 1 << 20, maxRows: 1000, maxCallMs: 10_000 };

export type Denial = { function: string; permission: PermissionType; resource: string; reason: string };

export function testSession(opts: {
  blobs: BlobStore;
  permissions: Permission[];
  jobId?: string;
  variables?: Record<string, unknown>;
  limits?: Partial<HostLimits>;
  deadline?: number;
}): HostSession & { denials: Denial[]; errors: unknown[] } {
  const denials: Denial[] = [];
  const errors: unknown[] = [];
  return {
    jobId: opts.jobId ?? randomUUID(),
    executionId: randomUUID(),
    stepId: 'step',
    module: { id: randomUUID(), name: 'test-module', version: '1.0.0' },
    permissions: opts.permissions,
    blobs: opts.blobs,
    variable: (name) => opts.variables?.[name],
    limits: { ...TEST_LIMITS, ...opts.limits },
    deadline: opts.deadline ?? Date.now() + 60_000,
    onDenied: (d) => denials.push(d),
    logger: { warn: () => {}, error: (obj) => errors.push(obj) },
    denials,
    errors,
  };
}

/** Calls one host function through the dispatch, as the runtime's bridge would. */
export function caller(session: HostSession): (fn: string, request: unknown, signal?: AbortSignal) => Promise<HostAnswer> {
  const dispatch = createHostDispatch(session);
  return (fn, request, signal = new AbortController().signal) => dispatch(fn, request, signal);
}

export const perm = (type: PermissionType, resource_pattern: string | null = null): Permission => ({ type, resource_pattern });
