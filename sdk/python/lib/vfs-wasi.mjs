// The WASI that CPython sees while the module is pre-initialised at build time (lib/snapshot.mjs):
// one preopened directory "/", read-only, made of mounts (a folder on disk or a map of files):
//   /usr/local/lib/python3.11  the standard library (the engine's cache)
//   /vecron                     the SDK's Python files + _build.json (what to import)
//   /app                        the project's source folder
// Deterministic, so the same project gives the same bytes: sorted directory listings, one fixed
// time for every file and for the clock, zeros from random_get, inode numbers from the path.
// Nothing is written (EROFS). At run time the module has none of this: vecron's WASI has no
// preopened directories, and the SDK has closed the import system by then.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const E = { SUCCESS: 0, ACCES: 2, BADF: 8, EXIST: 20, INVAL: 28, ISDIR: 31, NOENT: 44, NOSYS: 52, NOTDIR: 54, ROFS: 69, SPIPE: 70 };
const FILETYPE = { CHAR: 2, DIR: 3, FILE: 4 };
/** 2001-09-09: any fixed time works; 0 would look like "no time" to some code. */
const FIXED_NS = 1_000_000_000n * 1_000_000_000n;
const O_CREAT = 1;
const O_DIRECTORY = 2;
const O_EXCL = 4;
const O_TRUNC = 8;

const inode = (path) => createHash('sha256').update(path).digest().readBigUInt64LE(0) & 0xffffffffffffn;

export class BuildFs {
  /** mounts: { '/app': '/abs/dir' | { 'file.py': Buffer|string } } */
  constructor(mounts) {
    this.mounts = Object.entries(mounts).map(([at, source]) => ({ at: at.replace(/\/+$/, ''), source }));
  }

  /** { type: 'dir', names } | { type: 'file', bytes } | null for a normalised absolute path. */
  lookup(path) {
    for (const m of this.mounts) {
      if (path === m.at || path.startsWith(`${m.at}/`)) {
        const rest = path.slice(m.at.length + 1);
        if (typeof m.source === 'string') return diskEntry(rest ? join(m.source, rest) : m.source);
        if (rest === '') return { type: 'dir', names: Object.keys(m.source).sort() };
        const v = m.source[rest];
        return v === undefined ? null : { type: 'file', bytes: Buffer.from(v) };
      }
    }
    // A folder above the mounts (/, /usr, /usr/local, ...): its children are the next parts.
    const prefix = path === '/' ? '/' : `${path}/`;
    const names = new Set();
    for (const m of this.mounts) if (m.at.startsWith(prefix)) names.add(m.at.slice(prefix.length).split('/')[0]);
    return names.size ? { type: 'dir', names: [...names].sort() } : null;
  }
}

function diskEntry(p) {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st) return null;
  if (st.isDirectory()) return { type: 'dir', names: readdirSync(p).sort() };
  if (st.isFile()) return { type: 'file', disk: p, size: st.size };
  return null;
}

function normalise(base, rel) {
  const parts = (rel.startsWith('/') ? rel : `${base}/${rel}`).split('/');
  const out = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') out.pop();
    else out.push(p);
  }
  return `/${out.join('/')}`;
}

/**
 * The wasi_snapshot_preview1 functions over `fs`; memory is read through memoryRef.memory.
 * stdout and stderr are collected in `out.stdout` / `out.stderr`.
 */
export function buildWasi(fs, memoryRef, out) {
  const fds = new Map([[3, { path: '/', type: 'dir', preopen: true }]]);
  let nextFd = 4;
  const mem = () => new DataView(memoryRef.memory.buffer);
  const bytes = () => new Uint8Array(memoryRef.memory.buffer);
  const str = (ptr, len) => Buffer.from(bytes().subarray(ptr, ptr + len)).toString('utf8');
  const content = (f) => {
    if (!f.bytes) f.bytes = readFileSync(f.disk);
    return f.bytes;
  };
  const writeStat = (ptr, path, entry) => {
    const v = mem();
    const size = entry.type === 'file' ? BigInt(entry.bytes ? entry.bytes.length : entry.size) : 4096n;
    v.setBigUint64(ptr, 1n, true); // dev
    v.setBigUint64(ptr + 8, inode(path), true);
    v.setUint8(ptr + 16, entry.type === 'dir' ? FILETYPE.DIR : FILETYPE.FILE);
    v.setBigUint64(ptr + 24, 1n, true); // nlink
    v.setBigUint64(ptr + 32, size, true);
    for (const o of [40, 48, 56]) v.setBigUint64(ptr + o, FIXED_NS, true);
  };
  const iovecs = (iovs, n) => {
    const v = mem();
    return Array.from({ length: n }, (_, i) => [v.getUint32(iovs + i * 8, true), v.getUint32(iovs + i * 8 + 4, true)]);
  };
  const readInto = (data, pos, iovs, n) => {
    let total = 0;
    for (const [p, l] of iovecs(iovs, n)) {
      const chunk = data.subarray(pos + total, Math.min(data.length, pos + total + l));
      bytes().set(chunk, p);
      total += chunk.length;
      if (chunk.length < l) break;
    }
    return total;
  };

  const wasi = {
    args_sizes_get: (n, size) => (mem().setUint32(n, 0, true), mem().setUint32(size, 0, true), E.SUCCESS),
    args_get: () => E.SUCCESS,
    environ_sizes_get: (n, size) => (mem().setUint32(n, 0, true), mem().setUint32(size, 0, true), E.SUCCESS),
    environ_get: () => E.SUCCESS,
    clock_res_get: (_id, ptr) => (mem().setBigUint64(ptr, 1000n, true), E.SUCCESS),
    clock_time_get: (_id, _precision, ptr) => (mem().setBigUint64(ptr, FIXED_NS, true), E.SUCCESS),
    random_get: (ptr, len) => (bytes().fill(0, ptr, ptr + len), E.SUCCESS),
    sched_yield: () => E.SUCCESS,
    proc_exit: (code) => {
      throw new Error(`CPython exited with code ${code} while the module was built: ${out.stderr.join('').trim()}`);
    },
    fd_prestat_get: (fd, ptr) => {
      const f = fds.get(fd);
      if (!f?.preopen) return E.BADF;
      mem().setUint8(ptr, 0);
      mem().setUint32(ptr + 4, 1, true);
      return E.SUCCESS;
    },
    fd_prestat_dir_name: (fd, ptr, len) => {
      if (!fds.get(fd)?.preopen) return E.BADF;
      if (len >= 1) bytes()[ptr] = 0x2f;
      return E.SUCCESS;
    },
    fd_fdstat_get: (fd, ptr) => {
      const f = fd <= 2 ? { type: 'char' } : fds.get(fd);
      if (!f) return E.BADF;
      const v = mem();
      v.setUint8(ptr, f.type === 'dir' ? FILETYPE.DIR : f.type === 'char' ? FILETYPE.CHAR : FILETYPE.FILE);
      v.setUint16(ptr + 2, 0, true);
      // Character devices without seek/tell rights: isatty() says no for them either way.
      const rights = f.type === 'char' ? 0x1ffffffn & ~0x24n : 0x1ffffffn;
      v.setBigUint64(ptr + 8, rights, true);
      v.setBigUint64(ptr + 16, 0x1ffffffn, true);
      return E.SUCCESS;
    },
    fd_fdstat_set_flags: () => E.SUCCESS,
    fd_filestat_get: (fd, ptr) => {
      if (fd <= 2) {
        mem().setUint8(ptr + 16, FILETYPE.CHAR);
        return E.SUCCESS;
      }
      const f = fds.get(fd);
      if (!f) return E.BADF;
      writeStat(ptr, f.path, f.entry ?? fs.lookup(f.path));
      return E.SUCCESS;
    },
    path_filestat_get: (fd, _flags, p, len, ptr) => {
      const f = fds.get(fd);
      if (!f || f.type !== 'dir') return E.BADF;
      const path = normalise(f.path, str(p, len));
      const entry = fs.lookup(path);
      if (!entry) return E.NOENT;
      writeStat(ptr, path, entry);
      return E.SUCCESS;
    },
    path_open: (fd, _dirflags, p, len, oflags, _rb, _ri, _fdflags, outPtr) => {
      const f = fds.get(fd);
      if (!f || f.type !== 'dir') return E.BADF;
      const path = normalise(f.path, str(p, len));
      const entry = fs.lookup(path);
      if (oflags & (O_CREAT | O_TRUNC | O_EXCL)) return entry && oflags & O_EXCL ? E.EXIST : E.ROFS;
      if (!entry) return E.NOENT;
      if (oflags & O_DIRECTORY && entry.type !== 'dir') return E.NOTDIR;
      const n = nextFd++;
      fds.set(n, { path, type: entry.type, entry, pos: 0 });
      mem().setUint32(outPtr, n, true);
      return E.SUCCESS;
    },
    fd_close: (fd) => (fds.delete(fd) ? E.SUCCESS : fd <= 2 ? E.SUCCESS : E.BADF),
    fd_read: (fd, iovs, n, nread) => {
      if (fd === 0) return mem().setUint32(nread, 0, true), E.SUCCESS;
      const f = fds.get(fd);
      if (!f) return E.BADF;
      if (f.type === 'dir') return E.ISDIR;
      const got = readInto(content(f.entry), f.pos, iovs, n);
      f.pos += got;
      mem().setUint32(nread, got, true);
      return E.SUCCESS;
    },
    fd_pread: (fd, iovs, n, offset, nread) => {
      const f = fds.get(fd);
      if (!f) return E.BADF;
      if (f.type === 'dir') return E.ISDIR;
      mem().setUint32(nread, readInto(content(f.entry), Number(offset), iovs, n), true);
      return E.SUCCESS;
    },
    fd_seek: (fd, offset, whence, outPtr) => {
      const f = fds.get(fd);
      if (!f) return fd <= 2 ? E.SPIPE : E.BADF;
      if (f.type === 'dir') return E.ISDIR;
      const size = content(f.entry).length;
      const base = whence === 0 ? 0 : whence === 1 ? f.pos : size;
      const pos = base + Number(offset);
      if (pos < 0) return E.INVAL;
      f.pos = pos;
      mem().setBigUint64(outPtr, BigInt(pos), true);
      return E.SUCCESS;
    },
    fd_tell: (fd, outPtr) => {
      const f = fds.get(fd);
      if (!f) return fd <= 2 ? E.SPIPE : E.BADF;
      mem().setBigUint64(outPtr, BigInt(f.pos ?? 0), true);
      return E.SUCCESS;
    },
    fd_readdir: (fd, buf, bufLen, cookie, usedPtr) => {
      const f = fds.get(fd);
      if (!f) return E.BADF;
      if (f.type !== 'dir') return E.NOTDIR;
      const names = ['.', '..', ...fs.lookup(f.path).names];
      const chunks = [];
      for (let i = Number(cookie); i < names.length; i++) {
        const name = Buffer.from(names[i]);
        const child = i < 2 ? { type: 'dir' } : fs.lookup(`${f.path === '/' ? '' : f.path}/${names[i]}`);
        const head = Buffer.alloc(24);
        head.writeBigUInt64LE(BigInt(i + 1), 0);
        head.writeBigUInt64LE(inode(`${f.path}/${names[i]}`), 8);
        head.writeUInt32LE(name.length, 16);
        head.writeUInt8(child?.type === 'dir' ? FILETYPE.DIR : FILETYPE.FILE, 20);
        chunks.push(head, name);
      }
      const all = Buffer.concat(chunks);
      const n = Math.min(all.length, bufLen);
      bytes().set(all.subarray(0, n), buf);
      mem().setUint32(usedPtr, n, true);
      return E.SUCCESS;
    },
    fd_write: (fd, iovs, n, written) => {
      let total = 0;
      const parts = [];
      for (const [p, l] of iovecs(iovs, n)) {
        parts.push(Buffer.from(bytes().subarray(p, p + l)));
        total += l;
      }
      if (fd === 1) out.stdout.push(Buffer.concat(parts).toString('utf8'));
      else if (fd === 2) out.stderr.push(Buffer.concat(parts).toString('utf8'));
      else return E.BADF;
      mem().setUint32(written, total, true);
      return E.SUCCESS;
    },
    path_readlink: () => E.INVAL,
  };
  return new Proxy(wasi, {
    get: (target, name) => target[name] ?? (/^(path_|fd_)/.test(String(name)) ? () => E.ROFS : () => E.NOSYS),
  });
}
