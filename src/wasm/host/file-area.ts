/**
 * Where a guest's file paths live in the blob store (docs/abi.md, "Files").
 *
 * A guest path is relative and always names a file of the job's own area: `reports/out.csv` is the
 * key `jobs/{job_id}/reports/out.csv`. The one exception is `shared/...`, the cross-job area an
 * admin fills: its guest path is its key, and only a permission whose pattern starts with `shared/`
 * reaches it (a catch-all like `**` or a null pattern does not), so granting "all my files" never
 * grants the files of every job.
 *
 * Refused as `bad_request` (the path is malformed, whatever the permissions): empty, longer than
 * 512 characters, absolute, `.`/`..`/empty segments, backslashes, NUL and other control characters,
 * a first segment `jobs` (other jobs' areas are not reachable; naming one is a mistake, not a
 * subfolder), and names ending in `.tmp` (the directory store's in-flight writes).
 */
import type { Permission, PermissionType } from '../../modules/permissions.ts';
import { HostCallError } from './types.ts';

export const SHARED_AREA = 'shared/';
const MAX_PATH = 512;

/** The store key of the job's own area. */
export const jobArea = (jobId: string): string => `jobs/${jobId}/`;

function problem(value: string): string | null {
  if (value.length > MAX_PATH) return `must be at most ${MAX_PATH} characters`;
  if (value.startsWith('/')) return 'must be relative to the job\'s file area (no leading "/")';
  if (value.includes('\\')) return 'must use "/" as separator (no backslashes)';
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'must not contain NUL or other control characters';
  const segments = value.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return 'must not contain "." or ".." segments';
  if (segments[0] === 'jobs') return 'must not start with "jobs/": other jobs\' areas are not reachable; paths are relative to this job\'s area';
  return null;
}

/** Checks a guest file path; returns it unchanged (it is already canonical) or throws bad_request naming the field. */
export function checkGuestPath(value: unknown, field = 'path'): string {
  if (typeof value !== 'string' || value === '') throw new HostCallError('bad_request', `${field} must be a non-empty string such as "reports/out.csv"`);
  const p = problem(value);
  if (p) throw new HostCallError('bad_request', `${field} ${p}; got ${JSON.stringify(value.slice(0, 100))}`);
  if (value.split('/').some((s) => s === ''))
    throw new HostCallError('bad_request', `${field} must not contain empty segments ("//" or a trailing "/"); got ${JSON.stringify(value)}`);
  if (value.endsWith('.tmp')) throw new HostCallError('bad_request', `${field} must not end in ".tmp" (reserved for writes in progress)`);
  if (value === 'shared') throw new HostCallError('bad_request', `${field} "shared" is the shared area, not a file`);
  return value;
}

/** Checks a listing prefix: '' (the whole area) or the start of a guest path (a trailing "/" is allowed). */
export function checkGuestPrefix(value: unknown, field = 'prefix'): string {
  if (value === undefined || value === null || value === '') return '';
  if (typeof value !== 'string') throw new HostCallError('bad_request', `${field} must be a string such as "reports/" (or "" for every file)`);
  const p = problem(value);
  if (p) throw new HostCallError('bad_request', `${field} ${p}; got ${JSON.stringify(value.slice(0, 100))}`);
  if (
    value
      .slice(0, -1)
      .split('/')
      .some((s) => s === '')
  )
    throw new HostCallError('bad_request', `${field} must not contain empty segments; got ${JSON.stringify(value)}`);
  return value;
}

export const isShared = (guestPath: string): boolean => guestPath.startsWith(SHARED_AREA);

/** The blob-store key of a checked guest path (or prefix). */
export const storeKey = (jobId: string, guestPath: string): string => (isShared(guestPath) ? guestPath : jobArea(jobId) + guestPath);

/** The guest path of a store key under `storeKey(jobId, prefix)`, as the guest would write it. */
export const guestPathOf = (jobId: string, key: string): string => (key.startsWith(jobArea(jobId)) ? key.slice(jobArea(jobId).length) : key);

/**
 * The permissions that may grant `permission` on `resource`: for a file in the shared area only
 * those whose pattern names it. Every other resource: all of them (checkPermission decides).
 */
export function applicableGrants(granted: readonly Permission[], permission: PermissionType, resource: string): readonly Permission[] {
  if ((permission !== 'file:read' && permission !== 'file:write') || !isShared(resource)) return granted;
  return granted.filter((p) => p.type !== permission || p.resource_pattern?.startsWith(SHARED_AREA) === true);
}
