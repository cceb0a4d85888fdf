/**
 * A 200 MB CSV (VECRON_LARGE_CSV_MB to change) goes through the file step with a filter and type
 * conversion while this process's memory is sampled: the growth must stay far below the file's size.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { execute, executionFolder } from '../../src/executors/file/executor.ts';
import type { FileStepConfig } from '../../src/executors/file/definition.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { stepRunContext } from '../helpers/steps.ts';

const MB = 1024 * 1024;
const SIZE_MB = Number(process.env.VECRON_LARGE_CSV_MB ?? 200);
/** Allowed growth over the baseline while reading; a non-streaming read would need > SIZE_MB. */
const MAX_RSS_GROWTH_MB = 150;
const MAX_HEAP_GROWTH_MB = 100;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'vecron-large-csv-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic rows: every 7th is FAILED, amounts cycle through 0.00 … 9999.99. */
function* csvChunks(targetBytes: number, counts: { rows: number; matching: number; bytes: number }): Generator<Buffer> {
  const header = 'id,customer,amount,status,booked,note\n';
  counts.bytes = header.length;
  yield Buffer.from(header);
  let i = 0;
  while (counts.bytes < targetBytes) {
    let chunk = '';
    for (let k = 0; k < 2000; k++, i++) {
      const amount = ((i * 7919) % 1_000_000) / 100;
      const status = i % 7 === 0 ? 'FAILED' : 'OK';
      const day = String((i % 28) + 1).padStart(2, '0');
      chunk += `${i},CUST${String(i % 100_000).padStart(6, '0')},${amount.toFixed(2)},${status},2024-03-${day},"note, with a comma ${i % 1000}"\n`;
      counts.rows++;
      if (amount > 9000 && status === 'OK') counts.matching++;
    }
    counts.bytes += Buffer.byteLength(chunk);
    yield Buffer.from(chunk);
  }
}

it(`streams a ${SIZE_MB} MB CSV through the file step with bounded memory`, { timeout: 600_000 }, async (t) => {
  const blobs = new FsBlobStore(dir);
  const ctx = stepRunContext({
    jobId: 'job-large',
    executionId: 'exec-large',
    stepId: 'read',
    deadline: Date.now() + 600_000,
    services: { blobs, variable: () => undefined },
  });
  const key = executionFolder(ctx) + 'big/txn.csv';
  const counts = { rows: 0, matching: 0, bytes: 0 };

  let peakRss = 0;
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };

  // Written as a stream too: the generator never holds more than one chunk.
  gc();
  const t0 = performance.now();
  const info = await blobs.putStream(key, Readable.from(csvChunks(SIZE_MB * MB, counts)));
  const writeSeconds = (performance.now() - t0) / 1000;
  assert.equal(info.size, counts.bytes);

  gc();
  await new Promise((r) => setTimeout(r, 50));
  const base = process.memoryUsage();
  peakRss = base.rss;
  peakHeap = base.heapUsed;
  const timer = setInterval(sample, 25);
  const t1 = performance.now();
  let out: any;
  try {
    out = await execute(
      {
        operation: 'read',
        format: 'csv',
        path: 'big/txn.csv',
        types: { id: 'integer', amount: 'number' },
        filter: "amount > 9000 and status = 'OK'",
        max_output_rows: 1000,
      } as FileStepConfig,
      ctx,
    );
  } finally {
    clearInterval(timer);
  }
  sample();
  const readSeconds = (performance.now() - t1) / 1000;
  const rssGrowth = (peakRss - base.rss) / MB;
  const heapGrowth = (peakHeap - base.heapUsed) / MB;

  t.diagnostic(
    `file: ${(info.size / MB).toFixed(1)} MB, ${counts.rows} rows; written in ${writeSeconds.toFixed(1)}s, read+filter in ${readSeconds.toFixed(1)}s (${(info.size / MB / readSeconds).toFixed(1)} MB/s)`,
  );
  t.diagnostic(
    `memory while reading: baseline rss ${(base.rss / MB).toFixed(0)} MB heap ${(base.heapUsed / MB).toFixed(0)} MB; peak growth rss +${rssGrowth.toFixed(1)} MB, heap +${heapGrowth.toFixed(1)} MB`,
  );

  assert.equal(out.rows_read, counts.rows);
  assert.equal(out.row_count, counts.matching);
  assert.equal(out.rows.length, 1000);
  assert.equal(out.truncated, true);
  assert.ok(out.rows.every((r: any) => r.amount > 9000 && r.status === 'OK'));
  assert.ok(rssGrowth < MAX_RSS_GROWTH_MB, `RSS grew by ${rssGrowth.toFixed(1)} MB while reading a ${SIZE_MB} MB file (limit ${MAX_RSS_GROWTH_MB} MB)`);
  assert.ok(heapGrowth < MAX_HEAP_GROWTH_MB, `heap grew by ${heapGrowth.toFixed(1)} MB (limit ${MAX_HEAP_GROWTH_MB} MB)`);
});
