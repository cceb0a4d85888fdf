/**
 * Route validators compiled on their route's first request instead of when the server starts
 * (issue 19: cold start). Fastify compiles every route's JSON schemas with ajv before it listens;
 * for this API that is about a quarter of a second of CPU at start (half a second on a busy
 * machine), spent before `/health` can answer, on routes most processes of a cluster never serve.
 * Here each validator is the same ajv function Fastify would build (@fastify/ajv-compiler, the
 * server's `ajv` options, the shared schemas), built the first time it is called and kept.
 *
 * A schema that does not compile would then fail on its route's first request instead of at
 * start: `compileAll` builds every validator at once, and a test calls it on the whole API.
 */
import AjvCompiler from '@fastify/ajv-compiler';

type BuildCompiler = ReturnType<typeof AjvCompiler>;
/** What Fastify hands a validator compiler for one part of one route. */
interface RouteSchema {
  schema: unknown;
  method: string;
  url: string;
  httpPart?: string;
}
type Validate = ((this: unknown, data: unknown) => unknown) & { errors?: unknown };
type Compile = (route: RouteSchema) => Validate;

export interface LazyValidators {
  /** Fastify's `schemaController.compilersFactory.buildValidator`. */
  buildValidator: BuildCompiler;
  /** Builds every validator not yet built; throws what ajv throws for a schema it cannot compile. */
  compileAll(): number;
}

/**
 * Header names are case-insensitive: Fastify lower-cases a headers schema's property names before
 * compiling it with its own compiler, not with a custom one (which this is), so it is done here.
 */
function lowerCaseHeaders(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const s = schema as { properties?: Record<string, unknown>; required?: unknown };
  const out: Record<string, unknown> = { ...s };
  if (s.properties && typeof s.properties === 'object') {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k.toLowerCase(), v]));
  }
  if (Array.isArray(s.required)) out.required = s.required.map((k) => (typeof k === 'string' ? k.toLowerCase() : k));
  return out;
}

const byApp = new WeakMap<object, LazyValidators>();

/** Builds every route validator of `app` (after `app.ready()`); returns how many were still unbuilt. */
export function compileRouteValidators(app: object): number {
  const v = byApp.get(app);
  if (!v) throw new Error('this app was not built with lazy validators');
  return v.compileAll();
}

/** Keeps `v` as the lazy validators of `app` (compileRouteValidators). */
export function attachLazyValidators(app: object, v: LazyValidators): void {
  byApp.set(app, v);
}

export function lazyValidators(): LazyValidators {
  const eager = AjvCompiler();
  const pending = new Set<() => void>();
  const buildValidator = ((externalSchemas: unknown, ajvOptions: unknown) => {
    const compileNow = (eager as unknown as (e: unknown, o: unknown) => Compile)(externalSchemas, ajvOptions);
    return (route: RouteSchema) => {
      const def = route.httpPart === 'headers' ? { ...route, schema: lowerCaseHeaders(route.schema) } : route;
      let fn: Validate | undefined;
      const build = (): Validate => {
        if (fn === undefined) {
          fn = compileNow(def);
          pending.delete(build);
        }
        return fn;
      };
      pending.add(build);
      // Fastify reads the validator's `errors` after a call that returned false, as ajv sets them.
      const validate = function (this: unknown, data: unknown) {
        const f = build();
        const ok = f.call(this, data);
        validate.errors = f.errors;
        return ok;
      } as Validate;
      return validate;
    };
  }) as unknown as BuildCompiler;
  return {
    buildValidator,
    compileAll() {
      const n = pending.size;
      for (const build of [...pending]) build();
      return n;
    },
  };
}
