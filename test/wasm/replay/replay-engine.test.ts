/**
 * The replay engine (issue 20) on real guests in four languages, with the real host functions:
 * a run is recorded (runtime `record`, then buildRunRecord), then replayed from its record with the
 * same bytes (reproduced: the same output, fuel, memory and sequence of host calls, although every
 * input the guest read - time, random bytes, uuids, clocks, HTTP answers, rows - would differ live,
 * and although the servers it talked to are gone), and with a changed build (diverged at the right
 * call). Records that cannot be replayed say so (could_not_replay, exit 2).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { createHostDispatch } from '../../../src/wasm/host/index.ts';
import { WasmRuntime, jspiAvailable, type WasmRunRequest, type WasmRunResult } from '../../../src/wasm/runtime/index.ts';
import { buildRunRecord, formatReplay, replayExitCode, replayRun, type WasmRunRecord } from '../../../src/wasm/replay/index.ts';
import { createMasker } from '../../../src/engine/masking.ts';
import { json, startHttpServer, type TestServer } from '../../helpers/http-server.ts';
import { openSqlServer, type SqlServer } from '../../helpers/sql-servers.ts';
import { perm, testSession } from '../../helpers/host-session.ts';
import { CUSTOMERS, CUSTOMER_TIERS } from '../../fixtures/customer-tiers.ts';

/** Where http_request and db_query are served: the guest's worker under JSPI (the test runner's node flags), else the bridge. */
const IO_SERVED = jspiAvailable() ? 'worker' : 'host';

const root = new URL('../../../', import.meta.url);
const fx = (p: string) => new Uint8Array(readFileSync(new URL(`fixtures/wasm/${p}`, root)));
const PROBE = fx('replay-probe/replay-probe.wasm');
const PROBE_CHANGED = fx('replay-probe/replay-probe-changed.wasm');

let rt: WasmRuntime;
before(() => {
  rt = new WasmRuntime({ poolSize: 2 });
});
after(async () => {
  await rt.close();
});

/** Runs `req` with recording on and returns the result and its stored record. */
async function recorded(req: WasmRunRequest, mask?: (v: unknown) => unknown): Promise<{ result: WasmRunResult; record: WasmRunRecord }> {
  const result = await rt.run({ ...req, record: true });
  const record = buildRunRecord(result, {
    module: { id: null, name: 'test', version: '1.0.0' },
    recordedAt: new Date().toISOString(),
    maxBytes: 16 * 1024 * 1024,
    ...(mask ? { mask } : {}),
  });
  assert.ok(record, 'a record');
  // what is stored and fetched is the JSON text
  return { result, record: JSON.parse(JSON.stringify(record)) as WasmRunRecord };
}

/** Replays and asserts it reproduced the run exactly. */
async function assertReproduces(bytes: Uint8Array, result: WasmRunResult, record: WasmRunRecord): Promise<void> {
  assert.equal(record.replayable, true, JSON.stringify({ cut: record.cut, masked: record.masked, reason: record.not_replayable_reason }));
  const r = await replayRun(rt, bytes, record);
  assert.equal(r.status, 'reproduced', formatReplay(r));
  assert.equal(replayExitCode(r), 0);
  if (r.status !== 'reproduced') return;
  assert.deepEqual(r.replay.output, result.ok ? result.output : undefined);
  assert.equal(r.replay.fuel_consumed, result.fuelConsumed);
  assert.equal(r.replay.init_fuel_consumed, result.initFuelConsumed);
  assert.equal(r.replay.memory_peak_bytes, result.memoryPeakBytes);
  assert.equal(r.replay.host_calls, record.host_calls.length);
}

describe('replay-probe (C): time, crypto random_bytes and uuid served in the worker, WASI clocks and getentropy', () => {
  it('records every input the guest read and replays to the same output and fuel; a live run differs', async () => {
    const req: WasmRunRequest = { bytes: PROBE, functionName: 'probe', input: { hello: 'world' } };
    const { result, record } = await recorded(req);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(
      record.host_calls.map((c) => [c.seq, c.function, c.request, c.served, c.outcome]),
      [
        [0, 'time', '{"op":"now"}', 'worker', 'ok'],
        [1, 'crypto', '{"op":"random_bytes","n":16}', 'worker', 'ok'],
        [2, 'crypto', '{"op":"uuid"}', 'worker', 'ok'],
      ],
    );
    assert.deepEqual(
      record.wasi.clocks.map((c) => c.clock),
      [0, 1],
    );
    assert.deepEqual(
      record.wasi.random.map((b) => Buffer.from(b, 'base64').length),
      [8],
    );
    assert.equal(record.input_json, '{"hello":"world"}');
    const out = (result as { output: any }).output;
    assert.equal(out.entropy_hex, Buffer.from(record.wasi.random[0], 'base64').toString('hex'));
    assert.equal(String(out.realtime_ns), record.wasi.clocks[0].ns);

    // a second live run reads other values: the run is not reproducible without its record
    await new Promise((r) => setTimeout(r, 5));
    const live = await rt.run(req);
    assert.notDeepEqual((live as { output: any }).output, out);

    await new Promise((r) => setTimeout(r, 5));
    await assertReproduces(PROBE, result, record);
  });

  it('a changed build (8 random bytes asked instead of 16) diverges at host call #1, its request; exit 1', async () => {
    const { record } = await recorded({ bytes: PROBE, functionName: 'probe', input: {} });
    const r = await replayRun(rt, PROBE_CHANGED, record, { otherBuild: true });
    assert.equal(r.status, 'diverged', formatReplay(r));
    assert.equal(replayExitCode(r), 1);
    if (r.status !== 'diverged') return;
    assert.equal(r.divergence.kind, 'host_call_request');
    assert.equal(r.divergence.call_index, 1);
    assert.equal(r.divergence.function, 'crypto');
    assert.match(r.divergence.message, /at \$\.n: 16 -> 8/);
    assert.equal(r.divergence.expected, '{"op":"random_bytes","n":16}');
    assert.equal(r.divergence.actual, '{"op":"random_bytes","n":8}');
    assert.match(formatReplay(r), /^diverged at host call #1 \(crypto\): host_call_request/);
  });

  it("the changed build without --module (otherBuild) is refused: the hash is not the record's; exit 2", async () => {
    const { record } = await recorded({ bytes: PROBE, functionName: 'probe', input: {} });
    const r = await replayRun(rt, PROBE_CHANGED, record);
    assert.equal(r.status, 'could_not_replay');
    assert.equal(replayExitCode(r), 2);
    if (r.status === 'could_not_replay') assert.equal(r.reason, 'module_mismatch');
  });

  it('a call past the record is a divergence, never served live; fewer calls than the record is one too', async () => {
    const { record } = await recorded({ bytes: PROBE, functionName: 'probe', input: {} });
    const short = { ...record, host_calls: record.host_calls.slice(0, 2) };
    const r = await replayRun(rt, PROBE, short);
    assert.equal(r.status, 'diverged');
    if (r.status === 'diverged') {
      assert.equal(r.divergence.kind, 'host_call_extra');
      assert.equal(r.divergence.call_index, 2);
      // the guest got `unavailable` instead of a live uuid: its output says so
      assert.match(JSON.stringify(r.replay.output), /unavailable/);
    }
    const long = { ...record, host_calls: [...record.host_calls, { ...record.host_calls[0], seq: 3 }] };
    const m = await replayRun(rt, PROBE, long);
    assert.equal(m.status, 'diverged');
    if (m.status === 'diverged') {
      assert.equal(m.divergence.kind, 'host_call_missing');
      assert.equal(m.divergence.call_index, 3);
    }
  });

  it('a WASI read past the record is a divergence (clock, random)', async () => {
    const { record } = await recorded({ bytes: PROBE, functionName: 'probe', input: {} });
    const r = await replayRun(rt, PROBE, { ...record, wasi: { ...record.wasi, clocks: record.wasi.clocks.slice(0, 1) } });
    assert.equal(r.status, 'diverged');
    if (r.status === 'diverged') assert.deepEqual([r.divergence.kind, r.divergence.call_index], ['wasi_clock', 1]);
    const q = await replayRun(rt, PROBE, { ...record, wasi: { ...record.wasi, random: [Buffer.alloc(4).toString('base64')] } });
    assert.equal(q.status, 'diverged');
    if (q.status === 'diverged') assert.deepEqual([q.divergence.kind, q.divergence.call_index], ['wasi_random', 0]);
  });

  it('an edited output in the record is found as the output divergence', async () => {
    const { record } = await recorded({ bytes: PROBE, functionName: 'probe', input: {} });
    const edited = { ...record, result: { ...record.result, output_json: record.result.output_json!.replace('"input_bytes":2', '"input_bytes":3') } };
    const r = await replayRun(rt, PROBE, edited);
    assert.equal(r.status, 'diverged');
    if (r.status === 'diverged') {
      assert.equal(r.divergence.kind, 'output');
      assert.match(r.divergence.message, /at \$\.input_bytes: 3 -> 2/);
    }
    const fuel = await replayRun(rt, PROBE, { ...record, result: { ...record.result, fuel_consumed: record.result.fuel_consumed + 1 } });
    assert.equal(fuel.status, 'diverged');
    if (fuel.status === 'diverged') assert.equal(fuel.divergence.kind, 'fuel');
  });
});

describe('records that cannot be replayed say so (could_not_replay, exit 2)', () => {
  it('a record cut by its bounds ($cut) is not replayable', async () => {
    const result = await rt.run({ bytes: PROBE, functionName: 'probe', input: {}, record: { maxBytes: 100 } });
    const record = buildRunRecord(result, { module: { id: null, name: null, version: null }, recordedAt: new Date().toISOString(), maxBytes: 100 })!;
    assert.equal(record.replayable, false);
    assert.equal(record.not_replayable_reason, 'record_cut');
    assert.ok(record.cut.length > 0);
    const r = await replayRun(rt, PROBE, record);
    assert.equal(r.status, 'could_not_replay');
    assert.equal(replayExitCode(r), 2);
    if (r.status === 'could_not_replay') {
      assert.equal(r.reason, 'record_cut');
      assert.match(r.message, /\$cut at host_calls\[\d\]/);
    }
  });

  it('a record in which masking changed what the guest read is not replayable, and holds no secret', async () => {
    const secret = 'hunter2-very-secret';
    const { record } = await recorded({ bytes: PROBE, functionName: 'probe', input: { token: secret } }, createMasker([secret]));
    assert.equal(record.replayable, false);
    assert.deepEqual(record.masked, ['input_json']);
    assert.ok(!JSON.stringify(record).includes(secret));
    const r = await replayRun(rt, PROBE, record);
    assert.equal(r.status, 'could_not_replay');
    if (r.status === 'could_not_replay') assert.equal(r.reason, 'masked');
  });

  it('a run that timed out is not replayable; an unknown version or a malformed record neither', async () => {
    const loop = fx('endless-loop/endless-loop.wasm');
    const prepared = await rt.prepare(loop);
    const fn = prepared.entries[0].name;
    const { record } = await recorded({ bytes: loop, functionName: fn, input: {}, limits: { timeoutMs: 200, fuel: 1e12 } });
    assert.equal(record.result.error?.code, 'timeout');
    const r = await replayRun(rt, loop, record);
    assert.equal(r.status, 'could_not_replay');
    if (r.status === 'could_not_replay') assert.equal(r.reason, 'wall_clock');

    const v = await replayRun(rt, loop, { ...record, version: 99 });
    assert.deepEqual(v.status === 'could_not_replay' && v.reason, 'unsupported_version');
    const bad = await replayRun(rt, loop, { ...record, host_calls: [{ function: 1 }] });
    assert.equal(bad.status, 'could_not_replay');
    if (bad.status === 'could_not_replay') {
      assert.equal(bad.reason, 'record_unavailable');
      assert.match(bad.message, /host_calls\[0\]/);
    }
  });
});

describe('guests in other languages replay to the same output and fuel', () => {
  it('wasi-probe (C command): stdin, env, clocks and getentropy', async () => {
    const bytes = fx('wasi-probe/wasi-probe.wasm');
    const { result, record } = await recorded({ bytes, functionName: '_start', input: { exit_code: 0 }, env: { JOB_ID: 'j', EXECUTION_ID: 'e' } });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(record.wasi.stdin_bytes, record.input_json.length);
    assert.ok(record.wasi.clocks.length >= 2 && record.wasi.random.length >= 1, JSON.stringify(record.wasi));
    await assertReproduces(bytes, result, record);
  });

  it('order-validation (Go command): the Go runtime reads random bytes and clocks at start', async () => {
    const bytes = fx('order-validation/order-validation.wasm');
    const input = { steps: { fetch_order: { output: { amount: 10, customer: { email: 'a@b.co' }, items: [{ sku: 'x' }] } } } };
    const { result, record } = await recorded({ bytes, functionName: '_start', input, limits: { fuel: 20_000_000 } });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.ok(record.wasi.random.length + record.wasi.clocks.length > 0, 'the Go runtime read the clock or random');
    await assertReproduces(bytes, result, record);
  });

  it('low-stock (AssemblyScript, a start function)', async () => {
    const bytes = fx('low-stock/low-stock.wasm');
    const { result, record } = await recorded({ bytes, functionName: 'route_decision', input: { steps: { check_stock: { output: { quantity: 42 } } } } });
    assert.equal(result.ok, true, JSON.stringify(result));
    await assertReproduces(bytes, result, record);
  });
});

describe('signed-report (C): file_read, crypto sha256 and hmac_sha256 with a secret key (served in the worker: the key is granted by name), time, file_write', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vecron-replay-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('replays from the record with the files gone and no host functions at all', async () => {
    const bytes = fx('signed-report/signed-report.wasm');
    const blobs = new FsBlobStore(join(dir, 'blobs'));
    const session = testSession({
      blobs,
      permissions: [perm('file:read', 'input/*.csv'), perm('file:write', 'reports/*'), perm('secret:use', 'REPORT_KEY')],
      variables: { REPORT_KEY: 'k3y-of-the-report-signer' },
    });
    await blobs.put(`jobs/${session.jobId}/input/sales.csv`, Buffer.from('id,amount\n1,10.5\n2,20\n'));
    const req: WasmRunRequest = {
      bytes,
      functionName: 'sign_report',
      input: { csv_path: 'input/sales.csv', report_path: 'reports/sales.json', key_secret: 'REPORT_KEY' },
      host: createHostDispatch(session),
    };
    const { result, record } = await recorded(req);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal((result as any).output.rows, 2, JSON.stringify(result));
    assert.deepEqual(
      record.host_calls.map((c) => [c.function, c.served, c.outcome]),
      [
        ['file_read', 'host', 'ok'],
        ['crypto', 'worker', 'ok'],
        ['time', 'worker', 'ok'],
        ['crypto', 'worker', 'ok'],
        ['file_write', 'host', 'ok'],
      ],
    );
    await blobs.delete(`jobs/${session.jobId}/input/sales.csv`);
    await blobs.delete(`jobs/${session.jobId}/reports/sales.json`);
    await new Promise((r) => setTimeout(r, 5));
    await assertReproduces(bytes, result, record);
    // nothing was written by the replay
    assert.equal(await blobs.get(`jobs/${session.jobId}/reports/sales.json`).catch(() => null), null);
  });
});

describe('customer-analysis-plugin (Rust): http_request to a loopback server, db_query to a PostgreSQL wire server', () => {
  let api: TestServer;
  let sql: SqlServer;
  before(async () => {
    api = await startHttpServer((req, res) => {
      if (req.url === '/customers') return json(res, 200, { data: { customers: CUSTOMERS }, served_at: Date.now() });
      return json(res, 404, {});
    });
    sql = await openSqlServer('pglite');
    await sql.sql(
      'CREATE TABLE customer_analysis (execution_id varchar(64), customer_id varchar(64), name varchar(200), revenue numeric(14,2), tier varchar(16))',
    );
  });
  after(async () => {
    await api?.close().catch(() => {});
    await sql?.close().catch(() => {});
  });

  it('replays with the HTTP server and the database closed: the same output, fuel and calls', async () => {
    const bytes = fx('customer-analysis-plugin/customer-analysis-plugin.wasm');
    const session = testSession({
      blobs: new FsBlobStore(mkdtempSync(join(tmpdir(), 'vecron-replay-blobs-'))),
      permissions: [perm('http:read', `${api.url}/customers`), perm('database:write', 'analytics_db/customer_analysis')],
      variables: { analytics_db: sql.url },
    });
    const { result, record } = await recorded({
      bytes,
      functionName: 'analyse_customers',
      input: { customers_url: `${api.url}/customers`, datasource: 'analytics_db', execution_id: 'exec-1', on_platinum: 'notify' },
      limits: { fuel: 20_000_000 },
      host: createHostDispatch(session),
    });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual((result as any).output.customers, CUSTOMER_TIERS.customers);
    assert.deepEqual(
      record.host_calls.map((c) => [c.function, c.served, c.outcome]),
      [
        ['http_request', IO_SERVED, 'ok'],
        ['db_query', IO_SERVED, 'ok'],
      ],
    );
    const seen = api.seen.length;
    await api.close();
    await sql.close();
    await assertReproduces(bytes, result, record);
    assert.equal(api.seen.length, seen, 'the replay sent nothing');
  });
});
