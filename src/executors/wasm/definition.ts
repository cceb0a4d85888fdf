import type { Problem } from '../../errors.ts';
import { type JsonSchema, type StepDefinition, containsTemplate, dropNulls, isPlainObject, problem } from '../definition.ts';
import { executorNotAvailable } from '../definition.ts';

export interface WasmStepConfig {
  /** A module UUID, `name@1.2.0`, `name@latest`, or a plain module id/name. */
  module_id: string;
  /** Exported function to call. */
  function_name: string;
  fuel_limit: number;
  timeout_seconds: number;
  memory_limit_mb: number;
  /** Passed to the function as JSON (templates resolved first). */
  input?: unknown;
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
    input: {},
  },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VERSION = /^(latest|v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)$/;

function fromSeed(seed: any): unknown {
  return isPlainObject(seed) ? dropNulls(seed) : seed;
}

function check(c: WasmStepConfig): Problem[] {
  const out: Problem[] = [];
  const id = c.module_id;
  if (!containsTemplate(id) && !UUID.test(id)) {
    const at = id.lastIndexOf('@');
    const name = at === -1 ? id : id.slice(0, at);
    const version = at === -1 ? null : id.slice(at + 1);
    if (!NAME.test(name) || (version !== null && !VERSION.test(version))) {
      out.push(
        problem(
          'module_id',
          `must be a module UUID, 'name', 'name@<version>' or 'name@latest' (letters, digits, '.', '_', '-'); got '${id}'`,
        ),
      );
    }
  }
  return out;
}

export const wasm: StepDefinition<'wasm', WasmStepConfig> = {
  type: 'wasm',
  seedName: 'Wasm',
  loadExecutor: executorNotAvailable('wasm'),
  title: 'Sandboxed WebAssembly function (fuel, memory and time limited)',
  configSchema,
  fromSeed,
  check,
};
