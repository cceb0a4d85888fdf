import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { ApiContext } from '../context.ts';
import type { LoggedEvent, StatusEvent } from '../../state/events.ts';

/** Interval of the `: keep-alive` comment that keeps proxies and load balancers from closing an idle stream. */
export const KEEP_ALIVE_MS = 15_000;
/** Reconnection delay suggested to EventSource clients (the `retry:` field). */
export const RETRY_MS = 3000;
/** Events read per query of a replay. */
const REPLAY_PAGE = 1000;
/** How long the events a reconnecting client had not received yet are carried in its ids. */
const CARRY_MS = 30_000;
/** `high[,pending...]`: see parseCursor. */
const CURSOR = '^[0-9]{1,16}(,[0-9]{1,16}){0,1000}$';

/**
 * An event id is a cursor: `high` and the ids below it still `pending` when the event was sent.
 * Events are stored one row per statement (src/state/events.ts: a row owns a range of ids), and a
 * pending id `p` stands for the events of p's row from p on: a whole row taken by a transaction
 * that had not committed yet, or the rest of a row whose first events were just sent. Every event
 * up to `high` but those was delivered (or did not match the stream's filters), so a replay sends
 * the stored events above `high` and the pending ones: nothing twice, nothing missed. Usually
 * there is nothing pending and the id is the event's seq.
 */
function parseCursor(id: string): { high: number; pending: number[] } {
  const [high, ...pending] = id.split(',').map(Number);
  return { high, pending };
}

/**
 * Live execution and step status changes as server-sent events.
 *
 * Each event's `id:` is its sequence number in the stored event log (`status_events`), followed by
 * the lower ones not committed yet when there are any (see parseCursor). A client that reconnects
 * sends the last one it saw as `Last-Event-ID` (EventSource does so by itself; or
 * `?last_event_id=`): it first gets every stored event it missed that matches its filters, in
 * order, then the live ones, without gaps or repeats. If events it missed were already pruned
 * (VECRON_EVENT_RETENTION_SECONDS), a `resync` event says so: reload the current state then.
 */
export async function eventsRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const open = new Set<ServerResponse>();

  // Streams never end by themselves: end them on shutdown, or app.close() would wait for them.
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
    open.clear();
  });

  app.get(
    '/api/v1/events',
    {
      config: { role: 'viewer', queryToken: true },
      // Request logs show the URL: keep a token passed as ?access_token= out of them.
      logSerializers: {
        req: (req: FastifyRequest) => ({
          method: req.method,
          url: req.url.replace(/([?&]access_token=)[^&]*/gi, '$1***'),
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort,
        }),
      },
      schema: {
        tags: ['events'],
        summary: 'Live status events (server-sent events)',
        description:
          'A `text/event-stream` of execution and step status changes: `event: execution|step`, `id: <seq>[,<pending id>...]`, ' +
          '`data: {"seq","kind","execution_id","job_id","step_id?","status","at","reason?","error?"}`. `seq` orders all ' +
          'events of the cluster. Optional filters `job_id` and `execution_id`. On reconnection, the `Last-Event-ID` ' +
          'header (or `last_event_id`) replays the stored events after it first; `event: resync` means some were ' +
          'already pruned. The stream starts with `retry: 3000`; a `: keep-alive` comment is sent every 15 s. ' +
          'Browsers (EventSource cannot send headers) may pass the token as `?access_token=<token>`.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            job_id: { type: 'string', format: 'uuid' },
            execution_id: { type: 'string', format: 'uuid' },
            last_event_id: { type: 'string', pattern: CURSOR, description: 'Replay the stored events after this event id (as the Last-Event-ID header)' },
            access_token: { type: 'string', description: 'API token, for clients that cannot send an Authorization header' },
          },
        },
        headers: {
          type: 'object',
          properties: {
            'last-event-id': { type: 'string', pattern: CURSOR, description: 'The last event id the client saw' },
          },
        },
      },
    },
    async (req, reply) => {
      const q = req.query as { job_id?: string; execution_id?: string; last_event_id?: string };
      const header = req.headers['last-event-id'];
      const lastId = q.last_event_id ?? (typeof header === 'string' ? header : undefined);
      const fromClient = lastId === undefined ? null : parseCursor(lastId);
      const filter = { jobId: q.job_id, executionId: q.execution_id };
      const matches = (e: StatusEvent) => (!q.job_id || e.job_id === q.job_id) && (!q.execution_id || e.execution_id === q.execution_id);
      const res = reply.raw;

      // A new stream starts where the log stands (read before subscribing: the stream promises the
      // events from its subscription on), rows still uncommitted then included; a reconnecting one
      // from its Last-Event-ID. Both go through the same replay below.
      const from = fromClient ?? (await ctx.events.position());
      // Subscribe before reading the replay, so nothing committed in between is lost; live events
      // wait in `held` until the replay is written (and are dropped if the replay already had them).
      let held: LoggedEvent[] | null = [];
      let live: ((l: LoggedEvent) => void) | null = null;
      const unsubscribe = ctx.events.subscribe((e, l) => {
        if (!matches(e)) return;
        if (held) held.push(l);
        else live?.(l);
      });
      let closed = false;
      let keepAlive: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (closed) return;
        closed = true;
        clearInterval(keepAlive);
        unsubscribe();
        open.delete(res);
      };
      try {
        // Reading the log starts with the first subscriber; be reading before the client sees the
        // stream open, and have read what was committed before now (the replay stops there).
        await ctx.events.ready();
      } catch (err) {
        cleanup();
        throw err;
      }
      reply.hijack();
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.write(`retry: ${RETRY_MS}\n\n`);
      open.add(res);
      req.raw.on('close', cleanup);
      res.on('close', cleanup);
      res.on('error', cleanup);

      const write = (chunk: string) => {
        if (!res.writableEnded && !res.destroyed) res.write(chunk);
      };
      // What this client may not have yet, from its Last-Event-ID (id -> carried until): each entry
      // stands for the rest of its row, and is carried in the ids until sent.
      const carried = new Map<number, number>();
      let sentHigh = 0;
      const cursor = (high: number, rest: number | null): string => {
        sentHigh = Math.max(sentHigh, high);
        const now = Date.now();
        const pending = new Set(ctx.events.pendingBelow(sentHigh));
        for (const [seq, until] of carried) {
          if (until < now) carried.delete(seq);
          else if (seq < sentHigh) pending.add(seq);
        }
        // The rest of this event's row, when the stream stands above it (a row that committed late)
        if (rest !== null && rest <= sentHigh) pending.add(rest);
        return [sentHigh, ...[...pending].sort((x, y) => x - y)].join(',');
      };
      /** What was carried for this row is delivered up to `e`: the rest of the row stays owed. Returns whether any was. */
      const deliverCarried = (e: StatusEvent, row: number, end: number, rest: number | null): boolean => {
        let owed = false;
        for (const [seq, until] of [...carried]) {
          if (seq < row || seq >= end || seq > e.seq) continue;
          owed = true;
          carried.delete(seq);
          if (rest !== null) carried.set(rest, Math.max(until, carried.get(rest) ?? 0));
        }
        return owed;
      };
      const send = ({ event: e, row, end }: LoggedEvent, high: number) => {
        const rest = e.seq + 1 < end ? e.seq + 1 : null;
        deliverCarried(e, row, end, rest);
        write(`id: ${cursor(high, rest)}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
      };
      /**
       * Sends an event read by the bus unless this client has it: events up to the cursor's high mark
       * were delivered, except rows that committed late (pending in the ids sent) and what is carried.
       */
      const sendLive = (l: LoggedEvent) => {
        const { event: e, row, end } = l;
        if (replayedLate.delete(e.seq)) return;
        if (e.seq <= sentHigh && !l.late) {
          const rest = e.seq + 1 < end ? e.seq + 1 : null;
          if (!deliverCarried(e, row, end, rest)) return;
          write(`id: ${cursor(ctx.events.highestSeq, rest)}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
          return;
        }
        send(l, ctx.events.highestSeq);
      };

      /**
       * Sends the stored events after `c` up to where the bus has read (it delivers what comes
       * after), first the rest of the rows pending in `c`, then the events above `c.high`.
       */
      // Events the replay sent from rows the bus has not read yet (they committed after it looked):
      // when the bus delivers them, late, this client has them already.
      const replayedLate = new Set<number>();
      const replay = async (c: { high: number; pending: number[] }, warnIfPruned: boolean) => {
        sentHigh = Math.max(sentHigh, c.high);
        const upTo = ctx.events.highestSeq;
        const sent = new Map<number, number>(); // seq -> row
        try {
          for (const seq of c.pending) carried.set(seq, Date.now() + CARRY_MS);
          const oldest = warnIfPruned ? await ctx.events.oldestSeq() : null;
          if (oldest !== null && oldest > c.high + 1) {
            write(
              `event: resync\ndata: ${JSON.stringify({ reason: `events after ${c.high} up to ${oldest - 1} are no longer stored; reload the current state`, oldest_seq: oldest })}\n\n`,
            );
          }
          for (const l of await ctx.events.from(c.pending, filter)) {
            send(l, c.high);
            sent.set(l.event.seq, l.row);
          }
          for (let after = c.high; !closed && after < upTo; ) {
            const page = await ctx.events.after(after, filter, REPLAY_PAGE, upTo);
            for (const l of page) {
              send(l, l.event.seq);
              sent.set(l.event.seq, l.row);
            }
            if (page.length < REPLAY_PAGE) break;
            after = page[page.length - 1].event.seq;
          }
          for (const l of held ?? []) if (!sent.delete(l.event.seq)) sendLive(l);
          const unread = new Set(ctx.events.pendingBelow(Number.MAX_SAFE_INTEGER));
          for (const [seq, row] of sent) if (unread.has(row)) replayedLate.add(seq);
        } catch (err) {
          req.log.warn({ err }, 'event replay failed; the stream continues with live events');
          write(`event: resync\ndata: ${JSON.stringify({ reason: 'the stored events could not be read; reload the current state' })}\n\n`);
          for (const l of held ?? []) send(l, ctx.events.highestSeq);
        }
        held = null;
      };

      await replay(from, fromClient !== null);
      live = sendLive;
      if (closed) return;
      keepAlive = setInterval(() => write(': keep-alive\n\n'), KEEP_ALIVE_MS);
      keepAlive.unref();
    },
  );
}
