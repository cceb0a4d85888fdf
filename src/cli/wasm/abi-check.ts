/**
 * Would the server take this module and run this entry? Answered with the server's own checks: the
 * binary parser (src/wasm/binary), the runtime's prepare (validation, import check, instrumentation,
 * compile) and its entry resolution (resolveEntry), so `build` and `inspect` say OK exactly when an
 * upload and a run would.
 */
import { parseModule, WasmFormatError, type WasmModuleInfo } from '../../wasm/binary/index.ts';
import { WasmRuntime, WasmModuleError, resolveEntry, type EntryForm, type PreparedModule } from '../../wasm/runtime/index.ts';
import { defaultFunction } from './test-run.ts';
import { UsageError } from './errors.ts';

export interface AbiReport {
  info: WasmModuleInfo;
  prepared: PreparedModule | null;
  /** The entry that was checked and its form, when it passed. */
  entry: { name: string; form: EntryForm } | null;
  /** Null: the module passes; else why the server would refuse it (code and message). */
  problem: { code: string; message: string } | null;
  /** No entry was named and the module has several: which one runs is the manifest's or --function's choice. */
  ambiguous: string | null;
}

/** Throws WasmFormatError-based `invalid_module` when the bytes are no WebAssembly module at all. */
export async function checkAbi(bytes: Uint8Array, entryName: string | undefined): Promise<AbiReport> {
  let info: WasmModuleInfo;
  try {
    info = parseModule(bytes, { walkCode: false });
  } catch (err) {
    if (err instanceof WasmFormatError) throw new WasmModuleError('invalid_module', `not a valid WebAssembly module: ${err.message}`);
    throw err;
  }
  // prepare compiles on this thread; no worker is started.
  const rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
  try {
    let prepared: PreparedModule;
    try {
      prepared = await rt.prepare(bytes);
    } catch (err) {
      if (err instanceof WasmModuleError) return { info, prepared: null, entry: null, problem: { code: err.code, message: err.message }, ambiguous: null };
      throw err;
    }
    try {
      const name = defaultFunction(prepared, entryName);
      const form = resolveEntry(prepared, name);
      return { info, prepared, entry: { name, form }, problem: null, ambiguous: null };
    } catch (err) {
      if (err instanceof UsageError) return { info, prepared, entry: null, problem: null, ambiguous: err.message };
      const e = err as { code?: string; message: string };
      return { info, prepared, entry: null, problem: { code: e.code ?? 'abi_error', message: e.message }, ambiguous: null };
    }
  } finally {
    await rt.close();
  }
}

const sig = (p: readonly string[] = [], r: readonly string[] = []) => `(${p.join(',')})->(${r.join(',')})`;

/** The exported functions with their signatures, e.g. `process (i32,i32)->(i64)`. */
export function exportLines(info: WasmModuleInfo): string[] {
  return info.exports.map((e) => {
    if (e.kind !== 'function') return `${e.name} (${e.kind})`;
    const t = info.types[info.functionTypes[e.index]];
    return `${e.name} ${sig(t?.params, t?.results)}`;
  });
}

export function importLines(info: WasmModuleInfo): string[] {
  return info.imports.map((i) => {
    if (i.kind !== 'function') return `${i.module}.${i.name} (${i.kind})`;
    const t = info.types[i.typeIndex ?? -1];
    return `${i.module}.${i.name} ${sig(t?.params, t?.results)}`;
  });
}
