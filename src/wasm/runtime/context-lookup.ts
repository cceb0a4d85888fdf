/**
 * What `get_context(key)` answers, the same in a job step and in `wasm-cli test` (both pass the job
 * context: `{variables, trigger, job, execution, steps, <earlier set_context keys>}`).
 *
 * - `""`: the whole context.
 * - a bare key (no dot), as in the design study (`context.variables.get(key)`), in order: the value
 *   this run wrote with set_context; a value an earlier step of the execution wrote with
 *   set_context (a top-level name of the context that is not one of the reserved ones); the job's
 *   variable of that name.
 * - a dotted path (`steps.fetch.output`, `variables.region`, `order.items.0`): its first name is
 *   one of the reserved names of the context, or else found as a bare key; the rest is a path into
 *   that value (array elements by index). If that finds nothing, the whole key as a bare key (a
 *   variable whose name contains a dot).
 */

/** Top-level names of the job context that set_context cannot write (src/engine keeps the same list). */
export const RESERVED_CONTEXT_KEYS: ReadonlySet<string> = new Set(['job', 'execution', 'variables', 'trigger', 'steps']);

const has = (o: unknown, k: string): boolean => o !== null && typeof o === 'object' && !Array.isArray(o) && Object.hasOwn(o, k);

function path(cur: unknown, parts: string[]): unknown {
  for (const part of parts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(part)) return undefined;
      cur = cur[Number(part)];
      continue;
    }
    if (!Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function bare(context: unknown, writes: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(writes, key)) return writes[key];
  if (!RESERVED_CONTEXT_KEYS.has(key) && has(context, key)) return (context as Record<string, unknown>)[key];
  const vars = has(context, 'variables') ? (context as Record<string, unknown>).variables : undefined;
  return has(vars, key) ? (vars as Record<string, unknown>)[key] : undefined;
}

/** The value for `key` (see above), or undefined when there is none. */
export function lookupContext(context: unknown, writes: Record<string, unknown>, key: string): unknown {
  if (key === '') return context;
  if (!key.includes('.')) return bare(context, writes, key);
  const [first, ...rest] = key.split('.');
  const root = RESERVED_CONTEXT_KEYS.has(first)
    ? has(context, first)
      ? (context as Record<string, unknown>)[first]
      : undefined
    : bare(context, writes, first);
  const v = root === undefined ? undefined : path(root, rest);
  return v !== undefined ? v : bare(context, writes, key);
}
