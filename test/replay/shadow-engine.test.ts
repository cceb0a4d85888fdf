/**
 * The shadow test itself (src/wasm/replay/shadow.ts), on the real runtime: records of real runs of
 * customer-tiers (the runtime's record, built into the stored form by buildRunRecord), replayed with
 * the gold-40,000 build. The runs come back in order with their outcome; a run without a record is
 * `not_recorded`; a cancel or the time budget stops the test and counts what it did not reach.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WasmRuntime } from '../../src/wasm/runtime/index.ts';
import { buildRunRecord } from '../../src/wasm/replay/index.ts';
import type { WasmRunRecord } from '../../src/wasm/replay/types.ts';
import { shadowTest, type ShadowRun } from '../../src/wasm/replay/shadow.ts';
import { customersOf, expectedDiff, fixture } from './shadow-support.ts';

const TIERS = fixture('customer-tiers/customer-tiers.wasm');
const TIERS_40K = fixture('customer-tiers/customer-tiers-gold-40000.wasm');
const inputOf = (i: number) => ({ steps: { fetch_customers: { output: { data: { customers: customersOf(i) } } } } });
const MODULE = { id: null, name: 'customer-tiers', version: '1.1.0', hash: 'c'.repeat(64) };

describe('shadowTest on the real runtime', () => {
  let rt: WasmRuntime;
  const records: WasmRunRecord[] = [];

  before(async () => {
    rt = new WasmRuntime({ poolSize: 1, cacheDir: null });
    for (let i = 0; i < 10; i++) {
      const r = await rt.run({ bytes: TIERS, functionName: 'transform_data', input: inputOf(i), limits: { fuel: 5_000_000 }, record: true });
      assert.ok(r.ok, JSON.stringify(r));
      const rec = buildRunRecord(r, {
        module: { id: null, name: 'customer-tiers', version: '1.0.0' },
        executionId: `run-${i}`,
        attempt: 1,
        recordedAt: new Date().toISOString(),
        maxBytes: 16 << 20,
      });
      assert.ok(rec?.replayable, JSON.stringify(rec));
      records.push(rec);
    }
  });
  after(async () => {
    await rt?.close();
  });

  const sources = (recs: (WasmRunRecord | null)[]) => recs.map((r, i) => ({ execution_id: `run-${i}`, attempt: 1, load: async () => r }));

  it('in order, each run with its outcome and diff; progress after each run', async () => {
    const seen: [number, number, string][] = [];
    const report = await shadowTest({
      runtime: rt,
      bytes: TIERS_40K,
      module: MODULE,
      requested: 10,
      sources: sources(records),
      budgetMs: 60_000,
      onRun: (done, total, run) => seen.push([done, total, run.outcome]),
    });
    assert.deepEqual(
      report.runs.map((r) => r.execution_id),
      records.map((_, i) => `run-${i}`),
    );
    for (const [i, r] of report.runs.entries()) {
      const diff = expectedDiff(i);
      assert.equal(r.outcome, diff.length ? 'different_output' : 'same_output', `run ${i}`);
      if (diff.length) assert.deepEqual(r.diff, diff);
      assert.equal(r.recorded_module?.version, '1.0.0');
    }
    // runs 0, 3, 6, 9 (a customer in (40000, 50000]) and 7 (one at exactly 50,000)
    assert.equal(report.totals.different_output, 5);
    assert.equal(report.totals.same_output, 5);
    assert.deepEqual(
      seen.map((s) => s.slice(0, 2)),
      records.map((_, i) => [i + 1, 10]),
    );
    assert.equal(report.incomplete, undefined);
  });

  it('a run without a record is not_replayable (not_recorded); a record that cannot be read, record_unavailable', async () => {
    const report = await shadowTest({
      runtime: rt,
      bytes: TIERS_40K,
      module: MODULE,
      requested: 3,
      sources: [
        ...sources([records[1], null]),
        {
          execution_id: 'broken',
          attempt: 1,
          load: async () => {
            throw new Error('blob missing');
          },
        },
      ],
      budgetMs: 60_000,
    });
    assert.deepEqual(
      report.runs.map((r: ShadowRun) => [r.outcome, r.reason ?? null]),
      [
        ['same_output', null],
        ['not_replayable', 'not_recorded'],
        ['not_replayable', 'record_unavailable'],
      ],
    );
    assert.match(report.runs[2].message!, /blob missing/);
    assert.equal(report.totals.not_replayable, 2);
  });

  it('cancelled before it starts: nothing replayed, every run not_run, the report says cancelled', async () => {
    const ac = new AbortController();
    ac.abort();
    const report = await shadowTest({
      runtime: rt,
      bytes: TIERS_40K,
      module: MODULE,
      requested: 10,
      sources: sources(records),
      budgetMs: 60_000,
      signal: ac.signal,
    });
    assert.equal(report.totals.not_run, 10);
    assert.deepEqual(report.incomplete, { reason: 'cancelled', not_run: 10, budget_ms: 60_000 });
    assert.equal(report.totals.fuel.replay, 0);
  });

  it('a budget that runs out stops at the run it reached: the rest are not_run, never waited for', async () => {
    let n = 0;
    const slow = records.slice(0, 4).map((r, i) => ({
      execution_id: `run-${i}`,
      attempt: 1,
      // The second record takes longer to load than the whole budget: the test stops after it.
      load: async () => {
        if (n++ === 1) await new Promise((res) => setTimeout(res, 1500));
        return r;
      },
    }));
    const report = await shadowTest({ runtime: rt, bytes: TIERS_40K, module: MODULE, requested: 4, sources: slow, budgetMs: 1000 });
    assert.equal(report.runs[0].reason, undefined, 'the first run was replayed');
    assert.deepEqual(
      report.runs.slice(2).map((r) => r.reason),
      ['not_run', 'not_run'],
    );
    assert.equal(report.incomplete?.reason, 'time_budget');
    assert.equal(report.totals.not_run, report.runs.filter((r) => r.reason === 'not_run').length);
    assert.ok(report.totals.not_run >= 2);
  });
});
