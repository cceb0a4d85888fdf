/**
 * file_list `{"prefix"}` -> `{"files": [{"path", "size", "modified_at"}], "truncated"}`: the files
 * under a prefix of the job's area (or of `shared/`), as the guest writes their paths, in lexical
 * order, only those the module may read (`file:read`), at most MAX_LISTED. A module without any
 * `file:read` that could apply is refused (a denial); files it may not read are left out silently.
 */
import { checkPermission } from '../../modules/permissions.ts';
import { applicableGrants, checkGuestPrefix, guestPathOf, isShared, storeKey } from './file-area.ts';
import { storeCall } from './file-store-errors.ts';
import type { HostFunction } from './types.ts';

/** Most entries one answer lists (`truncated: true` beyond). */
export const MAX_LISTED = 1000;

export const fileList: HostFunction = {
  name: 'file_list',
  async call(request, ctx) {
    const prefix = checkGuestPrefix(request.prefix);
    ctx.target(prefix === '' ? '(all files)' : prefix);
    const { blobs, jobId, permissions } = ctx.session;
    // Which grants could apply to files under this prefix (shared/ needs a pattern naming it).
    const probe = isShared(prefix) ? prefix : 'x';
    const grants = applicableGrants(permissions, 'file:read', probe).filter((p) => p.type === 'file:read');
    if (grants.length === 0) ctx.require('file:read', prefix === '' ? '(all files)' : prefix); // throws: reported and refused
    const readable = (path: string): boolean => {
      try {
        checkPermission(applicableGrants(grants, 'file:read', path), 'file:read', path);
        return true;
      } catch {
        return false;
      }
    };
    const infos = await storeCall(ctx, 'file_list', prefix, () => blobs.list(storeKey(jobId, prefix)));
    const files: { path: string; size: number; modified_at: string }[] = [];
    let truncated = false;
    for (const info of infos) {
      const path = guestPathOf(jobId, info.key);
      // A listing of the job's area never shows the shared area and vice versa (storeKey keeps them apart).
      if (!readable(path)) continue;
      if (files.length === MAX_LISTED) {
        truncated = true;
        break;
      }
      files.push({ path, size: info.size, modified_at: info.modifiedAt.toISOString() });
    }
    return { files, truncated };
  },
};
