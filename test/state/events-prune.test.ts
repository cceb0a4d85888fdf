import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database.ts';
import { eventError, eventsAfter, pruneEvents } from '../../src/state/events.ts';
import { forEachDatabase, openTestDb, type DbKind } from '../helpers/db.ts';

forEachDatabase((kind: DbKind) => {
  describe(`${kind}: the stored event log`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(async () => {
      await db?.close();
    });

    /** `n` rows (statements) of two events each, written `ageSeconds` ago. */
    const insert = (ageSeconds: number, n: number) =>
      db.query(
        `INSERT INTO status_events (at, events)
         SELECT now() - make_interval(secs => $2),
                json_build_array(json_build_object('kind', 'execution', 'execution_id', $1::uuid, 'job_id', $1::uuid, 'status', 'queued', 'at', now() - make_interval(secs => $2)),
                                 json_build_object('kind', 'execution', 'execution_id', $1::uuid, 'job_id', $1::uuid, 'status', 'running', 'at', now() - make_interval(secs => $2)))
         FROM generate_series(1, $3)`,
        [randomUUID(), ageSeconds, n],
      );

    it('pruning deletes the events older than the retention, in batches of rows, and keeps the rest', async () => {
      await insert(7200, 25);
      await insert(10, 3);
      assert.equal(await pruneEvents(db, 3600, 10), 25, 'three batches of at most 10 rows');
      const left = await eventsAfter(db, 0, {});
      assert.equal(left.length, 6, 'the two events of each of the three rows kept');
      assert.ok(left.every((e) => Date.now() - new Date(e.at).getTime() < 3600_000));
      assert.equal(await pruneEvents(db, 3600, 10), 0, 'nothing more to delete');
    });

    it('an event carries an error of at most about 2 KB', () => {
      assert.equal(eventError(undefined), null);
      assert.equal(eventError({ code: 'x', message: 'short' }), '{"code":"x","message":"short"}');
      const long = JSON.parse(eventError({ message: 'y'.repeat(5000) })!);
      assert.equal(long.truncated.length, 2000);
    });
  });
});
