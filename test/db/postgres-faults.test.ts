/**
 * Connection faults on a real PostgreSQL, without restarting the shared server: the suite ends
 * its own connections with pg_terminate_backend (the server sends 57P01, "terminating connection
 * due to administrator command", as on a restart). A whole-server restart under load is in
 * test/cluster/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createPostgresDatabase } from '../helpers/db.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import type { Database } from '../../src/db/database.ts';
import { saveOutcome, LeaseTracker, OutcomeAbandoned } from '../../src/queue/outcome-retry.ts';

const skip = !process.env.TEST_DATABASE_URL && 'TEST_DATABASE_URL is not set';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('postgres: connection faults', { skip }, () => {
  let url: string;
  let drop: () => Promise<void>;
  let admin: pg.Client;
  let db: Database;
  const errors: Error[] = [];

  before(async () => {
    ({ url, drop } = await createPostgresDatabase('vecron_faults'));
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    db = await openPostgres(url, { poolSize: 4, onError: (e) => errors.push(e) });
  });
  after(async () => {
    await db?.close();
    await admin?.end();
    await drop?.();
  });

  const terminate = async (where: string, params: unknown[] = []) =>
    (
      await admin.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${where}`,
        params,
      )
    ).rows.length;

  it('a connection ended while checked out in transaction() fails that transaction, not the process', async () => {
    const result = db.transaction(async (tx) => {
      const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      assert.equal(await terminate('pid = $1', [rows[0].pid]), 1);
      await sleep(200); // the server's 57P01 arrives while the client is checked out and idle
      await tx.query('SELECT 1');
    });
    await assert.rejects(result);
    assert.ok(
      errors.some((e) => /terminating connection|Connection terminated/i.test(e.message)),
      'the error was handled by the listener',
    );
    // The broken client was not returned to the pool: the next statements work.
    for (let i = 0; i < 8; i++) assert.equal((await db.query<{ n: number }>('SELECT 1 AS n')).rows[0].n, 1);
    assert.equal(db.connectionState().ok, true);
  });

  it('the same for withSession()', async () => {
    const result = db.withSession(async (s) => {
      const { rows } = await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await terminate('pid = $1', [rows[0].pid]);
      await sleep(200);
      await s.query('SELECT 1');
    });
    await assert.rejects(result);
    assert.equal((await db.query<{ n: number }>('SELECT 1 AS n')).rows[0].n, 1);
  });

  it('the LISTEN connection comes back by itself, listens again and fires onReconnect', async () => {
    const got: string[] = [];
    let reconnects = 0;
    const off = db.onReconnect(() => reconnects++);
    const unlisten = await db.listen('fault_channel', (p) => got.push(p));
    await db.notify('fault_channel', 'before');
    await waitFor('the first notification', () => got.includes('before'));
    assert.equal(db.connectionState().listener, 'connected');

    // Twice in a row: a reconnect attempt that meets a dead connection again is retried too.
    for (const round of [1, 2]) {
      assert.ok((await terminate(`query LIKE 'LISTEN%'`)) >= 1, 'the listener connection was found and ended');
      await waitFor(`reconnect ${round}`, () => reconnects >= round);
      await db.notify('fault_channel', `after-${round}`);
      await waitFor(`the notification after reconnect ${round}`, () => got.includes(`after-${round}`));
    }
    assert.equal(db.connectionState().listener, 'connected');
    off();
    await unlisten();
  });
});

describe('saveOutcome: retries within the lease', () => {
  const transient = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });

  it('retries transient errors and returns the write once it succeeds', async () => {
    const leases = new LeaseTracker(10_000);
    leases.renewed('e1', Date.now());
    let calls = 0;
    const r = await saveOutcome(
      async () => {
        if (++calls < 4) throw transient();
        return 'written';
      },
      { what: 'the outcome', executionId: 'e1', leases, minDelayMs: 10, maxDelayMs: 20 },
    );
    assert.equal(r, 'written');
    assert.equal(calls, 4);
  });

  it('does not retry an error that would fail again', async () => {
    const leases = new LeaseTracker(10_000);
    leases.renewed('e1', Date.now());
    let calls = 0;
    const boom = Object.assign(new Error('duplicate key'), { code: '23505' });
    await assert.rejects(
      saveOutcome(
        async () => {
          calls++;
          throw boom;
        },
        { what: 'x', executionId: 'e1', leases },
      ),
      boom,
    );
    assert.equal(calls, 1);
  });

  it('gives up when the lease runs out, and a renewal meanwhile extends it', async () => {
    const leases = new LeaseTracker(300);
    const t0 = Date.now();
    leases.renewed('e1', t0);
    let calls = 0;
    const p = saveOutcome(
      async () => {
        calls++;
        throw transient();
      },
      { what: 'x', executionId: 'e1', leases, minDelayMs: 10, maxDelayMs: 40 },
    );
    setTimeout(() => leases.renewed('e1', Date.now()), 200); // the heartbeat got through once
    const err = await p.then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof OutcomeAbandoned);
    assert.equal(err.reason, 'lease_expired');
    assert.ok(Date.now() - t0 >= 450, 'the renewal at 200 ms moved the end to about 500 ms');
    assert.ok(calls > 3);
  });

  it('stops at once when the lease is lost to another worker', async () => {
    const leases = new LeaseTracker(60_000);
    leases.renewed('e1', Date.now());
    setTimeout(() => leases.markLost('e1'), 100);
    const t0 = Date.now();
    const err = await saveOutcome(
      async () => {
        throw transient();
      },
      { what: 'x', executionId: 'e1', leases, minDelayMs: 10, maxDelayMs: 20 },
    ).then(
      () => null,
      (e) => e,
    );
    assert.equal(err?.reason, 'lease_lost');
    assert.ok(Date.now() - t0 < 1000);
  });
});
