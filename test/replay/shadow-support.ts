/**
 * What the shadow tests share (not a test file): the customers of run i, uploads, jobs, triggering
 * many runs and waiting for them, through the real HTTP API of a test app.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TestApp } from '../helpers/app.ts';
import { waitFor } from '../helpers/http-server.ts';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const fixturePath = (p: string) => `${ROOT}fixtures/wasm/${p}`;
export const fixture = (p: string) => readFileSync(fixturePath(p));

export interface Customer {
  id: string;
  name: string;
  total_orders: number;
}

/** A revenue the gold threshold's move (50,000 -> 40,000) changes the tier of: (40000, 50000]. */
export const moves = (revenue: number) => revenue > 40000 && revenue <= 50000;

/**
 * The customers of run i: always one of each tier; runs i % 3 == 0 also have a customer at
 * 40,000 + 100 (i + 1) (silver, gold after the change), runs i % 7 == 0 one at exactly 50,000
 * (silver, gold after), runs i % 5 == 0 one at exactly 40,000 (silver either way: the threshold is "above").
 */
export function customersOf(i: number): Customer[] {
  const c: Customer[] = [
    { id: `r${i}-p`, name: 'Platinum Co', total_orders: 150000 + i },
    { id: `r${i}-g`, name: 'Gold Ltd', total_orders: 75000.5 },
    { id: `r${i}-s`, name: 'Silver JSC', total_orders: 20000 + i },
    { id: `r${i}-b`, name: 'Bronze', total_orders: 10000 - i },
  ];
  if (i % 3 === 0) c.push({ id: `r${i}-m`, name: 'Moves', total_orders: 40000 + 100 * (i + 1) });
  if (i % 7 === 0) c.push({ id: `r${i}-e`, name: 'Edge 50k', total_orders: 50000 });
  if (i % 5 === 0) c.push({ id: `r${i}-f`, name: 'Edge 40k', total_orders: 40000 });
  return c;
}

/** The diff lines the changed threshold makes for run i (recorded "silver", new "gold"). */
export function expectedDiff(i: number, prefix = '$.customers'): string[] {
  return customersOf(i).flatMap((c, k) => (moves(c.total_orders) ? [`${prefix}[${k}].tier: expected "silver", got "gold"`] : []));
}

export async function upload(t: TestApp, file: Buffer, name: string, version: string): Promise<any> {
  const form = new FormData();
  form.set('file', new Blob([file]), `${name}.wasm`);
  form.set('name', name);
  form.set('version', version);
  form.set('author', 'tests');
  const res = await fetch(`${t.url}/api/v1/wasm/modules`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: form });
  const body: any = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

export async function createJob(t: TestApp, doc: unknown): Promise<any> {
  const r = await t.api('POST', '/api/v1/jobs', { body: doc });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

/** Triggers the job once per payload and waits until every execution is final; their ids in order. */
export async function runAll(t: TestApp, jobId: string, payloads: unknown[], timeoutMs = 120_000): Promise<string[]> {
  const ids: string[] = [];
  for (const p of payloads) {
    const r = await t.api('POST', `/api/v1/jobs/${jobId}/trigger`, { body: p });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    ids.push(r.body.execution_id);
  }
  const final = new Set(['succeeded', 'failed', 'dead_lettered', 'cancelled']);
  await waitFor(
    async () => {
      const r = await t.api('GET', `/api/v1/executions?job_id=${jobId}&limit=200`);
      const done = (r.body.items as any[]).filter((e) => final.has(e.status));
      return done.length >= ids.length;
    },
    `${ids.length} executions of job ${jobId} to finish`,
    timeoutMs,
  );
  for (const id of ids) {
    const e = await t.api('GET', `/api/v1/executions/${id}`);
    assert.equal(e.body.status, 'succeeded', `execution ${id}: ${JSON.stringify(e.body.error ?? e.body.steps)}`);
  }
  return ids;
}
