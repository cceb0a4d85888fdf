import type { Problem } from '../../errors.ts';
import { type JsonSchema, type StepDefinition, containsTemplate, dropNulls, enumFromSeed, isPlainObject, problem, relativePathProblem } from '../definition.ts';
import { parseFilter } from './filter.ts';

export type FileColumnType = 'string' | 'number' | 'integer' | 'boolean' | 'date';

export interface FileStepConfig {
  operation: 'read' | 'write';
  format: 'csv' | 'xlsx';
  /** Path in the blob store, relative to the execution folder (or a template). */
  path: string;
  csv?: { delimiter?: string; header?: boolean; encoding?: 'utf8' | 'utf8-bom' | 'latin1' | 'utf16le' };
  /** Sheet name, or 1-based sheet position (default: the first sheet); whether row 1 is a header (default true). */
  xlsx?: { sheet?: string | number; header?: boolean };
  /** Source column -> target column. Columns not listed are kept as they are. */
  columns?: Record<string, string>;
  /** Column -> type to convert values to. */
  types?: Record<string, FileColumnType>;
  /** Condition a row must satisfy to be kept (read only), e.g. `amount > 1000 and status = 'OK'` (see filter.ts). */
  filter?: string;
  /** For write: template producing the rows, e.g. `{{steps.fetch.output.rows}}`. */
  source?: string;
  /** Rows copied into the step output (the full data stays in the file). */
  max_output_rows: number;
}

const configSchema: JsonSchema = {
  type: 'object',
  required: ['operation', 'format', 'path'],
  additionalProperties: false,
  properties: {
    operation: { type: 'string', enum: ['read', 'write'] },
    format: {
      type: 'string',
      enum: ['csv', 'xlsx'],
      'x-unsupported': { xls: "legacy .xls is not supported; use 'xlsx'", excel: "use 'xlsx'" },
    },
    path: { type: 'string', minLength: 1, maxLength: 1024 },
    csv: {
      type: 'object',
      additionalProperties: false,
      properties: {
        delimiter: { type: 'string', minLength: 1, maxLength: 1 },
        header: { type: 'boolean' },
        encoding: { type: 'string', enum: ['utf8', 'utf8-bom', 'latin1', 'utf16le'] },
      },
    },
    xlsx: {
      type: 'object',
      additionalProperties: false,
      properties: {
        sheet: { type: ['string', 'integer'], minLength: 1, maxLength: 31, minimum: 1 },
        header: { type: 'boolean' },
      },
    },
    columns: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } },
    types: {
      type: 'object',
      additionalProperties: { type: 'string', enum: ['string', 'number', 'integer', 'boolean', 'date'] },
    },
    filter: { type: 'string', minLength: 1, maxLength: 10_000 },
    source: { type: 'string', minLength: 1 },
    max_output_rows: { type: 'integer', minimum: 0, maximum: 100_000, default: 100 },
  },
};

function fromSeed(seed: any): unknown {
  if (!isPlainObject(seed)) return seed;
  const c = dropNulls(seed);
  if ('operation' in c) c.operation = enumFromSeed(c.operation);
  if ('format' in c) c.format = enumFromSeed(c.format, { csv: 'csv', excel: 'xlsx', xlsx: 'xlsx' });
  return c;
}

function check(c: FileStepConfig): Problem[] {
  const out: Problem[] = [];
  const p = relativePathProblem(c.path);
  if (p) out.push(problem('path', p));
  if (c.csv !== undefined && c.format !== 'csv') out.push(problem('csv', "csv options only apply when format is 'csv'"));
  if (c.xlsx !== undefined && c.format !== 'xlsx') out.push(problem('xlsx', "xlsx options only apply when format is 'xlsx'"));
  if (c.operation === 'write' && c.source === undefined) {
    out.push(problem('', "missing required property 'source' (the rows to write, e.g. '{{steps.fetch.output.rows}}')"));
  }
  if (c.operation === 'read' && c.source !== undefined) out.push(problem('source', "'source' only applies to operation 'write'"));
  if (c.operation === 'write' && c.filter !== undefined) out.push(problem('filter', "'filter' only applies to operation 'read'"));
  if (c.filter !== undefined && !containsTemplate(c.filter)) {
    try {
      parseFilter(c.filter);
    } catch (err) {
      out.push(problem('filter', (err as Error).message));
    }
  }
  return out;
}

export const file: StepDefinition<'file', FileStepConfig> = {
  type: 'file',
  seedName: 'FileProcessing',
  loadExecutor: () => import('./executor.ts'),
  title: 'Read or write CSV / Excel (xlsx) files in the execution folder',
  configSchema,
  fromSeed,
  check,
};
