/**
 * A job whose wasm steps name a module or function that does not exist is refused when it is saved,
 * not when it first runs. References made of templates (`{{variables.module}}`) are resolved at
 * run time and checked then.
 */
import type { Queryable } from '../db/database.ts';
import { validationFailed, type Problem } from '../errors.ts';
import { containsTemplate } from '../executors/definition.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { findModuleByRef } from './repository.ts';
import { parseModuleRef, formatRef } from './ref.ts';

export async function checkJobModules(db: Queryable, def: JobDefinition): Promise<void> {
  const problems: Problem[] = [];
  for (const [i, step] of def.steps.entries()) {
    if (step.type !== 'wasm') continue;
    const { module_id, function_name } = step.config;
    if (containsTemplate(module_id)) continue;
    const ref = parseModuleRef(module_id);
    if (!ref) continue; // the step's own schema check reports it
    let module;
    try {
      module = await findModuleByRef(db, ref);
    } catch {
      problems.push({
        path: `steps[${i}].config.module_id`,
        message: `no module '${formatRef(ref)}' in the registry (upload it first: POST /api/v1/wasm/modules)`,
      });
      continue;
    }
    if (containsTemplate(function_name)) continue;
    const entries = module.info.entries.map((e) => e.name);
    const callable = entries.includes(function_name) || (module.info.command && function_name === '_start');
    if (!callable) {
      const exported = module.info.exports.some((e) => e.name === function_name);
      problems.push({
        path: `steps[${i}].config.function_name`,
        message: exported
          ? `'${function_name}' is exported by ${module.name}@${module.version} but is not an entry function (entries: ${entries.join(', ')})`
          : `module ${module.name}@${module.version} has no function '${function_name}' (entries: ${entries.join(', ') || 'none'})`,
      });
    }
  }
  if (problems.length) throw validationFailed(problems, 'job');
}
