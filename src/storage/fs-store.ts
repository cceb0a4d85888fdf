import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VecronError } from '../errors.ts';
import { markTransient } from './retry.ts';
import { checkKey, checkPrefix, type BlobInfo, type BlobStore } from './blob-store.ts';

/**
 * Blob store on a local directory. Writes go to a temporary file first and are renamed into place,
 * so a reader never sees half a file and a full disk leaves the old version intact.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;
  constructor(readonly root: string) {}

  private path(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  /** A blob is a regular file: a directory (a key that only prefixes others) is "missing" (ENOENT). */
  private async info(key: string): Promise<BlobInfo> {
    const s = await stat(this.path(key));
    if (!s.isFile()) throw Object.assign(new Error(`'${key}' is not a blob`), { code: 'ENOENT' });
    return { key, size: s.size, modifiedAt: s.mtime };
  }

  private async atomically(key: string, write: (tmp: string) => Promise<void>): Promise<BlobInfo> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    try {
      await write(tmp);
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw markTransient(new VecronError('unavailable', `blob store at ${this.root} is full: could not write '${key}'`));
      }
      throw err;
    }
    return this.info(key);
  }

  put(key: string, data: Buffer | Uint8Array): Promise<BlobInfo> {
    return this.atomically(key, (tmp) => writeFile(tmp, data));
  }

  putStream(key: string, body: Readable): Promise<BlobInfo> {
    return this.atomically(key, (tmp) => pipeline(body, createWriteStream(tmp)));
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      throw this.mapMissing(err, key);
    }
  }

  async getStream(key: string): Promise<Readable> {
    try {
      await this.info(key);
    } catch (err) {
      throw this.mapMissing(err, key);
    }
    return createReadStream(this.path(key));
  }

  async stat(key: string): Promise<BlobInfo | null> {
    try {
      return await this.info(key);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    checkPrefix(prefix);
    const out: BlobInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && !e.name.endsWith('.tmp')) {
          const key = relative(this.root, p).split(sep).join('/');
          if (key.startsWith(prefix)) {
            const s = await stat(p);
            out.push({ key, size: s.size, modifiedAt: s.mtime });
          }
        }
      }
    };
    // Walk only the deepest directory the prefix names completely.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(dirPart ? join(this.root, ...dirPart.split('/')) : this.root);
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  private mapMissing(err: unknown, key: string): unknown {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') {
      return new VecronError('not_found', `blob '${key}' does not exist`);
    }
    return err;
  }
}
