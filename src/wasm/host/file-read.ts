/**
 * file_read `{"path"}` -> `{"path", "content", "encoding": "utf8"|"base64", "size"}`: a file of the
 * job's area (or of `shared/` when a pattern names it), under `file:read`. The size is checked
 * before anything is read, and the read stops at the limit should the file grow meanwhile.
 */
import { checkGuestPath, storeKey } from './file-area.ts';
import { storeCall } from './file-store-errors.ts';
import { HostCallError, type HostFunction } from './types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What the content costs in the answer's JSON at least: base64 grows it by 4/3. */
const tooLarge = (size: number, limit: number) =>
  new HostCallError('too_large', `the file is ${size} bytes; an answer may carry at most ${limit} bytes (VECRON_WASM_HOST_MAX_RESPONSE_BYTES)`);

export const fileRead: HostFunction = {
  name: 'file_read',
  async call(request, ctx) {
    const path = checkGuestPath(request.path);
    ctx.target(path);
    ctx.require('file:read', path);
    const { blobs, jobId, limits } = ctx.session;
    const key = storeKey(jobId, path);
    const info = await storeCall(ctx, 'file_read', path, () => blobs.stat(key));
    if (!info) throw new HostCallError('not_found', `no file '${path}'`);
    if (info.size > limits.maxResponseBytes) throw tooLarge(info.size, limits.maxResponseBytes);

    const bytes = await storeCall(ctx, 'file_read', path, async () => {
      const stream = await blobs.getStream(key);
      const abort = () => stream.destroy(ctx.signal.reason);
      ctx.signal.addEventListener('abort', abort, { once: true });
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of stream) {
          size += chunk.length;
          if (size > limits.maxResponseBytes) {
            stream.destroy();
            throw tooLarge(size, limits.maxResponseBytes);
          }
          chunks.push(chunk);
        }
      } finally {
        ctx.signal.removeEventListener('abort', abort);
      }
      return Buffer.concat(chunks, size);
    });
    let content: string;
    let encoding: 'utf8' | 'base64';
    try {
      content = utf8.decode(bytes);
      encoding = 'utf8';
    } catch {
      content = bytes.toString('base64');
      encoding = 'base64';
    }
    return { path, content, encoding, size: bytes.length };
  },
};
