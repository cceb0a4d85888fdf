/**
 * Minimal local typings of the JS WebAssembly API (the project's tsconfig has no DOM lib, so the
 * global `WebAssembly` namespace is not declared). Use `WA` instead of the global.
 */
export interface WasmModuleObject {
  readonly __wasmModule?: never;
}
export interface WasmMemoryObject {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}
export interface WasmGlobalObject {
  value: unknown;
}
export interface WasmInstanceObject {
  readonly exports: Record<string, unknown>;
}
export interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModuleObject;
  Instance: new (module: WasmModuleObject, imports: Record<string, Record<string, unknown>>) => WasmInstanceObject;
  Memory: new (desc: { initial: number; maximum?: number }) => WasmMemoryObject;
  validate(bytes: Uint8Array): boolean;
  RuntimeError: new (...a: unknown[]) => Error;
  CompileError: new (...a: unknown[]) => Error;
  LinkError: new (...a: unknown[]) => Error;
}
export const WA: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
