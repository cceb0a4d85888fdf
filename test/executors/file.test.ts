import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import ExcelJS from 'exceljs';
import { execute, executionFolder } from '../../src/executors/file/executor.ts';
import { parseFilter } from '../../src/executors/file/filter.ts';
import type { FileStepConfig } from '../../src/executors/file/definition.ts';
import type { StepRunContext } from '../../src/executors/executor.ts';
import { StepError } from '../../src/engine/step-error.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { parseJobDocument } from '../../src/jobs/validate.ts';
import { forEachBlobStore, openBlobHarness, type BlobHarness } from '../helpers/blob-stores.ts';
import { stepError, stepRunContext } from '../helpers/steps.ts';

/** The store of the suite running (filesystem or S3, see forEachBlobStore below). */
let blobs: BlobStore;

const runCtx = (over: Partial<StepRunContext> = {}) =>
  stepRunContext({ jobId: 'job-f', executionId: 'exec-f', stepId: 'file', services: { blobs, variable: () => undefined }, ...over });
const folder = executionFolder({ jobId: 'job-f', executionId: 'exec-f' });
const put = (path: string, data: string | Buffer) => blobs.put(folder + path, typeof data === 'string' ? Buffer.from(data) : data);
const run = (c: Partial<FileStepConfig>, ctx = runCtx()) => execute({ max_output_rows: 100, ...c } as FileStepConfig, ctx) as Promise<any>;

const TXN = [
  'id;customer;amount;status;booked',
  '1;An;1500.50;OK;2024-03-01',
  '2;Binh;20;OK;02/03/2024',
  '3;Chi;99000;FAILED;2024-03-03',
  '4;Dung;1200;OK;2024-03-04',
  '',
].join('\r\n');

forEachBlobStore('file step', (kind) => {
  let h: BlobHarness;
  before(async () => {
    h = await openBlobHarness(kind);
    blobs = h.store;
  });
  after(async () => {
    assert.deepEqual(await h.leftovers(), [], 'no unfinished writes left in the store');
    await h.close();
  });

  describe('file step: CSV read', () => {
    it('maps columns, converts types and filters rows', async () => {
      await put('in/txn.csv', TXN);
      const out = await run({
        operation: 'read',
        format: 'csv',
        path: 'in/txn.csv',
        csv: { delimiter: ';' },
        columns: { customer: 'name', booked: 'date' },
        types: { id: 'integer', amount: 'number', date: 'date' },
        filter: "amount > 1000 and status = 'OK'",
      });
      assert.deepEqual(out.columns, ['id', 'name', 'amount', 'status', 'date']);
      assert.equal(out.rows_read, 4);
      assert.equal(out.row_count, 2);
      assert.deepEqual(out.rows, [
        { id: 1, name: 'An', amount: 1500.5, status: 'OK', date: '2024-03-01' },
        { id: 4, name: 'Dung', amount: 1200, status: 'OK', date: '2024-03-04' },
      ]);
      assert.equal(out.truncated, false);
      assert.equal(out.path, 'in/txn.csv');
      assert.equal(out.bytes, Buffer.byteLength(TXN));
    });

    it('keeps at most max_output_rows rows in the output but counts them all', async () => {
      await put('in/txn.csv', TXN);
      const out = await run({ operation: 'read', format: 'csv', path: 'in/txn.csv', csv: { delimiter: ';' }, max_output_rows: 1 });
      assert.equal(out.row_count, 4);
      assert.equal(out.rows.length, 1);
      assert.equal(out.truncated, true);
      assert.equal(out.rows[0].booked, '2024-03-01');
    });

    it('reads files without a header as col1..colN', async () => {
      await put('in/nohdr.csv', 'a,1\nb,2\n');
      const out = await run({ operation: 'read', format: 'csv', path: 'in/nohdr.csv', csv: { header: false }, filter: 'col2 >= 2' });
      assert.deepEqual(out.rows, [{ col1: 'b', col2: '2' }]);
    });

    it('decodes UTF-8 with BOM, Latin-1 and UTF-16LE', async () => {
      const text = 'tên,thành phố\nNguyễn Văn A,Hà Nội\n';
      await put('in/bom.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]));
      const bom = await run({ operation: 'read', format: 'csv', path: 'in/bom.csv', csv: { encoding: 'utf8-bom' } });
      assert.deepEqual(bom.columns, ['tên', 'thành phố']); // no BOM glued to the first name
      assert.equal(bom.rows[0]['thành phố'], 'Hà Nội');

      await put('in/latin1.csv', Buffer.from('société,ville\nCrème Brûlée,Orléans\n', 'latin1'));
      const l1 = await run({ operation: 'read', format: 'csv', path: 'in/latin1.csv', csv: { encoding: 'latin1' } });
      assert.deepEqual(l1.rows, [{ société: 'Crème Brûlée', ville: 'Orléans' }]);

      await put('in/u16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]));
      const u16 = await run({ operation: 'read', format: 'csv', path: 'in/u16.csv', csv: { encoding: 'utf16le' } });
      assert.equal(u16.rows[0]['tên'], 'Nguyễn Văn A');
    });

    it('fails with clear codes: missing file, bad CSV, bad value, unknown column, bad path', async () => {
      assert.equal((await stepError(run({ operation: 'read', format: 'csv', path: 'nope.csv' }))).code, 'file_not_found');

      await put('in/ragged.csv', 'a,b\n1,2\n3\n');
      const ragged = await stepError(run({ operation: 'read', format: 'csv', path: 'in/ragged.csv' }));
      assert.equal(ragged.code, 'file_parse_error');
      assert.match(ragged.message, /line 3/);

      await put('in/quote.csv', 'a,b\n"1,2\n');
      assert.equal((await stepError(run({ operation: 'read', format: 'csv', path: 'in/quote.csv' }))).code, 'file_parse_error');

      await put('in/txn.csv', TXN);
      const conv = await stepError(run({ operation: 'read', format: 'csv', path: 'in/txn.csv', csv: { delimiter: ';' }, types: { status: 'number' } }));
      assert.equal(conv.code, 'file_conversion_error');
      assert.match(conv.message, /row 1, column 'status': 'OK' is not a number/);

      const col = await stepError(run({ operation: 'read', format: 'csv', path: 'in/txn.csv', csv: { delimiter: ';' }, filter: 'amout > 1' }));
      assert.equal(col.code, 'file_filter_error');
      assert.match(col.message, /'amout'/);

      assert.equal((await stepError(run({ operation: 'read', format: 'csv', path: '../other/x.csv' }))).code, 'file_invalid_path');
    });

    it('stops when the step is aborted', async () => {
      await put('in/many.csv', 'n\n' + Array.from({ length: 20_000 }, (_, i) => i).join('\n'));
      const ac = new AbortController();
      const reason = new StepError('step_timeout', 'too slow');
      ac.abort(reason);
      assert.equal(await stepError(run({ operation: 'read', format: 'csv', path: 'in/many.csv' }, runCtx({ signal: ac.signal }))), reason);
    });
  });

  describe('file step: write and XLSX', () => {
    const rows = [
      { id: 1, name: 'Nguyễn An', amount: 10.5, ok: true },
      { id: 2, name: 'Trần "Bình"; Jr', amount: 20, ok: false },
    ];

    it('writes CSV with a delimiter and a BOM, and reads it back', async () => {
      const out = await run({
        operation: 'write',
        format: 'csv',
        path: 'out/a.csv',
        source: rows as any,
        csv: { delimiter: ';', encoding: 'utf8-bom' },
        columns: { name: 'customer' },
      });
      assert.deepEqual(out.columns, ['id', 'customer', 'amount', 'ok']);
      assert.equal(out.row_count, 2);
      const bytes = await blobs.get(folder + 'out/a.csv');
      assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
      assert.equal(out.bytes, bytes.length);
      assert.match(bytes.toString('utf8'), /^\ufeffid;customer;amount;ok\r?\n1;Nguyễn An;10.5;true/);
      const back = await run({
        operation: 'read',
        format: 'csv',
        path: 'out/a.csv',
        csv: { delimiter: ';' },
        types: { id: 'integer', amount: 'number', ok: 'boolean' },
      });
      assert.deepEqual(
        back.rows,
        rows.map(({ name, ...r }) => ({ id: r.id, customer: name, amount: r.amount, ok: r.ok })),
      );
    });

    it('a write that fails midway leaves the previous file as it was and no unfinished write', async () => {
      await put('out/keep.csv', 'the previous file\n');
      await put('out/keep.xlsx', 'the previous workbook');
      // Row 3000 cannot be converted: the stream into the store fails after thousands of rows.
      const many = Array.from({ length: 5000 }, (_, i) => ({ id: i + 1, amount: i === 2999 ? 'abc' : String(i) }));
      for (const format of ['csv', 'xlsx'] as const) {
        const e = await stepError(run({ operation: 'write', format, path: `out/keep.${format}`, source: many as any, types: { amount: 'number' } }));
        assert.equal(e.code, 'file_conversion_error');
        assert.match(e.message, /row 3000, column 'amount'/);
      }
      assert.equal((await blobs.get(folder + 'out/keep.csv')).toString(), 'the previous file\n');
      assert.equal((await blobs.get(folder + 'out/keep.xlsx')).toString(), 'the previous workbook');
      const aborted = new AbortController();
      aborted.abort(new StepError('step_timeout', 'too slow'));
      assert.equal(
        (await stepError(run({ operation: 'write', format: 'csv', path: 'out/keep.csv', source: many as any }, runCtx({ signal: aborted.signal })))).code,
        'step_timeout',
      );
      assert.equal((await blobs.get(folder + 'out/keep.csv')).toString(), 'the previous file\n');
      assert.deepEqual(await h.leftovers(), []);
    });

    it('refuses a source that is not a list of rows', async () => {
      const e = await stepError(run({ operation: 'write', format: 'csv', path: 'out/b.csv', source: { a: 1 } as any }));
      assert.equal(e.code, 'file_invalid_source');
    });

    it('writes XLSX and reads it back by sheet name and position', async () => {
      const out = await run({ operation: 'write', format: 'xlsx', path: 'out/a.xlsx', source: rows as any, xlsx: { sheet: 'Giao dịch' } });
      assert.equal(out.row_count, 2);
      const byName = await run({ operation: 'read', format: 'xlsx', path: 'out/a.xlsx', xlsx: { sheet: 'Giao dịch' } });
      assert.deepEqual(byName.rows, rows);
      const byIndex = await run({ operation: 'read', format: 'xlsx', path: 'out/a.xlsx', xlsx: { sheet: 1 }, filter: 'ok' });
      assert.deepEqual(byIndex.rows, [rows[0]]);
      const missing = await stepError(run({ operation: 'read', format: 'xlsx', path: 'out/a.xlsx', xlsx: { sheet: 'Other' } }));
      assert.equal(missing.code, 'file_sheet_not_found');
      assert.match(missing.message, /sheets: Giao dịch/);
    });

    it('reads a workbook made by a spreadsheet program: second sheet, dates, formulas, rich text', async () => {
      const wb = new ExcelJS.Workbook();
      wb.addWorksheet('Summary').addRow(['ignore me']);
      const ws = wb.addWorksheet('Data');
      ws.addRow(['Account', 'Opened', 'Balance', 'Double']);
      ws.addRow(['A-1', new Date(Date.UTC(2024, 0, 31)), 100, { formula: 'C2*2', result: 200 }]);
      ws.addRow([{ richText: [{ text: 'B-' }, { font: { bold: true }, text: '2' }] }, new Date(Date.UTC(2023, 11, 1)), 5, { formula: 'C3*2', result: 10 }]);
      await put('in/book.xlsx', Buffer.from(await wb.xlsx.writeBuffer()));
      const out = await run({ operation: 'read', format: 'xlsx', path: 'in/book.xlsx', xlsx: { sheet: 2 }, filter: 'Double >= 100' });
      assert.deepEqual(out.columns, ['Account', 'Opened', 'Balance', 'Double']);
      assert.deepEqual(out.rows, [{ Account: 'A-1', Opened: '2024-01-31', Balance: 100, Double: 200 }]);
      assert.equal(out.rows_read, 2);
      const rich = await run({ operation: 'read', format: 'xlsx', path: 'in/book.xlsx', xlsx: { sheet: 'Data' }, filter: "starts_with(Account, 'B-')" });
      assert.equal(rich.rows[0].Account, 'B-2');
    });

    it('reports a file that is not XLSX as file_parse_error', async () => {
      await put('in/fake.xlsx', 'this is not a zip file');
      assert.equal((await stepError(run({ operation: 'read', format: 'xlsx', path: 'in/fake.xlsx' }))).code, 'file_parse_error');
    });
  });
});

describe('file step filter expressions', () => {
  const f = (src: string, row: Record<string, unknown>) => parseFilter(src).evaluate(row);
  it('compares numbers in text as numbers, other text as text, null only with null', () => {
    assert.equal(f('amount > 900', { amount: '1000' }), true);
    assert.equal(f('amount > 900', { amount: '1000abc' }), false); // not a number: compared as text, '1000abc' < '900'
    assert.equal(f("name < 'b'", { name: 'an' }), true);
    assert.equal(f('x = null', { x: null }), true);
    assert.equal(f('x > 0', { x: null }), false);
    assert.equal(f('not (a = 1 or b = 2)', { a: '1', b: '3' }), false);
    assert.equal(f("lower(country) in ('vn', 'sg')", { country: 'VN' }), true);
    assert.equal(f("country not in ('vn')", { country: 'sg' }), true);
    assert.equal(f('[Số tiền] * 2 >= 10 && !is_empty(`Mã KH`)', { 'Số tiền': '5', 'Mã KH': 'K1' }), true);
    assert.equal(f("contains(note, 'it''s')", { note: "yes it's" }), true);
    assert.deepEqual(parseFilter('a > 1 and lower(b) = c').columns, ['a', 'b', 'c']);
  });
  it('reports syntax errors with positions', () => {
    assert.throws(() => parseFilter('amount >'), /expected a value.*end of the filter/);
    assert.throws(() => parseFilter("name = 'x"), /unterminated text/);
    assert.throws(() => parseFilter('foo(1)'), /unknown function 'foo'/);
    assert.throws(() => parseFilter('a = 1 b'), /unexpected 'b' at position 7/);
  });
  it('is checked when the job is saved', () => {
    assert.throws(
      () =>
        parseJobDocument({ name: 'j', steps: [{ id: 'r', type: 'file', config: { operation: 'read', format: 'csv', path: 'a.csv', filter: 'amount >> 1' } }] }),
      (err: any) => err.details?.problems?.some((p: any) => p.path === 'steps[0].config.filter' && /expected a value/.test(p.message)),
    );
  });
});
