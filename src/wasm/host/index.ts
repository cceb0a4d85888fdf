/**
 * The main-thread host functions by name, and the dispatch of one run over them. Adding a host
 * function: one file in this folder, one line here (and one in worker-functions.ts when it can be
 * served inside the worker).
 */
import { cryptoHost } from './crypto.ts';
import { dbQuery } from './db-query.ts';
import { createDispatch } from './dispatch.ts';
import { fileList } from './file-list.ts';
import { fileRead } from './file-read.ts';
import { fileWrite } from './file-write.ts';
import { httpRequest } from './http-request.ts';
import { timeHost } from './time.ts';
import type { HostDispatch, HostFunction, HostSession } from './types.ts';

export const HOST_FUNCTIONS: ReadonlyMap<string, HostFunction> = new Map(
  [httpRequest, dbQuery, fileRead, fileWrite, fileList, cryptoHost, timeHost].map((f) => [f.name, f] as const),
);

/** Serves a run's bridged host calls for `session` (give it to the runtime as `WasmRunRequest.host`). */
export const createHostDispatch = (session: HostSession): HostDispatch => createDispatch(session, HOST_FUNCTIONS);
