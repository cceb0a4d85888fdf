/**
 * The keys a run's worker may use itself, so that `crypto` with `key_secret` (hmac_sha256, AES-GCM)
 * is served in the worker instead of a hop to the main thread and back (issue 15's goal for calls
 * served inside the worker; a hop costs a thread wake-up each way).
 *
 * Resolved on the main thread once per run, from the module's own `secret:use` permissions: only
 * a pattern that is a plain name (no glob characters) names a secret here, and only if that name
 * passes the same `checkPermission` the main thread's crypto runs and the variable is non-empty
 * text. Everything else (a glob pattern, a name the module was not granted, a missing or empty
 * variable) is not sent, so the worker forwards the call and the main thread answers it exactly as
 * before: the denial audited and counted, `not_found`, `bad_request`.
 *
 * The values go to the worker with the run (RunMessage.keys) and stay in its heap: never in guest
 * memory (only the MAC or the ciphertext is), never in the call record (it names the key), never
 * in a log or a run record.
 */
import picomatch from 'picomatch';
import { PermissionDenied, checkPermission } from '../../modules/permissions.ts';
import type { HostDispatch, HostSession } from './types.ts';

/** Most keys sent with one run (a module has at most 100 permissions). */
const MAX_KEYS = 100;
/** Longest key name (crypto refuses longer names). */
const MAX_NAME = 200;

const resolvers = new WeakMap<HostDispatch, () => Record<string, string> | undefined>();

/** The secrets a session's module may name as crypto keys by a plain name: name -> value (undefined: none). */
export function resolveWorkerKeys(session: HostSession): Record<string, string> | undefined {
  let keys: Record<string, string> | undefined;
  let n = 0;
  for (const p of session.permissions) {
    if (p.type !== 'secret:use' || p.resource_pattern === null) continue;
    const name = p.resource_pattern;
    if (name === '' || name.length > MAX_NAME || picomatch.scan(name).isGlob || name.includes('\\')) continue;
    if (keys !== undefined && Object.hasOwn(keys, name)) continue;
    try {
      if (checkPermission(session.permissions, 'secret:use', name) !== name) continue;
    } catch (err) {
      if (err instanceof PermissionDenied) continue;
      throw err;
    }
    const value = session.variable(name);
    if (typeof value !== 'string' || value === '') continue;
    keys ??= Object.create(null) as Record<string, string>;
    keys[name] = value;
    if (++n >= MAX_KEYS) break;
  }
  return keys;
}

/** Registers how a dispatch's run resolves its worker keys (createDispatch does, for its session). */
export function registerWorkerKeys(dispatch: HostDispatch, resolve: () => Record<string, string> | undefined): void {
  resolvers.set(dispatch, resolve);
}

/** The keys to send with a run served by `dispatch` (none for a dispatch that did not register any). */
export function workerKeysOf(dispatch: HostDispatch | undefined): Record<string, string> | undefined {
  if (dispatch === undefined) return undefined;
  return resolvers.get(dispatch)?.();
}
