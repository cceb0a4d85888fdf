import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { forEachDatabase } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { appendEvents, type StatusEvent } from '../../src/state/events.ts';
import { KEEP_ALIVE_MS } from '../../src/api/routes/events.ts';
import { API_ONLY, assertError, waitFor } from './support.ts';
import { openStream, type Stream } from '../helpers/sse.ts';

/** Appends an event to the real event log (the table and NOTIFY, as every transition in src/state does), for executions that need not exist. */
async function append(t: TestApp, over: Partial<StatusEvent> = {}): Promise<StatusEvent> {
  const [e] = await appendEvents(t.app.db, [{ kind: 'execution', execution_id: randomUUID(), job_id: randomUUID(), status: 'running', ...over }]);
  return e;
}

forEachDatabase((kind) => {
  describe(`${kind}: GET /api/v1/events (server-sent events)`, () => {
    let t: TestApp;
    /** Live subscriptions to the event bus, counted through its public subscribe(). */
    let active = 0;

    before(async () => {
      t = await startTestApp(kind, API_ONLY);
      const bus = t.app.events;
      const subscribe = bus.subscribe.bind(bus);
      bus.subscribe = (fn) => {
        active++;
        const unsubscribe = subscribe(fn);
        let done = false;
        return () => {
          if (!done) active--;
          done = true;
          unsubscribe();
        };
      };
    });
    after(async () => {
      await t?.close();
    });

    it('streams events with kind, their sequence number as id and the JSON payload', async () => {
      const s = await openStream(t, '/api/v1/events');
      try {
        assert.equal(s.status, 200);
        assert.match(s.headers.get('content-type') ?? '', /^text\/event-stream/);
        assert.equal(s.headers.get('cache-control'), 'no-cache');
        assert.equal(s.headers.get('x-accel-buffering'), 'no');
        assert.equal((await s.next()).retry, '3000');

        const e1 = await append(t);
        const e2 = await append(t, { kind: 'step', step_id: 'fetch', status: 'failed', error: { code: 'http_status', message: 'boom' } });
        assert.ok(e2.seq > e1.seq);

        const f1 = await s.nextEvent();
        assert.equal(f1.event, 'execution');
        assert.equal(f1.id, String(e1.seq));
        assert.deepEqual(f1.json, e1);
        const f2 = await s.nextEvent();
        assert.equal(f2.event, 'step');
        assert.equal(f2.id, String(e2.seq));
        assert.deepEqual(f2.json, e2);
        assert.equal(f2.json.step_id, 'fetch');
        assert.deepEqual(f2.json.error, { code: 'http_status', message: 'boom' });
      } finally {
        s.close();
      }
    });

    it('job_id and execution_id filters deliver only matching events', async () => {
      const jobA = randomUUID();
      const execA = randomUUID();
      const all = await openStream(t, '/api/v1/events');
      const byJob = await openStream(t, `/api/v1/events?job_id=${jobA}`);
      const byExec = await openStream(t, `/api/v1/events?execution_id=${execA}`);
      try {
        for (const s of [all, byJob, byExec]) assert.equal((await s.next()).retry, '3000');

        const other = await append(t, { status: 'queued' });
        const sameJobOtherExec = await append(t, { job_id: jobA, status: 'queued' });
        const match = await append(t, { job_id: jobA, execution_id: execA, status: 'succeeded' });

        // The unfiltered stream sees all three, in order: so the filtered ones have had their chance.
        assert.deepEqual((await all.nextEvent()).json, other);
        assert.deepEqual((await all.nextEvent()).json, sameJobOtherExec);
        assert.deepEqual((await all.nextEvent()).json, match);

        const j1 = await byJob.nextEvent();
        assert.deepEqual(j1.json, sameJobOtherExec);
        assert.equal(j1.id, String(sameJobOtherExec.seq), "ids are the events' sequence numbers");
        assert.deepEqual((await byJob.nextEvent()).json, match);

        const x1 = await byExec.nextEvent();
        assert.deepEqual(x1.json, match);
        assert.equal(x1.id, String(match.seq));
      } finally {
        for (const s of [all, byJob, byExec]) s.close();
      }
    });

    it('a viewer token is enough', async () => {
      const s = await openStream(t, '/api/v1/events', await t.token('viewer', 'events-viewer'));
      try {
        assert.equal(s.status, 200);
        assert.equal((await s.next()).retry, '3000');
      } finally {
        s.close();
      }
    });

    it('without a token, or with an unknown one: 401', async () => {
      assertError(await t.api('GET', '/api/v1/events', { token: null }), 401, 'unauthorized', 'missing API token');
      assertError(await t.api('GET', '/api/v1/events', { token: 'vcr_not_a_real_token' }), 401, 'unauthorized');
    });

    it('unknown query parameters are refused', async () => {
      assertError(await t.api('GET', '/api/v1/events?jobid=x'), 400, 'validation_failed', 'jobid');
      assertError(await t.api('GET', '/api/v1/events?job_id=x'), 400, 'validation_failed', 'job_id');
      assertError(await t.api('GET', '/api/v1/events?last_event_id=-1'), 400, 'validation_failed', 'last_event_id');
      assertError(await t.api('GET', '/api/v1/events', { headers: { 'last-event-id': 'abc' } }), 400, 'validation_failed', 'last-event-id');
    });

    it('a client that disconnects is unsubscribed; publishing afterwards is harmless', async () => {
      await waitFor(async () => active === 0, 'earlier streams to be unsubscribed');
      const s = await openStream(t, '/api/v1/events');
      assert.equal((await s.next()).retry, '3000');
      assert.equal(active, 1);
      s.close();
      await waitFor(async () => active === 0, 'the subscription to be removed after the client left');

      await append(t);
      await append(t, { kind: 'step', step_id: 'x' });
      const health = await t.api('GET', '/health', { token: null });
      assert.equal(health.status, 200);

      // and the route still serves new clients
      const again = await openStream(t, '/api/v1/events');
      try {
        assert.equal((await again.next()).retry, '3000');
        const e = await append(t);
        assert.deepEqual((await again.nextEvent()).json, e);
      } finally {
        again.close();
      }
    });

    it('a client that reconnects with Last-Event-ID gets what it missed, in order, then the live events, without repeats', async () => {
      const job = randomUUID();
      const s1 = await openStream(t, `/api/v1/events?job_id=${job}`);
      let lastSeen: StatusEvent;
      try {
        assert.equal((await s1.next()).retry, '3000');
        await append(t, { job_id: job, status: 'queued' });
        lastSeen = (await s1.nextEvent()).json;
      } finally {
        s1.close(); // the connection drops
      }
      // while the client is away: two events of its job, one of another job
      const missed1 = await append(t, { job_id: job, status: 'running' });
      await append(t, { status: 'running' });
      const missed2 = await append(t, { job_id: job, kind: 'step', step_id: 'a', status: 'running' });

      const s2 = await openStream(t, `/api/v1/events?job_id=${job}`, t.adminToken, { 'last-event-id': String(lastSeen.seq) });
      try {
        assert.equal((await s2.next()).retry, '3000', 'the stream still starts with retry:');
        const r1 = await s2.nextEvent();
        assert.equal(r1.id, String(missed1.seq));
        assert.deepEqual(r1.json, missed1);
        assert.deepEqual((await s2.nextEvent()).json, missed2, 'filters apply to the replay too');
        const live = await append(t, { job_id: job, status: 'succeeded' });
        assert.deepEqual((await s2.nextEvent()).json, live);
        await assert.rejects(s2.nextEvent(300), /no event-stream frame/, 'nothing twice');
      } finally {
        s2.close();
      }

      // the same with ?last_event_id= (for clients that cannot set the header on their first connection)
      const s3 = await openStream(t, `/api/v1/events?job_id=${job}&last_event_id=${missed1.seq}`);
      try {
        assert.equal((await s3.next()).retry, '3000');
        assert.deepEqual((await s3.nextEvent()).json, missed2);
      } finally {
        s3.close();
      }
    });

    it('the events of one statement share a row; a reconnect from the middle of it gets the rest, once', async () => {
      const job = randomUUID();
      const other = randomUUID();
      const s1 = await openStream(t, `/api/v1/events?job_id=${job}`);
      let first: string;
      try {
        assert.equal((await s1.next()).retry, '3000');
        const row = await appendEvents(t.app.db, [
          { kind: 'execution', execution_id: randomUUID(), job_id: job, status: 'running' },
          { kind: 'step', execution_id: randomUUID(), job_id: other, step_id: 'x', status: 'running' },
          { kind: 'step', execution_id: randomUUID(), job_id: job, step_id: 'a', status: 'running' },
          { kind: 'step', execution_id: randomUUID(), job_id: job, step_id: 'b', status: 'running' },
        ]);
        assert.deepEqual(
          row.map((e) => e.seq - row[0].seq),
          [0, 1, 2, 3],
          'ids are the row seq plus the index in the row',
        );
        const f = await s1.nextEvent();
        assert.deepEqual(f.json, row[0]);
        assert.equal(f.id, String(row[0].seq));
        first = f.id!;
        const g = await s1.nextEvent();
        assert.deepEqual(g.json, row[2], 'the filter skips the other job in the middle of the row');
        assert.equal(g.id, String(row[2].seq));
      } finally {
        s1.close(); // the client leaves after two of the row's three matching events
      }
      const s2 = await openStream(t, `/api/v1/events?job_id=${job}`, t.adminToken, { 'last-event-id': first });
      try {
        assert.equal((await s2.next()).retry, '3000');
        assert.equal((await s2.nextEvent()).json.step_id, 'a');
        const last = await s2.nextEvent();
        assert.equal(last.json.step_id, 'b');
        await assert.rejects(s2.nextEvent(300), /no event-stream frame/, 'nothing twice');
        const s3 = await openStream(t, `/api/v1/events?job_id=${job}`, t.adminToken, { 'last-event-id': last.id! });
        try {
          assert.equal((await s3.next()).retry, '3000');
          await assert.rejects(s3.nextEvent(300), /no event-stream frame/, 'from the last event of the row: nothing is replayed');
        } finally {
          s3.close();
        }
      } finally {
        s2.close();
      }
    });

    if (kind === 'postgres') {
      it('a row that commits after a higher one: a client that leaves in the middle of it gets the rest after reconnecting', async () => {
        const job = randomUUID();
        const s1 = await openStream(t, `/api/v1/events?job_id=${job}`);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let late: StatusEvent[] = [];
        let tookSeq!: () => void;
        const took = new Promise<void>((r) => (tookSeq = r));
        let slow: Promise<void> | undefined;
        let lastId: string;
        try {
          assert.equal((await s1.next()).retry, '3000');
          slow = t.app.db.transaction(async (tx) => {
            late = await appendEvents(
              tx,
              ['a', 'b', 'c'].map((step) => ({ kind: 'step' as const, execution_id: randomUUID(), job_id: job, step_id: step, status: 'running' })),
            );
            tookSeq();
            await gate;
          });
          await took;
          const high = await append(t, { job_id: job, status: 'succeeded' });
          const h = await s1.nextEvent();
          assert.equal(h.id, `${high.seq},${late[0].seq}`, 'the uncommitted row is pending');
          release();
          await slow;
          const f = await s1.nextEvent();
          assert.deepEqual(f.json, late[0]);
          assert.equal(f.id, `${high.seq},${late[1].seq}`, 'the rest of the late row is pending while it is sent');
          lastId = f.id!;
        } finally {
          release();
          s1.close(); // the client leaves after the first event of the late row
        }
        await slow;
        const s2 = await openStream(t, `/api/v1/events?job_id=${job}`, t.adminToken, { 'last-event-id': lastId });
        try {
          assert.equal((await s2.next()).retry, '3000');
          const b = await s2.nextEvent();
          assert.deepEqual(b.json, late[1]);
          const c = await s2.nextEvent();
          assert.deepEqual(c.json, late[2]);
          assert.equal(c.id, lastId.split(',')[0], 'the row is complete: nothing pending any more');
          await assert.rejects(s2.nextEvent(300), /no event-stream frame/, 'the higher one is not sent again');
        } finally {
          s2.close();
        }
      });
    }

    if (kind === 'postgres') {
      // Needs two connections at once: a transaction that took its seq stays open while another commits.
      it('an event that commits after a higher one is neither lost nor repeated across a reconnection', async () => {
        const job = randomUUID();
        const s1 = await openStream(t, `/api/v1/events?job_id=${job}`);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let lowSeq = 0;
        let tookSeq!: () => void;
        const took = new Promise<void>((r) => (tookSeq = r));
        let slow: Promise<void> | undefined;
        let lastId: string;
        try {
          assert.equal((await s1.next()).retry, '3000');
          await append(t, { job_id: job, status: 'queued' });
          await s1.nextEvent();
          // a transaction takes a seq and has not committed yet ...
          slow = t.app.db.transaction(async (tx) => {
            [{ seq: lowSeq }] = await appendEvents(tx, [{ kind: 'execution', execution_id: randomUUID(), job_id: job, status: 'running' }]);
            tookSeq();
            await gate;
          });
          await took;
          // ... while a later one commits: its id says the lower seq is still pending
          const high = await append(t, { job_id: job, status: 'succeeded' });
          assert.ok(high.seq > lowSeq);
          const f = await s1.nextEvent();
          assert.deepEqual(f.json, high);
          assert.equal(f.id, `${high.seq},${lowSeq}`);
          lastId = f.id!;
        } finally {
          s1.close(); // the client leaves before the slow transaction commits
        }
        release();
        await slow;

        const s2 = await openStream(t, `/api/v1/events?job_id=${job}`, t.adminToken, { 'last-event-id': lastId });
        try {
          assert.equal((await s2.next()).retry, '3000');
          const late = await s2.nextEvent();
          assert.equal(late.json.seq, lowSeq, 'the event that committed late is replayed');
          assert.equal(late.id, String(lastId.split(',')[0]), 'and nothing is pending any more');
          await assert.rejects(s2.nextEvent(300), /no event-stream frame/, 'the higher one is not sent again');
        } finally {
          s2.close();
        }
      });
    }

    it('a replay from before the oldest stored event starts with a resync event', async () => {
      const job = randomUUID();
      const first = await append(t, { job_id: job, status: 'queued' });
      const kept = await append(t, { job_id: job, status: 'running' });
      await t.app.db.query('DELETE FROM status_events WHERE seq <= $1', [first.seq]); // as pruning does
      const s = await openStream(t, `/api/v1/events?job_id=${job}&last_event_id=${first.seq - 1}`);
      try {
        assert.equal((await s.next()).retry, '3000');
        const resync = await s.next();
        assert.equal(resync.event, 'resync');
        assert.match(JSON.parse(resync.data!).reason, /no longer stored; reload the current state/);
        assert.deepEqual((await s.nextEvent()).json, kept);
      } finally {
        s.close();
      }
    });

    it('a large event (10 KB of error) arrives whole', async () => {
      const s = await openStream(t, '/api/v1/events');
      try {
        assert.equal((await s.next()).retry, '3000');
        const big = await append(t, { kind: 'step', step_id: 'big', status: 'failed', error: { code: 'x', message: 'm'.repeat(10_000) } });
        const f = await s.nextEvent();
        assert.deepEqual(f.json, big);
        assert.equal((f.json.error as any).message.length, 10_000);
      } finally {
        s.close();
      }
    });

    it('a keep-alive comment is sent every 15 s', async () => {
      assert.equal(KEEP_ALIVE_MS, 15_000);
      mock.timers.enable({ apis: ['setInterval'] }); // only setInterval: the database and HTTP keep real time
      let s: Stream | undefined;
      try {
        s = await openStream(t, '/api/v1/events');
        assert.equal((await s.next()).retry, '3000');
        mock.timers.tick(KEEP_ALIVE_MS - 1);
        await assert.rejects(s.next(200), /no event-stream frame/);
        mock.timers.tick(1);
        assert.deepEqual(await s.next(), { comments: ['keep-alive'] });
        mock.timers.tick(KEEP_ALIVE_MS);
        assert.deepEqual(await s.next(), { comments: ['keep-alive'] });
      } finally {
        s?.close();
        mock.timers.reset();
      }
    });
  });

  describe(`${kind}: event streams and shutdown`, () => {
    it('app.close() ends open streams instead of waiting for them', async () => {
      const t = await startTestApp(kind, API_ONLY);
      let closed = false;
      try {
        const s = await openStream(t, '/api/v1/events');
        assert.equal((await s.next()).retry, '3000');
        await t.close();
        closed = true;
        await assert.rejects(s.next(2000), /the event stream ended/);
      } finally {
        if (!closed) await t.close();
      }
    });
  });
});
