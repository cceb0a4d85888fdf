import type { Problem } from '../../errors.ts';
import { type JsonSchema, type StepDefinition, containsTemplate, dropNulls, isPlainObject, problem } from '../definition.ts';
import { NAME_RULE, VERSION_RULE, parseModuleRef } from '../../modules/ref.ts';

export interface WasmStepConfig {
  /** A module UUID, `name@1.2.0`, `name@latest`, or a plain module id/name. */
  module_id: string;
  /** Exported function to call. */
  function_name: string;
  fuel_limit: number;
  timeout_seconds: number;
  memory_limit_mb: number;
  /**
   * Clamp of the module's table entries, all tables together (see docs/abi.md). Optional with no
   * schema default, so that stored job documents keep their canonical form; unset: 100,000.
   */
  table_limit?: number;
  /** Passed to the function as JSON (templates resolved first). */
  input?: unknown;
  /**
   * Which runs of this step keep their complete record for replay (issue 20): all, failed, off.
   * Optional with no default (stored documents keep their form); it can only make the server's
   * VECRON_WASM_RECORD and the module's record_mode stricter.
   */
  record?: 'all' | 'failed' | 'off';
}

const configSchema: JsonSchema = {
  type: 'object',
  required: ['module_id', 'function_name'],
  additionalProperties: false,
  properties: {
    module_id: { type: 'string', minLength: 1, maxLength: 200 },
    function_name: { type: 'string', minLength: 1, maxLength: 256 },
    fuel_limit: { type: 'integer', minimum: 1, maximum: 1e12, default: 1_000_000 },
    timeout_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600, default: 30 },
    memory_limit_mb: { type: 'integer', minimum: 1, maximum: 4096, default: 64 },
    table_limit: { type: 'integer', minimum: 0, maximum: 10_000_000 },
    input: {},
    record: { type: 'string', enum: ['all', 'failed', 'off'] },
  },
};

function fromSeed(seed: any): unknown {
  return isPlainObject(seed) ? dropNulls(seed) : seed;
}

function check(c: WasmStepConfig): Problem[] {
  const out: Problem[] = [];
  const id = c.module_id;
  if (!containsTemplate(id) && parseModuleRef(id) === null) {
    out.push(
      problem('module_id', `must be a module UUID, 'name', 'name@<version>' or 'name@latest' (name: ${NAME_RULE}; version: ${VERSION_RULE}); got '${id}'`),
    );
  }
  return out;
}

export const wasm: StepDefinition<'wasm', WasmStepConfig> = {
  type: 'wasm',
  seedName: 'Wasm',
  loadExecutor: () => import('./executor.ts'),
  title: 'Sandboxed WebAssembly function (fuel, memory and time limited)',
  configSchema,
  fromSeed,
  check,
};
