/**
 * What a failure of the blob store looks like to a guest: `upstream_error` with the operation and
 * the guest's own path, never the host's directory, bucket or credentials (those go to the step log).
 */
import { HostCallError, type HostCallContext } from './types.ts';

/** Settles with the signal's reason when it aborts: the store's own operations take no signal. */
function untilAborted(signal: AbortSignal): { promise: Promise<never>; done(): void } {
  let onAbort = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason ?? new Error('aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, done: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * Runs one store operation for `fn` on `guestPath`; a store failure becomes `upstream_error`. A
 * timeout or cancel ends the call at once; a write still under way then finishes or fails on its
 * own (writes are atomic in both stores, so no half file is left).
 */
export async function storeCall<T>(ctx: HostCallContext, fn: string, guestPath: string, op: () => Promise<T>): Promise<T> {
  const abort = untilAborted(ctx.signal);
  try {
    const work = op();
    work.catch(() => {}); // settles after an abort too: nobody waits for it then
    return await Promise.race([work, abort.promise]);
  } catch (err) {
    if (err instanceof HostCallError) throw err;
    if (ctx.signal.aborted) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'not_found') throw new HostCallError('not_found', `no file '${guestPath}'`);
    // The directory store: a file where a folder is needed (`a` exists, writing `a/b`), or the reverse.
    if (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST') {
      throw new HostCallError('bad_request', `'${guestPath}' clashes with an existing file or folder of the same name`);
    }
    ctx.session.logger?.error({ err, function: fn, path: guestPath }, 'file store operation failed');
    const why = code === 'unavailable' ? 'the file store is unavailable or full' : 'the file store failed';
    throw new HostCallError('upstream_error', `${fn} '${guestPath}': ${why} (the step log has the details)`);
  } finally {
    abort.done();
  }
}
