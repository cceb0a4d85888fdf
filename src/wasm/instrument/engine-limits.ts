/**
 * V8's implementation limits (src/wasm/wasm-limits.h of V8 11.3, Node 20) that the rewrite can push
 * a valid module past: it adds a parameter and a result (register form) or a local (global form) to
 * every function, two imports, a few functions, globals, exports and types. instrument() checks
 * each against the module as uploaded, so a refusal names the user's function and its count, with
 * byte offsets into the uploaded binary, never into the rewritten one.
 */
export const ENGINE_LIMITS = {
  types: 1_000_000,
  functions: 1_000_000,
  imports: 100_000,
  exports: 100_000,
  globals: 1_000_000,
  tables: 100_000,
  /** Parameters of one function type. */
  params: 1000,
  /** Results of one function type. */
  results: 1000,
  /** Parameters plus declared locals of one function. */
  locals: 50_000,
  /** Bytes of one function body. */
  functionBytes: 7_654_321,
  /** Entries of one table. */
  tableEntries: 10_000_000,
} as const;
