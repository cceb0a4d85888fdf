/**
 * What a shadow test makes of one replay (src/wasm/replay/shadow-outcome.ts): the outcome, the
 * JSON diff, the error, the divergence and the fuel and duration change, for each kind of result
 * replayRun gives. The replays themselves are exercised end to end in shadow-*.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifyReplay } from '../../src/wasm/replay/shadow-outcome.ts';
import type { RecordedResult, ReplayResult, ReplayRunSummary, WasmRunRecord } from '../../src/wasm/replay/types.ts';

const recorded = (over: Partial<RecordedResult> = {}): RecordedResult => ({
  ok: true,
  output_json: '{"customers":[{"id":"a","tier":"silver"}],"total":45000}',
  fuel_consumed: 1000,
  init_fuel_consumed: 0,
  memory_peak_bytes: 65536,
  exit_code: null,
  context_writes_json: '{}',
  stdout: '',
  stderr: '',
  duration_ms: 2,
  ...over,
});

const replay = (over: Partial<ReplayRunSummary> = {}): ReplayRunSummary => ({
  module_hash: 'b'.repeat(64),
  ok: true,
  output: { customers: [{ id: 'a', tier: 'silver' }], total: 45000 },
  fuel_consumed: 990,
  init_fuel_consumed: 0,
  memory_peak_bytes: 65536,
  duration_ms: 3,
  host_calls: 0,
  stdout: '',
  ...over,
});

const record = (result: RecordedResult): WasmRunRecord =>
  ({
    version: 1,
    recorded_at: '2026-12-02T00:00:00.000Z',
    module: { id: null, name: 'customer-tiers', version: '1.0.0', hash: 'a'.repeat(64) },
    function: 'transform_data',
    limits: {} as never,
    input_json: '{}',
    context_reads: [],
    context_chars: 0,
    env: {},
    host_calls: [],
    wasi: { clocks: [], random: [], stdin_bytes: 0 },
    result,
    cut: [],
    masked: [],
    replayable: true,
  }) as WasmRunRecord;

describe('shadow outcome of one replay', () => {
  it('same output with other fuel: same_output, the fuel change in units and percent', () => {
    const rec = recorded();
    const r: ReplayResult = { status: 'diverged', divergence: { kind: 'fuel', message: 'fuel 1000 -> 990' }, replay: replay(), recorded: rec };
    const c = classifyReplay(record(rec), r);
    assert.equal(c.outcome, 'same_output');
    assert.equal(c.diff, undefined);
    assert.deepEqual(c.fuel, { recorded: 1000, replay: 990, change: -10, change_pct: -1 });
    assert.deepEqual(c.duration_ms, { recorded: 2, replay: 3, change: 1 });
  });

  it('another output: different_output with one diff line per JSON path, recorded value first', () => {
    const rec = recorded();
    const out = replay({ output: { customers: [{ id: 'a', tier: 'gold' }], total: 45000 } });
    const c = classifyReplay(record(rec), { status: 'diverged', divergence: { kind: 'output', message: 'output differs' }, replay: out, recorded: rec });
    assert.equal(c.outcome, 'different_output');
    assert.deepEqual(c.diff, ['$.customers[0].tier: expected "silver", got "gold"']);
  });

  it('an error where the recorded run answered: new_error with the error; the same error code again is the same outcome', () => {
    const rec = recorded();
    const failed = replay({ ok: false, output: undefined, error: { code: 'trap', message: 'unreachable' } });
    const c = classifyReplay(record(rec), { status: 'diverged', divergence: { kind: 'error', message: 'error' }, replay: failed, recorded: rec });
    assert.equal(c.outcome, 'new_error');
    assert.deepEqual(c.error, { code: 'trap', message: 'unreachable' });

    const recFailed = recorded({ ok: false, output_json: undefined, error: { code: 'trap', message: 'unreachable' } });
    const again = classifyReplay(record(recFailed), { status: 'diverged', divergence: { kind: 'fuel', message: 'fuel' }, replay: failed, recorded: recFailed });
    assert.equal(again.outcome, 'same_output');
    assert.deepEqual(again.recorded_error, { code: 'trap', message: 'unreachable' });
    const other = replay({ ok: false, output: undefined, error: { code: 'fuel_exhausted', message: 'out of fuel' } });
    assert.equal(
      classifyReplay(record(recFailed), { status: 'diverged', divergence: { kind: 'error', message: 'e' }, replay: other, recorded: recFailed }).outcome,
      'new_error',
    );
  });

  it('an output where the recorded run failed: different_output, saying so', () => {
    const rec = recorded({ ok: false, output_json: undefined, error: { code: 'trap', message: 'unreachable' } });
    const c = classifyReplay(record(rec), { status: 'diverged', divergence: { kind: 'error', message: 'e' }, replay: replay(), recorded: rec });
    assert.equal(c.outcome, 'different_output');
    assert.match(c.diff![0], /^\$: expected the error trap, got \{"customers"/);
  });

  it('a host call the record does not hold: diverged with that divergence, and the output diff as well', () => {
    const rec = recorded();
    const divergence = { kind: 'host_call_request' as const, call_index: 1, function: 'db_query', message: 'request differs at $.params[4]' };
    const out = replay({ output: { customers: [{ id: 'a', tier: 'gold' }], total: 45000 }, host_calls: 2 });
    const c = classifyReplay(record(rec), { status: 'diverged', divergence, replay: out, recorded: rec });
    assert.equal(c.outcome, 'diverged');
    assert.deepEqual(c.divergence, divergence);
    assert.deepEqual(c.diff, ['$.customers[0].tier: expected "silver", got "gold"']);
    for (const kind of ['host_call_extra', 'host_call_missing', 'host_call_function', 'wasi_clock', 'wasi_random', 'wasi_stdin'] as const) {
      assert.equal(
        classifyReplay(record(rec), { status: 'diverged', divergence: { kind, message: kind }, replay: replay(), recorded: rec }).outcome,
        'diverged',
        kind,
      );
    }
  });

  it('reproduced exactly: same_output, no change', () => {
    const rec = recorded();
    const c = classifyReplay(record(rec), { status: 'reproduced', replay: replay({ fuel_consumed: 1000 }), recorded: rec });
    assert.equal(c.outcome, 'same_output');
    assert.equal(c.fuel!.change, 0);
    assert.equal(c.fuel!.change_pct, 0);
  });

  it('could not replay: not_replayable with the reason and message', () => {
    const rec = recorded();
    const c = classifyReplay(record(rec), { status: 'could_not_replay', reason: 'record_cut', message: 'host_calls[3].response was cut' });
    assert.deepEqual(c, { outcome: 'not_replayable', reason: 'record_cut', message: 'host_calls[3].response was cut' });
  });
});
