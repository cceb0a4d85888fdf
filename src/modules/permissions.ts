/**
 * Module permissions: deny by default. A module may use a privileged host function (HTTP, database,
 * files, network) only for the resources its permissions name. `checkPermission` is the one
 * function every privileged host function calls before it acts.
 */
import picomatch from 'picomatch';
import { VecronError, validationFailed, type Problem } from '../errors.ts';

export const PERMISSION_TYPES = [
  'http:read',
  'http:write',
  'database:read',
  'database:write',
  'file:read',
  'file:write',
  'network:external',
  'secret:use',
] as const;

export type PermissionType = (typeof PERMISSION_TYPES)[number];

export interface Permission {
  type: PermissionType;
  /**
   * Glob over the resource, matched whole: `*` within one path segment, `**` across segments,
   * `?` one character, `{a,b}` alternatives. Null: any resource of this type.
   * Resources: a URL for http (`https://api.example.com/**`), `datasource/table` for database
   * (`crm/customer_*`; a pattern without `/`, as stored before datasources existed, names tables of
   * any datasource), a blob path for file (`reports/**\/*.csv`), a host for network
   * (`*.example.com`), a secret variable's name for secret:use (`signing_key_*`).
   */
  resource_pattern: string | null;
}

const MAX_PATTERN = 500;
export const MAX_PERMISSIONS = 100;

/** Checks and canonicalises a permission list from an API body; reports every problem with its path. */
export function parsePermissions(input: unknown, path = 'permissions'): Permission[] {
  const problems: Problem[] = [];
  if (!Array.isArray(input)) throw validationFailed([{ path, message: 'must be an array of {type, resource_pattern}' }], 'permissions');
  if (input.length > MAX_PERMISSIONS) problems.push({ path, message: `at most ${MAX_PERMISSIONS} permissions per module` });
  const out: Permission[] = [];
  input.forEach((p: any, i) => {
    const at = `${path}[${i}]`;
    if (p === null || typeof p !== 'object' || Array.isArray(p)) {
      problems.push({ path: at, message: 'must be an object {type, resource_pattern}' });
      return;
    }
    for (const k of Object.keys(p)) {
      if (k !== 'type' && k !== 'resource_pattern') problems.push({ path: `${at}.${k}`, message: 'is not a permission property (type, resource_pattern)' });
    }
    if (!PERMISSION_TYPES.includes(p.type)) {
      problems.push({ path: `${at}.type`, message: `must be one of ${PERMISSION_TYPES.join(', ')}; got ${JSON.stringify(p.type)}` });
      return;
    }
    const pattern = p.resource_pattern ?? null;
    if (pattern !== null) {
      if (typeof pattern !== 'string' || pattern.trim() === '') {
        problems.push({ path: `${at}.resource_pattern`, message: 'must be a non-empty glob string, or null for any resource' });
        return;
      }
      if (pattern.length > MAX_PATTERN) {
        problems.push({ path: `${at}.resource_pattern`, message: `must be at most ${MAX_PATTERN} characters` });
        return;
      }
      try {
        picomatch.makeRe(pattern);
      } catch (err) {
        problems.push({ path: `${at}.resource_pattern`, message: `is not a valid glob: ${(err as Error).message}` });
        return;
      }
    }
    out.push({ type: p.type, resource_pattern: pattern });
  });
  if (problems.length) throw validationFailed(problems, 'permissions');
  // The same permission twice is kept once.
  const seen = new Set<string>();
  return out.filter((p) => {
    const k = `${p.type}\u0000${p.resource_pattern ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Raised by checkPermission; host functions report it to the guest and in the run's log. */
export class PermissionDenied extends VecronError {
  constructor(
    readonly permission: PermissionType,
    readonly resource: string,
    reason: string,
  ) {
    super('forbidden', `permission denied: ${permission} for '${resource}'${reason ? ` (${reason})` : ''}`, { permission, resource });
  }
}

/** URLs are compared in their parsed, normalised form, so `HTTPS://API.example.com/a/../b` is `https://api.example.com/b`. */
function canonicalResource(type: PermissionType, resource: string): string {
  if (type === 'http:read' || type === 'http:write') {
    let url: URL;
    try {
      url = new URL(resource);
    } catch {
      throw new PermissionDenied(type, resource, 'not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PermissionDenied(type, resource, 'only http and https URLs');
    if (url.username || url.password) throw new PermissionDenied(type, resource, 'credentials in the URL are not allowed');
    return url.href;
  }
  if (type === 'network:external') return resource.toLowerCase();
  return resource;
}

const matchers = new Map<string, (s: string) => boolean>();
function matcher(pattern: string): (s: string) => boolean {
  let m = matchers.get(pattern);
  if (!m) {
    m = picomatch(pattern, { dot: true });
    if (matchers.size > 10_000) matchers.clear();
    matchers.set(pattern, m);
  }
  return m;
}

/**
 * Allows `permission` on `resource` when one of `granted` has that type and either no pattern or a
 * pattern matching the resource; otherwise throws PermissionDenied. Returns the canonical resource
 * the caller should use (for URLs: the normalised URL that was checked, not the guest's spelling).
 */
export function checkPermission(granted: readonly Permission[], permission: PermissionType, resource: string): string {
  const canonical = canonicalResource(permission, resource);
  const database = permission === 'database:read' || permission === 'database:write';
  const slash = canonical.indexOf('/');
  for (const p of granted) {
    if (p.type !== permission) continue;
    if (p.resource_pattern === null) return canonical;
    // A database pattern without '/' (stored before datasources existed) matches the table part.
    const subject = database && slash >= 0 && !p.resource_pattern.includes('/') ? canonical.slice(slash + 1) : canonical;
    if (matcher(p.resource_pattern)(subject)) return canonical;
  }
  const ofType = granted.filter((p) => p.type === permission).length;
  throw new PermissionDenied(permission, canonical, ofType === 0 ? 'the module has no such permission' : 'no resource pattern of the module matches');
}
