/**
 * The file step: reads or writes CSV and XLSX files in the execution's folder of the blob store,
 * `jobs/{job_id}/executions/{execution_id}/{path}`.
 *
 * Reading streams the file (csv-parse; exceljs' streaming WorkbookReader): memory does not grow with
 * the file, only `max_output_rows` rows are kept for the output. Each row goes through column
 * mapping (rename), type conversion (`types`, by the mapped names) and the filter, in that order.
 * Writing takes the rows from `source` (a template such as `{{steps.read.output.rows}}`) and streams
 * the encoded file into the store.
 *
 * Output (read): `{ path, format, columns, row_count, rows_read, rows, truncated, bytes }` where
 * row_count counts the rows that passed the filter and `rows` holds the first max_output_rows of them.
 * Output (write): `{ path, format, columns, row_count, bytes }`.
 * Failure codes: file_not_found, file_invalid_path, file_parse_error, file_conversion_error,
 * file_filter_error, file_sheet_not_found, file_invalid_source, file_io_error (retryable), aborted.
 */
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse as csvParse } from 'csv-parse';
import { stringify as csvStringify } from 'csv-stringify';
import ExcelJS from 'exceljs';
import type { StepExecute, StepRunContext } from '../executor.ts';
import type { FileColumnType, FileStepConfig } from './definition.ts';
import { relativePathProblem } from '../definition.ts';
import { StepError } from '../../engine/step-error.ts';
import { checkKey, type BlobInfo } from '../../storage/blob-store.ts';
import { withBlobRetry, type RetryingBlobStore } from '../../storage/retry.ts';
import { FilterSyntaxError, parseFilter } from './filter.ts';

type Row = Record<string, unknown>;

/** How often (rows) a long read checks whether the step was aborted. */
const ABORT_CHECK_ROWS = 4096;

export const execute: StepExecute<FileStepConfig> = async (config, ctx) => {
  const key = blobKey(config.path, ctx);
  try {
    return config.operation === 'read' ? await read(config, key, ctx) : await write(config, key, ctx);
  } catch (err) {
    throw toStepError(err, ctx, config.path);
  }
};

/** The blob key of a path in the execution folder; templates may have produced a bad one. */
export function executionFolder(ctx: Pick<StepRunContext, 'jobId' | 'executionId'>): string {
  return `jobs/${ctx.jobId}/executions/${ctx.executionId}/`;
}

function blobKey(path: string, ctx: StepRunContext): string {
  const problem = relativePathProblem(path);
  if (problem) throw new StepError('file_invalid_path', `path ${problem}`, { retryable: false });
  try {
    return checkKey(executionFolder(ctx) + path);
  } catch {
    throw new StepError('file_invalid_path', `path '${path}' is not a valid file name in the execution folder`, { retryable: false });
  }
}

/* ------------------------------------------------------------------------------------------------
 * Row transformation: mapping, types, filter
 * ---------------------------------------------------------------------------------------------- */

interface Transformer {
  /** Header names after the mapping. */
  columns: (source: string[]) => string[];
  /** Converts the row in place; throws file_conversion_error naming the line and column. */
  convert: (row: Row, line: number) => void;
  keep: (row: Row) => boolean;
  checkColumns: (columns: string[]) => void;
}

function transformer(config: FileStepConfig): Transformer {
  const mapping = config.columns ?? {};
  const types = Object.entries(config.types ?? {});
  let filter: ReturnType<typeof parseFilter> | null = null;
  if (config.filter !== undefined) {
    try {
      filter = parseFilter(config.filter);
    } catch (err) {
      throw new StepError('file_filter_error', `filter: ${(err as Error).message}`, { retryable: false });
    }
  }
  return {
    columns: (source) => source.map((c) => mapping[c] ?? c),
    convert(row, line) {
      for (const [col, type] of types) {
        if (!(col in row)) continue;
        try {
          row[col] = convertValue(row[col], type);
        } catch (err) {
          throw new StepError('file_conversion_error', `row ${line}, column '${col}': ${(err as Error).message}`, {
            retryable: false,
            details: { row: line, column: col, type, value: String(row[col]).slice(0, 200) },
          });
        }
      }
    },
    keep: filter ? filter.evaluate : () => true,
    checkColumns(columns) {
      const known = new Set(columns);
      const unknownTyped = types.map(([c]) => c).filter((c) => !known.has(c));
      if (unknownTyped.length) {
        throw new StepError(
          'file_conversion_error',
          `types names column${unknownTyped.length > 1 ? 's' : ''} ${unknownTyped.map((c) => `'${c}'`).join(', ')} that the file does not have (columns: ${columns.join(', ')})`,
          { retryable: false },
        );
      }
      const unknown = (filter?.columns ?? []).filter((c) => !known.has(c));
      if (unknown.length) {
        throw new StepError(
          'file_filter_error',
          `the filter names column${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `'${c}'`).join(', ')} that the file does not have (columns: ${columns.join(', ')})`,
          { retryable: false },
        );
      }
    },
  };
}

const TRUE = new Set(['true', '1', 'yes', 'y', 't']);
const FALSE = new Set(['false', '0', 'no', 'n', 'f']);

/** Converts one value; empty text becomes null for every type but string. */
export function convertValue(v: unknown, type: FileColumnType): unknown {
  if (type === 'string') return v === null || v === undefined ? null : typeof v === 'string' ? v : v instanceof Date ? v.toISOString() : String(v);
  if (v === null || v === undefined || (typeof v === 'string' && v.trim() === '')) return null;
  switch (type) {
    case 'number':
    case 'integer': {
      const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v.trim()) : NaN;
      if (!Number.isFinite(n)) throw new Error(`'${String(v).slice(0, 50)}' is not a number`);
      if (type === 'integer' && !Number.isInteger(n)) throw new Error(`'${String(v).slice(0, 50)}' is not a whole number`);
      return n;
    }
    case 'boolean': {
      if (typeof v === 'boolean') return v;
      const s = String(v).trim().toLowerCase();
      if (TRUE.has(s)) return true;
      if (FALSE.has(s)) return false;
      throw new Error(`'${String(v).slice(0, 50)}' is not a boolean (true/false, 1/0, yes/no)`);
    }
    case 'date':
      return toDate(v);
  }
}

/** YYYY-MM-DD, ISO date-time (with or without offset), DD/MM/YYYY, or an XLSX date cell. */
function toDate(v: unknown): string {
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new Error('invalid date');
    const iso = v.toISOString();
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso;
  }
  const s = String(v).trim();
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) return validYmd(+m[1], +m[2], +m[3], s);
  m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(s);
  if (m) return validYmd(+m[3], +m[2], +m[1], s);
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(s)) {
    const d = new Date(s.replace(' ', 'T'));
    if (!Number.isNaN(d.getTime())) return /(Z|[+-]\d{2}:?\d{2})$/.test(s) ? d.toISOString() : s.replace(' ', 'T');
  }
  throw new Error(`'${s.slice(0, 50)}' is not a date (YYYY-MM-DD, DD/MM/YYYY or ISO 8601)`);
}

function validYmd(y: number, mo: number, d: number, raw: string): string {
  const dt = new Date(Date.UTC(y, mo - 1, d));
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== mo - 1 || dt.getUTCDate() !== d) throw new Error(`'${raw}' is not a valid date`);
  return dt.toISOString().slice(0, 10);
}

/* ------------------------------------------------------------------------------------------------
 * Read
 * ---------------------------------------------------------------------------------------------- */

interface ReadOutput {
  path: string;
  format: 'csv' | 'xlsx';
  columns: string[];
  row_count: number;
  rows_read: number;
  rows: Row[];
  truncated: boolean;
  bytes: number;
}

/** The blob store, retrying transient errors within this step's deadline. */
function blobsFor(ctx: StepRunContext): RetryingBlobStore {
  return withBlobRetry(ctx.services.blobs, { signal: ctx.signal, deadline: ctx.deadline, logger: ctx.logger });
}

async function read(config: FileStepConfig, key: string, ctx: StepRunContext): Promise<ReadOutput> {
  const blobs = blobsFor(ctx);
  const info = await blobs.stat(key);
  if (!info) throw notFound(config.path);
  const t = transformer(config);
  const max = config.max_output_rows ?? 100;
  const out: ReadOutput = { path: config.path, format: config.format, columns: [], row_count: 0, rows_read: 0, rows: [], truncated: false, bytes: info.size };
  const source = await blobs.getStream(key);
  const onRow = (row: Row, line: number) => {
    out.rows_read++;
    t.convert(row, line);
    if (!t.keep(row)) return;
    if (out.row_count++ < max) out.rows.push(row);
    if ((out.rows_read & (ABORT_CHECK_ROWS - 1)) === 0 && ctx.signal.aborted) throw ctx.signal.reason;
  };
  try {
    if (config.format === 'csv') await readCsv(config, source, t, out, onRow);
    else await readXlsx(config, source, t, out, onRow);
  } finally {
    source.destroy();
  }
  out.truncated = out.row_count > out.rows.length;
  ctx.logger.debug({ path: config.path, rows_read: out.rows_read, row_count: out.row_count }, 'file step read done');
  return out;
}

async function readCsv(config: FileStepConfig, source: Readable, t: Transformer, out: ReadOutput, onRow: (row: Row, line: number) => void): Promise<void> {
  const header = config.csv?.header ?? true;
  const encoding = config.csv?.encoding === 'utf8-bom' || !config.csv?.encoding ? 'utf8' : config.csv.encoding;
  let columns: string[] | null = null;
  // No `info` option: per-record line information halves csv-parse's speed. Conversion errors name
  // the data row instead; csv-parse's own errors carry the line.
  const parser = csvParse({
    delimiter: config.csv?.delimiter ?? ',',
    encoding: encoding as BufferEncoding,
    bom: true, // a UTF-8 or UTF-16 byte order mark is dropped (and tells the encoding)
    skip_empty_lines: true,
  });
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);
  let n = 0;
  for await (const fields of parser as AsyncIterable<string[]>) {
    if (columns === null) {
      const names = header ? fields.map((f) => f.trim()) : fields.map((_, i) => `col${i + 1}`);
      columns = t.columns(names);
      const dup = columns.find((c, i) => columns!.indexOf(c) !== i);
      if (dup !== undefined)
        throw new StepError('file_parse_error', `column '${dup}' appears twice in the header${config.columns ? ' (after mapping)' : ''}`, { retryable: false });
      out.columns = columns;
      t.checkColumns(columns);
      if (header) continue;
    }
    const row: Row = {};
    for (let i = 0; i < columns.length; i++) row[columns[i]] = fields[i];
    onRow(row, ++n);
  }
}

/** Cell value -> JSON: formulas give their result, rich text its text, dates ISO text, errors their code. */
function cellValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) {
    const iso = v.toISOString();
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso;
  }
  if (typeof v !== 'object') return v;
  const o = v as Record<string, any>;
  if ('result' in o) return cellValue(o.result);
  if ('formula' in o || 'sharedFormula' in o) return null;
  if (Array.isArray(o.richText)) return o.richText.map((r: any) => r.text).join('');
  if ('text' in o) return cellValue(o.text);
  if ('error' in o) return o.error;
  return JSON.stringify(o);
}

async function readXlsx(config: FileStepConfig, source: Readable, t: Transformer, out: ReadOutput, onRow: (row: Row, line: number) => void): Promise<void> {
  const want = config.xlsx?.sheet ?? 1;
  const header = config.xlsx?.header ?? true;
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(source, {
    worksheets: 'emit',
    sharedStrings: 'cache',
    hyperlinks: 'ignore',
    styles: 'cache', // needed to tell date cells from numbers
    entries: 'ignore',
  });
  const seen: string[] = [];
  let found = false;
  try {
    for await (const ws of reader as AsyncIterable<any>) {
      const sheets: any[] = (reader as any).model?.sheets ?? [];
      const position = sheets.findIndex((s) => s.name === ws.name) + 1 || Number(ws.id);
      seen.push(ws.name);
      const match = typeof want === 'number' ? position === want : ws.name === want;
      if (!match) {
        for await (const _ of ws) void _; // drain it
        continue;
      }
      found = true;
      let columns: string[] | null = null;
      for await (const r of ws as AsyncIterable<any>) {
        const values: unknown[] = (r.values as unknown[]).slice(1).map(cellValue);
        const line = r.number as number;
        if (columns === null) {
          const src = header ? values.map((v, i) => (v === null || v === '' ? `col${i + 1}` : String(v).trim())) : values.map((_, i) => `col${i + 1}`);
          columns = t.columns(src);
          out.columns = columns;
          t.checkColumns(columns);
          if (header) continue;
        }
        if (values.every((v) => v === null || v === '')) continue;
        if (values.length > columns.length && values.slice(columns.length).some((v) => v !== null)) {
          throw new StepError('file_parse_error', `row ${line} of sheet '${ws.name}' has values beyond the ${columns.length} header columns`, {
            retryable: false,
            details: { row: line },
          });
        }
        const row: Row = {};
        for (let i = 0; i < columns.length; i++) row[columns[i]] = values[i] ?? null;
        onRow(row, line);
      }
      break;
    }
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError('file_parse_error', `'${config.path}' is not a readable XLSX file: ${(err as Error).message}`, { retryable: false, cause: err });
  }
  if (!found) {
    throw new StepError(
      'file_sheet_not_found',
      `sheet ${typeof want === 'number' ? `#${want}` : `'${want}'`} not found in '${config.path}' (sheets: ${seen.join(', ') || 'none'})`,
      {
        retryable: false,
        details: { sheets: seen },
      },
    );
  }
}

/* ------------------------------------------------------------------------------------------------
 * Write
 * ---------------------------------------------------------------------------------------------- */

interface WriteOutput {
  path: string;
  format: 'csv' | 'xlsx';
  columns: string[];
  row_count: number;
  bytes: number;
}

async function write(config: FileStepConfig, key: string, ctx: StepRunContext): Promise<WriteOutput> {
  const source: unknown = typeof config.source === 'string' ? parseSource(config.source) : config.source;
  if (!Array.isArray(source)) {
    throw new StepError('file_invalid_source', `source must resolve to a list of rows (objects or arrays), got ${source === null ? 'null' : typeof source}`, {
      retryable: false,
    });
  }
  const t = transformer(config);
  // Columns: the keys of the objects in order of first appearance, or col1..N for arrays.
  const srcColumns: string[] = [];
  const seen = new Set<string>();
  source.forEach((r, i) => {
    if (Array.isArray(r)) {
      for (let c = srcColumns.length; c < r.length; c++) if (!seen.has(`col${c + 1}`)) seen.add(`col${c + 1}`), srcColumns.push(`col${c + 1}`);
    } else if (r !== null && typeof r === 'object') {
      for (const k of Object.keys(r)) if (!seen.has(k)) seen.add(k), srcColumns.push(k);
    } else {
      throw new StepError('file_invalid_source', `source row ${i + 1} is ${r === null ? 'null' : typeof r}, not an object or an array`, { retryable: false });
    }
  });
  const columns = t.columns(srcColumns);
  t.checkColumns(columns);
  // Why the encoding side failed (a value that does not convert, an abort): reported rather than
  // what the store makes of its stream being destroyed.
  let producerError: unknown;
  const rows = function* (): Generator<unknown[]> {
    try {
      for (let i = 0; i < source.length; i++) {
        const r = source[i] as any;
        const row: Row = {};
        srcColumns.forEach((c, j) => (row[columns[j]] = Array.isArray(r) ? r[Number(c.slice(3)) - 1] : r[c]));
        t.convert(row, i + 1);
        if (ctx.signal.aborted) throw ctx.signal.reason;
        yield columns.map((c) => row[c] ?? null);
      }
    } catch (err) {
      producerError ??= err;
      throw err;
    }
  };

  let done: Promise<unknown> = Promise.resolve();
  // The body is produced afresh for each try: a blob store that fails for a moment is retried.
  const open = (): Readable => {
    let body: Readable;
    producerError = undefined;
    if (config.format === 'csv') {
      const header = config.csv?.header ?? true;
      const enc = config.csv?.encoding ?? 'utf8';
      const stringifier = csvStringify({
        delimiter: config.csv?.delimiter ?? ',',
        header,
        columns: header ? columns : undefined,
        cast: { boolean: (b) => (b ? 'true' : 'false'), date: (d) => d.toISOString(), object: (o) => JSON.stringify(o) },
      });
      const encoded = encoder(enc);
      // pipeline, not .pipe(): a failure anywhere destroys `body` too, so the store sees the write fail
      // (and discards it) instead of waiting for the rest of a stream that will never come.
      done = pipeline(Readable.from(rows(), { objectMode: true }), stringifier, encoded);
      body = encoded;
    } else {
      const pass = new PassThrough();
      const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: pass, useStyles: false, useSharedStrings: false });
      const sheet = typeof config.xlsx?.sheet === 'string' ? config.xlsx.sheet : 'Sheet1';
      const ws = wb.addWorksheet(sheet);
      done = (async () => {
        if (config.xlsx?.header ?? true) ws.addRow(columns).commit();
        for (const r of rows()) ws.addRow(r.map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v))).commit();
        ws.commit();
        await wb.commit();
      })();
      done.catch((err) => {
        producerError ??= err;
        pass.destroy(err);
      });
      body = pass;
    }
    done.catch(() => {}); // reported below
    return body;
  };
  let info: BlobInfo;
  try {
    // On failure the body is destroyed (the store gave up: stop producing).
    info = await blobsFor(ctx).putStreamFrom(key, open);
  } catch (err) {
    throw producerError ?? err;
  }
  await done;
  ctx.logger.debug({ path: config.path, rows: source.length, bytes: info.size }, 'file step write done');
  return { path: config.path, format: config.format, columns, row_count: source.length, bytes: info.size };
}

/** A `source` left as text (a template inside longer text) may be JSON. */
function parseSource(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw new StepError('file_invalid_source', "source must resolve to a list of rows; write it as exactly one reference, e.g. '{{steps.read.output.rows}}'", {
      retryable: false,
    });
  }
}

/** Text -> bytes in the chosen encoding; utf8-bom and utf16le start with a byte order mark. */
function encoder(enc: 'utf8' | 'utf8-bom' | 'latin1' | 'utf16le'): Transform {
  let first = true;
  const bufEnc: BufferEncoding = enc === 'utf8-bom' ? 'utf8' : enc;
  return new Transform({
    transform(chunk: Buffer | string, _e, cb) {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let out = Buffer.from(text, bufEnc);
      if (first) {
        first = false;
        if (enc === 'utf8-bom') out = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), out]);
        if (enc === 'utf16le') out = Buffer.concat([Buffer.from([0xff, 0xfe]), out]);
      }
      cb(null, out);
    },
  });
}

/* ------------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------------- */

function notFound(path: string): StepError {
  return new StepError('file_not_found', `file '${path}' does not exist in this execution's folder`, { retryable: false, details: { path } });
}

function toStepError(err: unknown, ctx: StepRunContext, path: string): StepError {
  if (ctx.signal.aborted) {
    const reason = ctx.signal.reason;
    if (reason instanceof StepError) return reason;
    return new StepError('aborted', `file step on '${path}' was aborted`, { retryable: true, cause: err });
  }
  if (err instanceof StepError) return err;
  if (err instanceof FilterSyntaxError) return new StepError('file_filter_error', `filter: ${err.message}`, { retryable: false });
  const e = err as { code?: string; message?: string; lines?: number };
  if (e?.code === 'not_found') return notFound(path);
  if (typeof e?.code === 'string' && e.code.startsWith('CSV_')) {
    return new StepError('file_parse_error', `'${path}' is not valid CSV: ${e.message}`, { retryable: false, details: { line: e.lines, reason: e.code } });
  }
  return new StepError('file_io_error', `file step on '${path}' failed: ${e?.message ?? String(err)}`, { retryable: true, cause: err });
}
