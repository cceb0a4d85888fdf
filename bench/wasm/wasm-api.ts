/**
 * Minimal typings of the JS WebAssembly API for the bench scripts (the project's tsconfig has no
 * DOM lib, so the global `WebAssembly` namespace is not declared). Use `WA` instead of the global.
 */
export interface WMemory {
  readonly buffer: ArrayBuffer;
}
export interface WInstance {
  readonly exports: Record<string, unknown>;
}
export type WModule = object;
export interface WasmApi {
  Module: new (bytes: Uint8Array) => WModule;
  Instance: new (module: WModule, imports?: object) => WInstance;
  compile(bytes: Uint8Array): Promise<WModule>;
  validate(bytes: Uint8Array): boolean;
}
export const WA: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
