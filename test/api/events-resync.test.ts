/**
 * The live stream does not depend on a connection staying up: events are read from the stored log
 * (src/events/bus.ts polls it), so when the database connections of the app are ended (a
 * PostgreSQL restart, a killed backend), what was committed meanwhile still arrives, once each, in
 * order. PostgreSQL only (PGlite has no connection to lose); the connections are ended with
 * pg_terminate_backend, as a restart would (57P01).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { appendEvents } from '../../src/state/events.ts';
import type { Queryable } from '../../src/db/database.ts';
import { API_ONLY, waitFor } from './support.ts';
import { openStream } from '../helpers/sse.ts';

const skip = !process.env.TEST_DATABASE_URL && 'TEST_DATABASE_URL is not set';

describe('postgres: the event stream after the database connections were ended', { skip }, () => {
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

  const event = (status: string) => ({ kind: 'execution' as const, execution_id: randomUUID(), job_id: randomUUID(), status });

  it('delivers, once each and in order, the events committed while its connections were gone', async () => {
    const s = await openStream(t, '/api/v1/events');
    try {
      assert.equal((await s.next()).retry, '3000');
      const before = (await appendEvents(t.app.db, [event('queued')]))[0];
      assert.equal((await s.nextEvent()).json.seq, before.seq);

      const killed = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
      assert.ok(killed.rows.length >= 1, "the app's connections were found and ended");
      // Committed by another client while the app has no connection: the stream reads it from the log.
      const missed = await appendEvents(admin as unknown as Queryable, [event('running'), { ...event('succeeded'), kind: 'step', step_id: 'a' }]);
      let later: { seq: number } | undefined;
      await waitFor(
        async () => {
          later = (await appendEvents(t.app.db, [event('succeeded')]).catch(() => []))[0];
          return later !== undefined;
        },
        'the app to reach the database again',
        10_000,
      );

      const got: number[] = [];
      while (got.length < 3) got.push((await s.nextEvent(10_000)).json.seq);
      assert.deepEqual(got, [missed[0].seq, missed[1].seq, later!.seq], 'the missed events in order, then the live one, none twice');
      assert.equal(missed[1].seq, missed[0].seq + 1, 'the two events of one statement share a row');
      await assert.rejects(s.nextEvent(300), /no event-stream frame/, 'nothing twice');
    } finally {
      s.close();
    }
  });
});
