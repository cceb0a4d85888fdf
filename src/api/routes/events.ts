import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { ApiContext } from '../context.ts';
import type { StatusEvent } from '../../events/bus.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route also accepts the API token as `?access_token=` (browsers' EventSource cannot send
     * an Authorization header). Read by the auth hook; only for read-only streaming routes. */
    queryToken?: boolean;
  }
}

/** Interval of the `: keep-alive` comment that keeps proxies and load balancers from closing an idle stream. */
export const KEEP_ALIVE_MS = 15_000;
/** Reconnection delay suggested to EventSource clients. */
const RETRY_MS = 3000;

/**
 * Live execution and step status changes as server-sent events.
 *
 * Event ids count up per connection; events are not stored, so a reconnecting client (Last-Event-ID)
 * gets what happens from then on and fetches the current state from the REST API.
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
        'A `text/event-stream` of execution and step status changes: `event: execution|step`, `id: <counter>`, ' +
        '`data: {"kind","execution_id","job_id","step_id?","status","at","error?"}`. Optional filters `job_id` and ' +
        '`execution_id`. A `: keep-alive` comment is sent every 15 s. Browsers (EventSource cannot send headers) ' +
        'may pass the token as `?access_token=<token>`.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          job_id: { type: 'string', maxLength: 200 },
          execution_id: { type: 'string', maxLength: 200 },
          access_token: { type: 'string', description: 'API token, for clients that cannot send an Authorization header' },
        },
      },
    },
  }, async (req, reply) => {
    const q = req.query as { job_id?: string; execution_id?: string };
    const res = reply.raw;
    // Listening starts with the first subscriber; be listening before the client sees the stream open.
    const probe = ctx.events.subscribe(() => {});
    try {
      await ctx.events.ready();
    } finally {
      probe();
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

    let id = 0;
    const write = (chunk: string) => {
      if (!res.writableEnded && !res.destroyed) res.write(chunk);
    };
    const unsubscribe = ctx.events.subscribe((e: StatusEvent) => {
      if (q.job_id && e.job_id !== q.job_id) return;
      if (q.execution_id && e.execution_id !== q.execution_id) return;
      id += 1;
      write(`event: ${e.kind}\nid: ${id}\ndata: ${JSON.stringify(e)}\n\n`);
    });
    const keepAlive = setInterval(() => write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    keepAlive.unref();

    let closed = false;
    const cleanup = () => {
      if (closed) return;
      closed = true;
      clearInterval(keepAlive);
      unsubscribe();
      open.delete(res);
    };
    req.raw.on('close', cleanup);
    res.on('close', cleanup);
    res.on('error', cleanup);
  });
}
