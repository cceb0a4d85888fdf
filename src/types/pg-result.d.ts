// node-postgres' Result (pg/lib/result.js, exported by pg's "./lib/*" entry): the row parser a
// read batch uses (src/executors/database/client.ts), with the pool's type parsers.
declare module 'pg/lib/result.js' {
  export default class Result {
    constructor(rowMode: 'array' | undefined, types: unknown);
    command: string | null;
    rowCount: number | null;
    fields: { name: string; dataTypeID: number; format?: string }[];
    addFields(fields: unknown[]): void;
    parseRow(values: unknown[]): Record<string, unknown>;
    addCommandComplete(msg: { text?: string; command?: string }): void;
  }
}
