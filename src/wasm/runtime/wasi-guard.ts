/**
 * The guard around every WASI preview 1 function of the shim: before the shim runs, the sizes the
 * guest passed are checked (iovec counts, buffer and path lengths against the memory and the
 * bounds of HOST_BOUNDS) and the call is charged (HOST_COSTS: a base, plus the bytes it will read,
 * write or produce); after it, the interrupt flag and the deadline are checked again. A size past a
 * bound is the errno a POSIX system gives (EINVAL, EFAULT, ENAMETOOLONG), decided before anything
 * is decoded or allocated.
 */
import { HOST_BOUNDS, HOST_COSTS } from '../instrument/costs.ts';

const EFAULT = 21;
const EINVAL = 28;
const ENAMETOOLONG = 37;
/** Longest path accepted (there are no preopened directories: paths never name a file anyway). */
const MAX_PATH_BYTES = 4096;

export interface WasiGuardHooks {
  /** Charges fuel (throws fuel_exhausted / timeout). */
  charge(units: number): void;
  /** Throws when the run must stop (interrupt flag, deadline). */
  checkStop(): void;
  memorySize(): number;
  view(): DataView;
}

type Fn = (...a: any[]) => unknown;

/** Argument positions of the path lengths of the path_* functions (and fd_prestat_dir_name's buffer). */
const PATH_LENS: Record<string, number[]> = {
  path_create_directory: [2],
  path_filestat_get: [3],
  path_filestat_set_times: [3],
  path_link: [3, 6],
  path_open: [3],
  path_readlink: [2],
  path_remove_directory: [2],
  path_rename: [2, 5],
  path_symlink: [1, 4],
  path_unlink_file: [2],
};

/** For fd_read / fd_write / fd_pread / fd_pwrite: [iovs_ptr, iovs_len] positions. */
const IOVEC_FUNCS = new Set(['fd_read', 'fd_write', 'fd_pread', 'fd_pwrite']);

/**
 * Sum of the buffer lengths of `n` iovecs at `ptr`, or an errno when the vector does not fit the
 * memory or is longer than HOST_BOUNDS.maxIovecs.
 */
function iovecBytes(h: WasiGuardHooks, ptr: number, n: number): { bytes: number } | { errno: number } {
  if (n > HOST_BOUNDS.maxIovecs) return { errno: EINVAL };
  const size = h.memorySize();
  if (ptr + n * 8 > size) return { errno: EFAULT };
  const dv = h.view();
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const buf = dv.getUint32(ptr + i * 8, true);
    const len = dv.getUint32(ptr + i * 8 + 4, true);
    if (buf + len > size) return { errno: EFAULT };
    bytes += len;
  }
  return { bytes };
}

/** The shim's functions, each behind its size checks and charge. */
export function wrapWasi(shim: Record<string, Fn>, h: WasiGuardHooks): Record<string, Fn> {
  const out: Record<string, Fn> = {};
  for (const [name, fn] of Object.entries(shim)) {
    if (typeof fn !== 'function') continue;
    let pre: (a: any[]) => number | undefined; // returns an errno to answer without calling the shim
    if (IOVEC_FUNCS.has(name)) {
      pre = (a) => {
        const ptr = a[1] >>> 0;
        const n = a[2] >>> 0;
        h.charge(HOST_COSTS.call + n * HOST_COSTS.iovec);
        const r = iovecBytes(h, ptr, n);
        if ('errno' in r) return r.errno;
        h.charge(r.bytes / HOST_COSTS.copyBytesPerUnit);
        return undefined;
      };
    } else if (name === 'random_get') {
      pre = (a) => {
        const ptr = a[0] >>> 0;
        const len = a[1] >>> 0;
        h.charge(HOST_COSTS.call);
        if (ptr + len > h.memorySize()) return EFAULT;
        h.charge(len / HOST_COSTS.randomBytesPerUnit);
        return undefined;
      };
    } else if (name === 'poll_oneoff') {
      pre = (a) => {
        const n = a[2] >>> 0;
        h.charge(HOST_COSTS.call);
        if (n > HOST_BOUNDS.maxPollSubscriptions) return EINVAL;
        h.charge(n * HOST_COSTS.pollSubscription);
        return undefined;
      };
    } else if (PATH_LENS[name]) {
      const lens = PATH_LENS[name];
      pre = (a) => {
        h.charge(HOST_COSTS.call);
        let bytes = 0;
        for (const i of lens) {
          const len = a[i] >>> 0;
          if (len > MAX_PATH_BYTES) return ENAMETOOLONG;
          bytes += len;
        }
        h.charge(bytes / HOST_COSTS.copyBytesPerUnit);
        return undefined;
      };
    } else if (name === 'fd_readdir') {
      pre = (a) => {
        h.charge(HOST_COSTS.call);
        const ptr = a[1] >>> 0;
        const len = a[2] >>> 0;
        if (ptr + len > h.memorySize()) return EFAULT;
        h.charge(len / HOST_COSTS.copyBytesPerUnit);
        return undefined;
      };
    } else {
      // args, environ (a few short strings), clocks, fdstat, proc_exit, ...: the base charge.
      pre = () => {
        h.charge(HOST_COSTS.call);
        return undefined;
      };
    }
    out[name] = (...a: any[]) => {
      const errno = pre(a);
      if (errno !== undefined) return errno;
      const r = fn(...a);
      h.checkStop();
      return r;
    };
  }
  return out;
}
