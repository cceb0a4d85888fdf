/**
 * file_write `{"path", "content", "encoding"?: "utf8"|"base64"}` -> `{"path", "size", "sha256"}`:
 * writes (or replaces) a file of the job's area, or of `shared/` when a pattern names it, under
 * `file:write`. The write is whole or not at all (both stores); its size is bounded by the request
 * size limit, since the content travels in the request.
 */
import { createHash } from 'node:crypto';
import { checkGuestPath, storeKey } from './file-area.ts';
import { storeCall } from './file-store-errors.ts';
import { HostCallError, type HostFunction } from './types.ts';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The bytes of `content` in `encoding`; bad_request naming the field otherwise. */
export function decodeContent(content: unknown, encoding: unknown, field = 'content'): Buffer {
  if (typeof content !== 'string') throw new HostCallError('bad_request', `${field} must be a string (UTF-8 text, or base64 with "encoding": "base64")`);
  if (encoding === undefined || encoding === null || encoding === 'utf8') return Buffer.from(content, 'utf8');
  if (encoding !== 'base64') throw new HostCallError('bad_request', `encoding must be "utf8" or "base64"; got ${JSON.stringify(encoding)}`);
  if (!BASE64.test(content)) throw new HostCallError('bad_request', `${field} is not valid base64 (standard alphabet, padded)`);
  return Buffer.from(content, 'base64');
}

export const fileWrite: HostFunction = {
  name: 'file_write',
  async call(request, ctx) {
    const path = checkGuestPath(request.path);
    ctx.target(path);
    const bytes = decodeContent(request.content, request.encoding);
    ctx.require('file:write', path);
    const { blobs, jobId } = ctx.session;
    const info = await storeCall(ctx, 'file_write', path, () => blobs.put(storeKey(jobId, path), bytes));
    return { path, size: info.size, sha256: createHash('sha256').update(bytes).digest('hex') };
  },
};
