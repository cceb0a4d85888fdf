import type { WasmModuleInfo } from '../binary/index.ts';
import { WasmModuleError } from './types.ts';
import { PRIVILEGED_HOST_FUNCTIONS } from '../host/types.ts';

/** Every function of WASI preview 1 (wasi_snapshot_preview1). */
export const WASI_PREVIEW1_FUNCTIONS = new Set([
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'sched_yield',
  'random_get',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
]);
export const WASI_MODULE = 'wasi_snapshot_preview1';

/** The host functions a guest may import from `vecron` (or `env`), with their signatures. */
export const HOST_FUNCTIONS: Record<string, { params: string[]; results: string[] }> = {
  log: { params: ['i32', 'i32', 'i32'], results: [] },
  get_context: { params: ['i32', 'i32'], results: ['i64'] },
  set_context: { params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] },
  // The privileged host functions (issue 15, docs/abi.md): request JSON in, answer JSON through alloc.
  ...Object.fromEntries(PRIVILEGED_HOST_FUNCTIONS.map((name) => [name, { params: ['i32', 'i32'], results: ['i64'] }])),
};

export interface AllowedImports {
  /** Allow `wasi_snapshot_preview1` functions (default true). */
  wasi?: boolean;
  /** Module names under which the host functions may be imported (default `vecron`, `env`). */
  hostModules?: string[];
}

const sig = (p: readonly string[], r: readonly string[]): string => `(${p.join(',')})->(${r.join(',')})`;

/**
 * Checks a module's imports against what the host offers; throws `import_not_allowed` naming every
 * refused import (`module.name`, and for a known name with a wrong type, expected vs found).
 */
export function checkImports(info: WasmModuleInfo, allowed: AllowedImports = {}): void {
  const wasi = allowed.wasi ?? true;
  const hostModules = allowed.hostModules ?? ['vecron', 'env'];
  const problems: string[] = [];
  for (const imp of info.imports) {
    const what = `${imp.module}.${imp.name}`;
    if (imp.kind === 'memory') {
      if (imp.module === 'env' && imp.name === 'memory') continue;
      problems.push(`${what} (a memory; only env.memory may be imported)`);
      continue;
    }
    if (imp.kind !== 'function') {
      problems.push(`${what} (a ${imp.kind}; only functions and env.memory may be imported)`);
      continue;
    }
    if (imp.module === WASI_MODULE) {
      if (wasi && WASI_PREVIEW1_FUNCTIONS.has(imp.name)) continue;
      problems.push(wasi ? `${what} (not a WASI preview 1 function)` : `${what} (WASI is not allowed)`);
      continue;
    }
    if (hostModules.includes(imp.module)) {
      const expected = Object.hasOwn(HOST_FUNCTIONS, imp.name) ? HOST_FUNCTIONS[imp.name] : undefined;
      if (!expected) {
        problems.push(`${what} (no such host function; offered: ${Object.keys(HOST_FUNCTIONS).join(', ')})`);
        continue;
      }
      const t = info.types[imp.typeIndex ?? -1];
      const found = t ? sig(t.params, t.results) : '?';
      const want = sig(expected.params, expected.results);
      if (found !== want) problems.push(`${what} (wrong signature: expected ${want}, found ${found})`);
      continue;
    }
    problems.push(what);
  }
  if (problems.length > 0) {
    throw new WasmModuleError('import_not_allowed', `import not allowed: ${problems.join('; ')}`);
  }
}
