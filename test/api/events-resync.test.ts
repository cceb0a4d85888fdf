/**
 * The live stream after the LISTEN connection was lost (a PostgreSQL restart, a killed backend):
 * what was NOTIFYed while it was away never arrives, so each open stream replays the stored events
 * after the last one it sent once the listener is back. PostgreSQL only (PGlite has no connection
 * to lose); the connection is ended with pg_terminate_backend, as a restart would (57P01).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { appendEvents } from '../../src/state/events.ts';
import { API_ONLY, waitFor } from './support.ts';
import { openStream } from '../helpers/sse.ts';

const skip = !process.env.TEST_DATABASE_URL && 'TEST_DATABASE_URL is not set';

describe('postgres: the event stream after the listener reconnects', { skip }, () => {
  let t: TestApp;
  let admin: pg.Client;

  before(async () => {
    t = await startTestApp('postgres', API_ONLY);
    const { rows } = await t.app.db.query<{ db: string }>('SELECT current_database() AS db');
    const u = new URL(process.env.TEST_DATABASE_URL!);
    u.pathname = `/${rows[0].db}`;
    admin = new pg.Client({ connectionString: u.toString() });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await t?.close();
  });

  it('replays, once each, the events committed while the listener was away', async () => {
    const s = await openStream(t, '/api/v1/events');
    try {
      assert.equal((await s.next()).retry, '3000');
      const before = (await appendEvents(t.app.db, [{ kind: 'execution', execution_id: randomUUID(), job_id: randomUUID(), status: 'queued' }]))[0];
      assert.equal((await s.nextEvent()).json.seq, before.seq);

      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'",
      );
      assert.ok(killed.rows.length >= 1, 'the LISTEN connection was found and ended');
      // Committed at once, while the listener is down (it reconnects after a backoff): its NOTIFY reaches no one.
      const missed = await appendEvents(t.app.db, [
        { kind: 'execution', execution_id: randomUUID(), job_id: randomUUID(), status: 'running' },
        { kind: 'step', execution_id: randomUUID(), job_id: randomUUID(), step_id: 'a', status: 'succeeded' },
      ]);
      await waitFor(async () => t.app.db.connectionState().listener === 'connected', 'the listener is back', 10_000);
      const later = (await appendEvents(t.app.db, [{ kind: 'execution', execution_id: randomUUID(), job_id: randomUUID(), status: 'succeeded' }]))[0];

      const got: number[] = [];
      while (got.length < 3) got.push((await s.nextEvent(10_000)).json.seq);
      assert.deepEqual(got, [missed[0].seq, missed[1].seq, later.seq], 'the missed events in order, then the live one, none twice');
    } finally {
      s.close();
    }
  });
});
