// Types of bin/entry.js (plain JavaScript: npm runs bin/ as is), for the bench and tests that use it.
export interface SourceSnapshot {
  files: number;
  bytes: number;
  newestMtimeMs: number;
}
export function sourceSnapshot(root?: string): SourceSnapshot;
export function distProblem(root?: string): string | null;
export function runCli(name: 'vecron' | 'wasm-cli'): Promise<unknown>;
