/**
 * Suspending host calls (JSPI, issue 15): with node's --experimental-wasm-stack-switching (the test
 * runner passes it, as `vecron start` does; VECRON_JSPI=0 runs without), a guest's http_request and
 * db_query are served by its own worker while the guest is suspended, over the run's session sent
 * from the main thread. The same answers, denials (audited on the main thread), egress refusals,
 * timeouts and cancels as the bridge; the calls the worker cannot serve go over the bridge; hostile
 * patterns end the run, never the process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { closeDatabasePools } from '../../../src/executors/database/client.ts';
import { createHostDispatch } from '../../../src/wasm/host/index.ts';
import { closeHttpAgents } from '../../../src/wasm/host/http-request.ts';
import { createLocalSession } from '../../../src/wasm/host/session.ts';
import { WasmRuntime, jspiAvailable, jspiStackKb } from '../../../src/wasm/runtime/index.ts';
import { openSqlServer, type SqlServer } from '../../helpers/sql-servers.ts';
import { output, startUpstream } from './support.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../../fixtures/wasm/host-abi/${name}.wasm`, import.meta.url)));
const guest = fixture('host-abi');
const hostile = fixture('host-abi-suspend');
/** Where the calls are served with JSPI on: the worker when this process has it (the test runner's flag), else the bridge. */
const SERVED = jspiAvailable() ? 'worker' : 'host';
const rt = new WasmRuntime({ poolSize: 1 });
const bridgeOnly = new WasmRuntime({ poolSize: 1, jspi: false });

describe('suspending host calls (JSPI)', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base = '';
  let db: SqlServer;
  before(async () => {
    upstream = await startUpstream((url) => ({ path: url }));
    base = upstream.base;
    db = await openSqlServer('pglite');
    await db.sql('CREATE TABLE tiers (id INT PRIMARY KEY, tier TEXT NOT NULL)');
    await db.sql("INSERT INTO tiers VALUES (1, 'gold'), (2, 'silver')");
  });
  after(async () => {
    await rt.close();
    await bridgeOnly.close();
    await closeHttpAgents();
    await closeDatabasePools();
    await db?.close();
    await upstream?.close();
  });

  const session = (grants: { type: string; resource_pattern: string | null }[], deadline = Date.now() + 30_000) =>
    createLocalSession({ grants: grants as never, datasources: { crm: db.url }, deadline });

  it('the runtime uses JSPI exactly when the process has it (and not when told not to)', () => {
    assert.equal(rt.jspi, jspiAvailable());
    assert.equal(bridgeOnly.jspi, false);
    if (process.env.VECRON_JSPI !== '0') assert.equal(jspiAvailable(), true, 'the test runner starts node with --experimental-wasm-stack-switching');
    assert.equal(jspiStackKb(), jspiAvailable() ? 1024 : 984);
  });

  it('http_request and db_query are served in the worker, with the answers of the bridge', async () => {
    const s = session([
      { type: 'http:read', resource_pattern: `${base}/**` },
      { type: 'database:read', resource_pattern: 'crm/tiers' },
    ]);
    const httpReq = { method: 'GET', url: `${base}/a?b=1` };
    const dbReq = { datasource: 'crm', sql: 'SELECT id, tier FROM tiers WHERE id = $1', params: [2] };
    for (const [fn, input] of [
      ['http_request', httpReq],
      ['db_query', dbReq],
    ] as const) {
      const here = await rt.run({ bytes: guest, functionName: fn, input, host: createHostDispatch(s) });
      const bridged = await bridgeOnly.run({ bytes: guest, functionName: fn, input, host: createHostDispatch(s) });
      assert.equal(here.hostCalls?.[0].served, SERVED, fn);
      assert.equal(bridged.hostCalls?.[0].served, 'host', fn);
      const a = output(here);
      const b = output(bridged);
      if (fn === 'http_request') {
        assert.equal(a.status, 200);
        assert.deepEqual(JSON.parse(a.body), { path: '/a?b=1' });
        assert.deepEqual(JSON.parse(a.body), JSON.parse(b.body));
      } else {
        assert.deepEqual(a, b);
        assert.deepEqual(a.rows, [{ id: 2, tier: 'silver' }]);
      }
      // The same fuel, wherever the call was served (a replay charges it the same way).
      assert.equal(here.fuelConsumed, bridged.fuelConsumed, `${fn}: fuel`);
      assert.equal(here.hostCalls?.[0].target, bridged.hostCalls?.[0].target);
    }
  });

  it('a denial in the worker is the guest answer, recorded, and reported to the main thread session', async () => {
    const s = session([{ type: 'database:read', resource_pattern: 'crm/other_table' }]);
    const r = await rt.run({ bytes: guest, functionName: 'db_query', input: { datasource: 'crm', sql: 'SELECT * FROM tiers' }, host: createHostDispatch(s) });
    assert.equal(output(r).error.code, 'permission_denied');
    assert.equal(r.hostCalls?.[0].served, SERVED);
    assert.equal(r.hostCalls?.[0].permission, 'database:read');
    assert.deepEqual(
      s.denials.map((d) => [d.function, d.permission, d.resource]),
      [['db_query', 'database:read', 'crm/tiers']],
    );
    // An http call the module was not granted: the same, and no request reaches the server.
    const before = upstream.closed();
    const h = await rt.run({
      bytes: guest,
      functionName: 'http_request',
      input: { method: 'POST', url: `${base}/x`, body: 'hi' },
      host: createHostDispatch(s),
    });
    assert.equal(output(h).error.code, 'permission_denied');
    assert.equal(s.denials.length, 2);
    assert.equal(upstream.closed(), before);
  });

  it("the worker applies the main thread's egress policy: metadata refused, no connection", async () => {
    const s = session([{ type: 'http:read', resource_pattern: null }]);
    const r = await rt.run({
      bytes: guest,
      functionName: 'http_request',
      input: { method: 'GET', url: 'http://169.254.169.254/latest/meta-data/' },
      host: createHostDispatch(s),
    });
    assert.equal(output(r).error.code, 'egress_denied');
    assert.equal(r.hostCalls?.[0].served, SERVED);
  });

  it('a datasource the module reaches only through a glob pattern is served over the bridge', async () => {
    const s = session([{ type: 'database:read', resource_pattern: '*/tiers' }]);
    const r = await rt.run({
      bytes: guest,
      functionName: 'db_query',
      input: { datasource: 'crm', sql: 'SELECT count(*)::int AS n FROM tiers' },
      host: createHostDispatch(s),
    });
    assert.deepEqual(output(r).rows, [{ n: 2 }]);
    assert.equal(r.hostCalls?.[0].served, 'host');
  });

  it('a run whose stack limit is not the suspendable stack size uses the bridge', async () => {
    const s = session([{ type: 'http:read', resource_pattern: `${base}/**` }]);
    const r = await rt.run({
      bytes: guest,
      functionName: 'http_request',
      input: { method: 'GET', url: `${base}/s` },
      limits: { stackKb: 512 },
      host: createHostDispatch(s),
    });
    assert.equal(output(r).status, 200);
    assert.equal(r.hostCalls?.[0].served, 'host');
  });

  it('a call that outlives the timeout ends the run within timeout + 1 s, its request aborted', async () => {
    const s = session([{ type: 'http:read', resource_pattern: `${base}/**` }]);
    const before = upstream.closed();
    const t0 = performance.now();
    const r = await rt.run({
      bytes: guest,
      functionName: 'http_request',
      input: { method: 'GET', url: `${base}/hang` },
      limits: { timeoutMs: 800 },
      host: createHostDispatch(s),
    });
    const took = performance.now() - t0;
    assert.equal(r.ok, false);
    assert.equal(r.ok ? '' : r.error.code, 'timeout');
    assert.ok(took < 800 + 1000, `ended after ${took.toFixed(0)} ms`);
    assert.equal(r.hostCalls?.[0].outcome, 'timeout');
    for (let i = 0; i < 50 && upstream.closed() === before; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(upstream.closed(), before + 1, 'the hanging request was aborted');
    // The worker is fine afterwards.
    const ok = await rt.run({ bytes: guest, functionName: 'http_request', input: { method: 'GET', url: `${base}/after` }, host: createHostDispatch(s) });
    assert.equal(output(ok).status, 200);
  });

  it('a cancel during a call ends the run with cancelled', async () => {
    const s = session([{ type: 'http:read', resource_pattern: `${base}/**` }]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const r = await rt.run({
      bytes: guest,
      functionName: 'http_request',
      input: { method: 'GET', url: `${base}/hang` },
      signal: ac.signal,
      host: createHostDispatch(s),
    });
    assert.equal(r.ok ? '' : r.error.code, 'cancelled');
    assert.equal(r.hostCalls?.[0].outcome, 'cancelled');
  });

  it('hostile patterns: a call from alloc while suspended traps; a deep stack suspends and resumes', async () => {
    const s = session([{ type: 'http:read', resource_pattern: `${base}/**` }]);
    const input = { method: 'GET', url: `${base}/h` };
    const re = await rt.run({ bytes: hostile, functionName: 'reenter', input, host: createHostDispatch(s) });
    if (SERVED === 'worker') {
      assert.equal(re.ok, false);
      assert.match(re.ok ? '' : `${re.error.code} ${re.error.message}`, /trap|abi_error/);
    }
    const deep = await rt.run({ bytes: hostile, functionName: 'deep', input, host: createHostDispatch(s) });
    assert.equal(output(deep).status, 200);
    assert.equal(deep.hostCalls?.[0].served, SERVED);
    // Recursion past the stack while a call is in flight elsewhere is the guest's stack_overflow.
    const again = await rt.run({ bytes: hostile, functionName: 'http_request', input, host: createHostDispatch(s) });
    assert.equal(output(again).status, 200);
  });
});
