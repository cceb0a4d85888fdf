/**
 * http_request and db_query called by a real guest through the runtime and its bridge (the
 * host-abi fixture passes its input as the request and returns the answer as its output): the guest
 * gets the result or the error answer, and a call that outlives the step's timeout ends the run
 * within timeout + 1 s with its I/O aborted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { closeDatabasePools } from '../../../src/executors/database/client.ts';
import { dbQuery } from '../../../src/wasm/host/db-query.ts';
import { closeHttpAgents, httpRequest } from '../../../src/wasm/host/http-request.ts';
import { WasmRuntime } from '../../../src/wasm/runtime/index.ts';
import { openSqlServer, type SqlServer } from '../../helpers/sql-servers.ts';
import { output, startUpstream, testDispatch, testSession } from './support.ts';

const guest = new Uint8Array(readFileSync(new URL('../../../fixtures/wasm/host-abi/host-abi.wasm', import.meta.url)));
const rt = new WasmRuntime({ poolSize: 1 });

describe('network host functions called by a guest', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base = '';
  let db: SqlServer;
  before(async () => {
    upstream = await startUpstream(() => ({ customers: [{ id: 1, spend: 120 }] }));
    base = upstream.base;
    db = await openSqlServer('pglite');
    await db.sql('CREATE TABLE customer_tiers (id INT PRIMARY KEY, tier TEXT NOT NULL)');
  });
  after(async () => {
    await rt.close();
    await closeHttpAgents();
    await closeDatabasePools();
    await db?.close();
    await upstream?.close();
  });

  const session = (permissions: any[]) => testSession({ permissions, variables: { crm: db.url }, deadline: Date.now() + 30_000 });

  it('fetches with http_request and writes with db_query, granted exactly that', async () => {
    const s = session([
      { type: 'http:read', resource_pattern: `${base}/customers` },
      { type: 'database:write', resource_pattern: 'crm/customer_tiers' },
    ]);
    const host = testDispatch(s, [httpRequest, dbQuery]);
    const got = await rt.run({ bytes: guest, functionName: 'http_request', input: { method: 'GET', url: `${base}/customers` }, host });
    const answer = output(got);
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.body), { customers: [{ id: 1, spend: 120 }] });
    assert.equal(got.hostCalls?.[0].target, `${base}/customers`);

    const wrote = await rt.run({
      bytes: guest,
      functionName: 'db_query',
      input: { datasource: 'crm', sql: 'INSERT INTO customer_tiers (id, tier) VALUES ($1, $2)', params: [1, 'silver'] },
      host,
    });
    assert.equal(output(wrote).affected_rows, 1);
    assert.equal((await db.sql('SELECT tier FROM customer_tiers WHERE id = 1'))[0].tier, 'silver');

    // Anything else is an error answer the guest reads, not a trap.
    const denied = await rt.run({ bytes: guest, functionName: 'db_query', input: { datasource: 'crm', sql: 'SELECT * FROM customer_tiers' }, host });
    assert.equal(output(denied).error.code, 'permission_denied');
    assert.equal(denied.hostCalls?.[0].outcome, 'permission_denied');
    assert.equal(s.denials.length, 1);
    const egress = await rt.run({ bytes: guest, functionName: 'http_request', input: { method: 'GET', url: 'http://169.254.169.254/' }, host });
    assert.equal(output(egress).error.code, 'permission_denied', 'the URL is not granted: refused before the egress check');
  });

  it('a request that outlives the step timeout ends the run within timeout + 1 s and is aborted', async () => {
    const s = session([{ type: 'http:read', resource_pattern: null }]);
    const before = upstream.closed();
    const t0 = Date.now();
    const r = await rt.run({
      bytes: guest,
      functionName: 'http_request',
      input: { method: 'GET', url: `${base}/hang` },
      host: testDispatch(s, [httpRequest]),
      limits: { timeoutMs: 500 },
    });
    const took = Date.now() - t0;
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, 'timeout');
    assert.ok(took < 1500, `ended after ${took} ms`);
    const end = Date.now() + 5000;
    while (upstream.closed() === before && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
    assert.ok(upstream.closed() > before, 'the server saw the request aborted');
  });
});
