/**
 * The run-time half of a step type. Each `src/executors/<type>/definition.ts` names a lazy loader
 * for its `executor.ts`, so the API process never loads SSH, database drivers or the WASM pool.
 */
import type { Config } from '../config/index.ts';
import type { Database } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { ModuleRegistry } from '../modules/registry.ts';
import type { WasmRuntime } from '../wasm/runtime/index.ts';

/** Shared services an executor may use. */
export interface ExecutorServices {
  db: Database;
  blobs: BlobStore;
  config: Config;
  logger: Logger;
  /** Looks up a variable (global or job-scoped, secrets decrypted), e.g. a named DB connection. */
  variable(name: string): unknown;
  /** The module registry (wasm steps). */
  modules?: ModuleRegistry;
  /** The process's WASM runtime, created on first use (wasm steps). */
  wasm?: () => WasmRuntime;
  /** The process's metrics (e.g. refused host calls of wasm steps). */
  metrics?: Metrics;
}

export interface StepRunContext {
  jobId: string;
  executionId: string;
  stepId: string;
  /** 1-based attempt of the execution. */
  attempt: number;
  /** Aborted on step timeout, job timeout, lease loss or shutdown; executors must stop promptly. */
  signal: AbortSignal;
  /** Epoch ms by which the step must be done. */
  deadline: number;
  /**
   * True when `signal` aborts by itself at `deadline` (the engine's step timer): an executor need
   * not keep a timer of its own for the deadline, only for a shorter timeout of its own.
   */
  deadlineEnforced?: boolean;
  /** The whole job context (variables, trigger, steps.<id>.output), after template resolution of
   * the config; for executors whose default input is the context (wasm). */
  context: Record<string, unknown>;
  services: ExecutorServices;
  logger: Logger;
  /**
   * The step's config resolved with every secret shown as `***` (what the step may record of what it
   * sent: URL, headers, DSN, host). Absent when an executor runs outside the engine (tests).
   */
  shownConfig?(): unknown;
  /** Masks secrets in a value the executor stores itself (e.g. the wasm step's execution log). */
  mask?(value: unknown): unknown;
  /** Records values for later steps (the wasm step's set_context writes); see docs/jobs.md. */
  setContext?(writes: Record<string, unknown>): void;
}

/** Runs one step with an already template-resolved config; returns the step's output (JSON). */
export type StepExecute<C = any> = (config: C, ctx: StepRunContext) => Promise<unknown>;

export interface StepExecutorModule<C = any> {
  execute: StepExecute<C>;
}
