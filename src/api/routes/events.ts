import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { ApiContext } from '../context.ts';
import type { StatusEvent } from '../../state/events.ts';

/** Interval of the `: keep-alive` comment that keeps proxies and load balancers from closing an idle stream. */
export const KEEP_ALIVE_MS = 15_000;
/** Reconnection delay suggested to EventSource clients (the `retry:` field). */
export const RETRY_MS = 3000;
/** Events read per query of a replay. */
const REPLAY_PAGE = 1000;

/**
 * Live execution and step status changes as server-sent events.
 *
 * Each event's `id:` is its sequence number in the stored event log (`status_events`). A client
 * that reconnects sends the last one it saw as `Last-Event-ID` (EventSource does so by itself; or
 * `?last_event_id=`): it first gets every stored event after it that matches its filters, in
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

  app.get('/api/v1/events', {
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
        'A `text/event-stream` of execution and step status changes: `event: execution|step`, `id: <seq>`, ' +
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
          last_event_id: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'Replay the stored events after this seq (as the Last-Event-ID header)' },
          access_token: { type: 'string', description: 'API token, for clients that cannot send an Authorization header' },
        },
      },
      headers: {
        type: 'object',
        properties: {
          'last-event-id': { type: 'string', pattern: '^[0-9]{1,15}$', description: 'The last event id the client saw' },
        },
      },
    },
  }, async (req, reply) => {
    const q = req.query as { job_id?: string; execution_id?: string; last_event_id?: string };
    const header = req.headers['last-event-id'];
    const lastId = q.last_event_id ?? (typeof header === 'string' ? header : undefined);
    const after = lastId === undefined ? null : Number(lastId);
    const filter = { jobId: q.job_id, executionId: q.execution_id };
    const matches = (e: StatusEvent) =>
      (!q.job_id || e.job_id === q.job_id) && (!q.execution_id || e.execution_id === q.execution_id);
    const res = reply.raw;

    // Subscribe before reading the replay, so nothing committed in between is lost; live events
    // wait in `held` until the replay is written (and are dropped if the replay already had them).
    let held: StatusEvent[] | null = after === null ? null : [];
    let live: ((e: StatusEvent) => void) | null = null;
    const unsubscribe = ctx.events.subscribe((e) => {
      if (!matches(e)) return;
      if (held) held.push(e);
      else live?.(e);
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
      // Listening starts with the first subscriber; be listening before the client sees the stream open.
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
    const send = (e: StatusEvent) => write(`id: ${e.seq}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);

    if (after !== null) {
      try {
        const sent = new Set<number>();
        const oldest = await ctx.events.oldestSeq();
        if (oldest !== null && oldest > after + 1) {
          write(`event: resync\ndata: ${JSON.stringify({ reason: `events after ${after} up to ${oldest - 1} are no longer stored; reload the current state`, oldest_seq: oldest })}\n\n`);
        }
        for (let from = after; !closed; ) {
          const page = await ctx.events.after(from, filter, REPLAY_PAGE);
          for (const e of page) {
            send(e);
            sent.add(e.seq);
          }
          if (page.length < REPLAY_PAGE) break;
          from = page[page.length - 1].seq;
        }
        for (const e of held ?? []) if (!sent.has(e.seq)) send(e);
      } catch (err) {
        req.log.warn({ err }, 'event replay failed; the stream continues with live events');
        write(`event: resync\ndata: ${JSON.stringify({ reason: 'the stored events could not be read; reload the current state' })}\n\n`);
        for (const e of held ?? []) send(e);
      }
      held = null;
    }
    live = send;
    if (closed) return;
    keepAlive = setInterval(() => write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    keepAlive.unref();
  });
}
