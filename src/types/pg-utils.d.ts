// node-postgres' parameter mapping (pg/lib/utils.js, exported by pg's "./lib/*" entry), which
// @types/pg does not describe: what Bind applies to each value. Used by PgReadOnlyBatch
// (src/executors/database/client.ts), which maps the values before it writes anything.
declare module 'pg/lib/utils.js' {
  const utils: { prepareValue(value: unknown): unknown };
  export default utils;
}
