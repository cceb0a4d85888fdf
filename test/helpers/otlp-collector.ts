/**
 * An OTLP/HTTP trace collector on loopback for the tracing tests: it takes what an exporter POSTs
 * to /v1/traces (protobuf, gzip or not), decodes it with the small wire-format reader below (the
 * fields of opentelemetry/proto/trace/v1/trace.proto that the tests read) and keeps the spans.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  status: { code: number; message: string };
  resource: Record<string, unknown>;
}

export interface Collector {
  url: string;
  spans: CollectedSpan[];
  /** Headers of every export request. */
  requests: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** One field of a protobuf message: its number and raw value (varint as bigint, the rest as bytes). */
type Field = { no: number; v: bigint | Buffer };

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      r |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return r;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, v: varint() });
    else if (wire === 1) {
      out.push({ no, v: buf.subarray(i, i + 8) });
      i += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, v: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 5) {
      out.push({ no, v: buf.subarray(i, i + 4) });
      i += 4;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return out;
}

const all = (fs: Field[], no: number) => fs.filter((f) => f.no === no).map((f) => f.v);
const one = (fs: Field[], no: number) => fs.find((f) => f.no === no)?.v;
const bytes = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.alloc(0));
const str = (v: unknown): string => bytes(v).toString('utf8');

function anyValue(buf: Buffer): unknown {
  const f = fields(buf)[0];
  if (!f) return null;
  switch (f.no) {
    case 1:
      return str(f.v);
    case 2:
      return f.v === 1n;
    case 3:
      return Number(BigInt.asIntN(64, f.v as bigint));
    case 4:
      return (f.v as Buffer).readDoubleLE(0);
    default:
      return `(unsupported AnyValue field ${f.no})`;
  }
}

function attributes(list: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list) {
    const fs = fields(bytes(kv));
    out[str(one(fs, 1))] = anyValue(bytes(one(fs, 2)));
  }
  return out;
}

const nanosToMs = (v: unknown): number => Number(bytes(v).readBigUInt64LE(0) / 1000n) / 1000;

/** ExportTraceServiceRequest -> spans. */
export function decodeTraces(body: Buffer): CollectedSpan[] {
  const spans: CollectedSpan[] = [];
  for (const rs of all(fields(body), 1)) {
    const rsf = fields(bytes(rs));
    const resource = attributes(all(fields(bytes(one(rsf, 1))), 1));
    for (const ss of all(rsf, 2)) {
      for (const sp of all(fields(bytes(ss)), 2)) {
        const f = fields(bytes(sp));
        const status = fields(bytes(one(f, 15)));
        spans.push({
          traceId: bytes(one(f, 1)).toString('hex'),
          spanId: bytes(one(f, 2)).toString('hex'),
          parentSpanId: bytes(one(f, 4)).toString('hex'),
          name: str(one(f, 5)),
          kind: Number(one(f, 6) ?? 0n),
          startMs: nanosToMs(one(f, 7)),
          endMs: nanosToMs(one(f, 8)),
          attributes: attributes(all(f, 9)),
          status: { code: Number(one(status, 3) ?? 0n), message: str(one(status, 2)) },
          resource,
        });
      }
    }
  }
  return spans;
}

export async function startCollector(): Promise<Collector> {
  const c: Collector = { url: '', spans: [], requests: [], close: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/x-protobuf') {
        res.writeHead(404).end();
        return;
      }
      c.requests.push(req.headers);
      c.spans.push(...decodeTraces(body));
      // An empty ExportTraceServiceResponse: everything accepted.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  c.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  c.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return c;
}
