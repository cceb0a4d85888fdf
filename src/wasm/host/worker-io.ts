/**
 * The I/O host functions a guest's worker serves itself during a JSPI run (worker-session.ts):
 * the same functions and the same dispatch as on the main thread, over the session the main thread
 * sent with the run. Loaded by the worker at its first such call (the functions bring undici, pg,
 * mysql2 and the SQL parser, which a worker that never makes one does not need).
 *
 * One line per function (http_request, db_query).
 */
import { applyEgressSnapshot } from '../../egress/index.ts';
import { dbQuery } from './db-query.ts';
import { createDispatch } from './dispatch.ts';
import { httpRequest } from './http-request.ts';
import type { HostDispatch, HostFunction } from './types.ts';
import { sessionFromWire, type WireSession, type WorkerSessionReport } from './worker-session.ts';

const WORKER_IO_FUNCTIONS: ReadonlyMap<string, HostFunction> = new Map([httpRequest, dbQuery].map((f) => [f.name, f] as const));

/** The dispatch of one run's calls served in the worker (the thread's egress policy made the main thread's first). */
export function createWorkerDispatch(wire: WireSession, report: (r: WorkerSessionReport) => void): HostDispatch {
  applyEgressSnapshot(wire.egress);
  return createDispatch(sessionFromWire(wire, report), WORKER_IO_FUNCTIONS);
}

export { RESPONSE_JSON } from './types.ts';
