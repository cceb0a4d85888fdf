/**
 * The parts of a privileged host call that do not touch the guest (docs/abi.md, "the calling
 * convention"): decoding a request, serving it with a worker-side function, reading the main
 * thread's reply to a bridged call, and keeping the call in the run's record. The worker
 * (worker.ts `privileged`) does the rest: bounds, fuel, the bridge, the write through `alloc`.
 */
import { HOST_BOUNDS } from '../instrument/costs.ts';
import { FORWARD, HOST_ERROR_CODES, HostCallError, errorResponse, type HostCallRecord, type HostErrorCode, type WorkerHostFunction } from '../host/types.ts';
import { IsoClock } from '../host/iso-time.ts';
import { boundValue, budgetSpent } from './host-record.ts';
import type { HostCallReplyMeta } from './protocol.ts';
import type { WasmLogLine } from './types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const isErrorCode = (c: unknown): c is HostErrorCode => typeof c === 'string' && (HOST_ERROR_CODES as readonly string[]).includes(c);

/** What one call answered, before it is written to the guest. */
export interface Answer {
  /** The answer's JSON text, as the guest gets it. */
  text: string;
  target: string | null;
  outcome: 'ok' | HostErrorCode;
  permission?: string;
  served: 'worker' | 'host';
  /** The answer as an object (served here), bounded when it is recorded... */
  obj?: unknown;
  /** ...or as the main thread bounded it already, with about its JSON size (bridged). */
  rec?: unknown;
  recBytes?: number;
}

export const errorAnswer = (code: HostErrorCode, message: string, served: 'worker' | 'host' = 'worker', target: string | null = null): Answer => {
  const obj = errorResponse(code, message);
  return { text: JSON.stringify(obj), obj, target, outcome: code, served };
};

/**
 * A request of `len` bytes (bounds already checked), decoded: the object and its text, or the
 * error answer. The size cap is checked before `bytes` is called, so nothing past it is read.
 */
export function decodeRequest(fn: string, len: number, max: number, bytes: () => Uint8Array): { req: Record<string, unknown>; text: string } | Answer {
  if (len > max) return errorAnswer('too_large', `the ${fn} request is ${len} bytes, above the limit of ${max} bytes`);
  const view = bytes();
  let text: string;
  try {
    text = utf8.decode(view);
  } catch {
    return errorAnswer('bad_request', `the ${fn} request is not valid UTF-8`);
  }
  let req: unknown;
  try {
    req = JSON.parse(text);
  } catch (e) {
    return errorAnswer('bad_request', `the ${fn} request is not valid JSON: ${(e as Error).message}`);
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    return errorAnswer('bad_request', `the ${fn} request must be a JSON object, not ${req === null ? 'null' : Array.isArray(req) ? 'an array' : typeof req}`);
  }
  return { req: req as Record<string, unknown>, text };
}

/** Serves a call in the worker: the answer, or null when the function FORWARDs it to the main thread. */
export function serveHere(f: WorkerHostFunction, req: Record<string, unknown>, keys?: Readonly<Record<string, string>>): Answer | null {
  let target: string | null = null;
  try {
    target = f.target(req);
    const r = f.serve(req, keys);
    if (r === FORWARD) return null;
    if (r === null || typeof r !== 'object' || Array.isArray(r)) {
      return errorAnswer('unavailable', `${f.name} answered a ${typeof r}, not an object`, 'worker', target);
    }
    return { text: JSON.stringify(r), obj: r, target, outcome: 'ok', served: 'worker' };
  } catch (e) {
    if (e instanceof HostCallError) {
      const a = errorAnswer(e.code, e.message, 'worker', target);
      if (e.permission) a.permission = e.permission;
      return a;
    }
    return errorAnswer('unavailable', `${f.name} failed: ${e instanceof Error ? e.message : String(e)}`, 'worker', target);
  }
}

/** The main thread's reply to a bridged call (protocol.ts HostCallReplyMeta, a newline, the answer's JSON text). */
export function parseReply(fn: string, reply: string): Answer {
  const nl = reply.indexOf('\n');
  let meta: HostCallReplyMeta;
  try {
    meta = JSON.parse(reply.slice(0, nl)) as HostCallReplyMeta;
  } catch {
    return errorAnswer('unavailable', `the host's answer to ${fn} could not be read`, 'host');
  }
  return {
    text: reply.slice(nl + 1),
    target: typeof meta.target === 'string' ? meta.target : null,
    outcome: meta.outcome === 'ok' || isErrorCode(meta.outcome) ? meta.outcome : 'unavailable',
    ...(typeof meta.permission === 'string' ? { permission: meta.permission } : {}),
    served: 'host',
    rec: meta.rec,
    recBytes: typeof meta.recBytes === 'number' ? meta.recBytes : undefined,
  };
}

/** What of a run the record works on (worker.ts RunState). */
export interface RecordState {
  hostCalls: HostCallRecord[];
  hostCallsDropped: number;
  /** About the JSON bytes the kept requests and responses take. */
  recordBytes: number;
  logs: WasmLogLine[];
  logsDropped: number;
}

/**
 * Keeps one call in the run's record (bounded: the record cap, the per-value and per-run budgets;
 * `boundedBytes` when the main thread bounded the response already). A denial also becomes a line
 * of the run's log (the main thread audits and counts it).
 *
 * `r` becomes the record itself (its `at` turned into ISO text, request and response added): the
 * caller makes a fresh one per call, and a run's calls come by the thousand.
 */
export function recordCall(
  st: RecordState,
  /** The call, its `at` as epoch milliseconds. */
  r: Omit<HostCallRecord, 'request' | 'response' | 'at'> & { at: number },
  request: unknown,
  response: unknown,
  boundedBytes: number | undefined,
  maxLogLines: number,
): void {
  if (st.hostCalls.length >= HOST_BOUNDS.maxHostCallRecords) {
    st.hostCallsDropped++;
    return;
  }
  const rec = r as unknown as HostCallRecord;
  // The ISO time is made only for a call that is kept (the calls of a busy run past the cap are only counted).
  rec.at = recordClock.iso(r.at);
  rec.request = keep(st, request, undefined);
  rec.response = keep(st, response, boundedBytes);
  st.hostCalls.push(rec);
  if (rec.outcome === 'permission_denied' || rec.outcome === 'egress_denied') {
    if (st.logs.length < maxLogLines) {
      st.logs.push({
        level: 'warn',
        message: `host call ${rec.function}${rec.target ? ` (${rec.target})` : ''} refused: ${rec.outcome}${rec.permission ? `, missing ${rec.permission}` : ''}`,
        at: new Date().toISOString(),
      });
    } else st.logsDropped++;
  }
}

const recordClock = new IsoClock();

/** What the record keeps of a request or a response, counted against the run's budget. */
function keep(st: RecordState, v: unknown, alreadyBytes: number | undefined): unknown {
  const left = HOST_BOUNDS.maxRecordRunBytes - st.recordBytes;
  if (left <= 64) return budgetSpent();
  if (alreadyBytes !== undefined) {
    // Kept whole if the run's budget has room: never cut twice (a second cut would cut the first one's markers).
    if (alreadyBytes > left) return budgetSpent();
    st.recordBytes += alreadyBytes;
    return v;
  }
  const b = boundValue(v, Math.min(left, HOST_BOUNDS.maxRecordValueBytes));
  st.recordBytes += b.bytes;
  return b.value;
}
