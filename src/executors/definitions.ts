/**
 * The step type registry: one line per type. Everything about a type's configuration lives in its
 * folder (`src/executors/<type>/definition.ts`); the job model derives `StepType`, the per-type config
 * types and validation from this object.
 */
import type { StepDefinition } from './definition.ts';
import { database } from './database/definition.ts';
import { file } from './file/definition.ts';
import { http } from './http/definition.ts';
import { sftp } from './sftp/definition.ts';
import { wasm } from './wasm/definition.ts';

/** Ensures each key equals its definition's `type`. */
const registry = <R extends { [K in keyof R]: StepDefinition<K & string, any> }>(r: R): R => r;

export const stepDefinitions = registry({
  http,
  database,
  file,
  sftp,
  wasm,
});

export type StepType = keyof typeof stepDefinitions;

/** Canonical config type of a step type, e.g. `StepConfigOf<'http'>` = HttpStepConfig. */
export type StepConfigOf<K extends StepType> = (typeof stepDefinitions)[K] extends StepDefinition<any, infer C> ? C : never;

/** Step type names in registry order: `['http', 'database', 'file', 'sftp', 'wasm']`. */
export const stepTypes = Object.keys(stepDefinitions) as StepType[];

export function isStepType(v: unknown): v is StepType {
  return typeof v === 'string' && Object.hasOwn(stepDefinitions, v);
}

/** Seed variant name (`HttpRequest`) -> definition. */
export const stepDefinitionsBySeedName: ReadonlyMap<string, StepDefinition<StepType, unknown>> = new Map(
  Object.values(stepDefinitions).map((d) => [d.seedName, d as StepDefinition<StepType, unknown>]),
);
