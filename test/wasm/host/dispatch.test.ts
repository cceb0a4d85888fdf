/**
 * The per-run dispatch: lookup, malformed calls, the error mapping (a thrown HostCallError, any
 * other exception, an answer that is not JSON or too large), the deadline and the run's signal
 * during a call; and the denial reporter: the metric, a log line, and one audit row per module and
 * minute on both databases, with a write failure that neither throws nor stalls the call.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Database } from '../../../src/db/database.ts';
import { createMetrics } from '../../../src/metrics.ts';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { createDispatch } from '../../../src/wasm/host/dispatch.ts';
import { createDenialReporter, DENIED_AUDIT_ACTION } from '../../../src/wasm/host/denials.ts';
import { HOST_FUNCTIONS, createHostDispatch } from '../../../src/wasm/host/index.ts';
import { HostCallError, PRIVILEGED_HOST_FUNCTIONS, type HostFunction } from '../../../src/wasm/host/types.ts';
import { caller, perm, testSession } from '../../helpers/host-session.ts';
import { forEachDatabase, openTestDb } from '../../helpers/db.ts';

const blobs = new FsBlobStore('/nonexistent-not-used');
const never = new AbortController().signal;

/** Host functions for these tests, each doing one thing to the dispatch. */
function fns(): Map<string, HostFunction> {
  const f = (name: string, call: HostFunction['call']) => [name, { name: name as never, call }] as const;
  return new Map([
    f('echo', async (req, ctx) => {
      ctx.target(`echo ${String(req.to)}`);
      return { echoed: req };
    }),
    f('typed', async () => {
      throw new HostCallError('egress_denied', 'refused by the egress policy: 169.254.169.254 is link-local');
    }),
    f('bug', async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'x') at /srv/vecron/src/secret-path.ts");
    }),
    f('bigint', async () => ({ n: 1n as unknown })),
    f('huge', async () => ({ s: 'x'.repeat(5000) })),
    f('guarded', async (req, ctx) => {
      ctx.target(String(req.url));
      ctx.require('http:read', String(req.url));
      return { ok: true };
    }),
    f('hang', (_req, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))),
  ]);
}

describe('host dispatch', () => {
  it('serves every privileged function but http_request and db_query (those come with their own files)', () => {
    assert.deepEqual([...HOST_FUNCTIONS.keys()].sort(), PRIVILEGED_HOST_FUNCTIONS.filter((n) => n !== 'http_request' && n !== 'db_query').sort());
  });

  it('an unknown function or a request that is not an object is bad_request', async () => {
    const call = caller(testSession({ blobs, permissions: [] }));
    const a = await call('launch_missiles', {});
    assert.equal(a.outcome, 'bad_request');
    assert.match(
      (a.response.error as any).message,
      /no host function 'launch_missiles' is served here \(functions: file_read, file_write, file_list, crypto, time\)/,
    );
    for (const req of [null, [1], 'x', 5]) {
      const b = await call('time', req);
      assert.deepEqual(b, {
        response: { error: { code: 'bad_request', message: 'the time request must be a JSON object' } },
        target: null,
        outcome: 'bad_request',
      });
    }
  });

  it('maps a HostCallError to its code, anything else to upstream_error (logged, not shown)', async () => {
    const s = testSession({ blobs, permissions: [] });
    const d = createDispatch(s, fns());
    assert.deepEqual(await d('echo', { to: 'x' }, never), { response: { echoed: { to: 'x' } }, target: 'echo x', outcome: 'ok' });
    const typed = await d('typed', {}, never);
    assert.equal(typed.outcome, 'egress_denied');
    assert.deepEqual(typed.response, { error: { code: 'egress_denied', message: 'refused by the egress policy: 169.254.169.254 is link-local' } });
    const bug = await d('bug', {}, never);
    assert.equal(bug.outcome, 'upstream_error');
    assert.equal((bug.response.error as any).message, 'bug failed: an internal error (see the step log)');
    assert.equal(s.errors.length, 1);
    const big = await d('bigint', {}, never);
    assert.equal(big.outcome, 'upstream_error');
    assert.match((big.response.error as any).message, /not JSON/);
  });

  it('an answer over maxResponseBytes is too_large', async () => {
    const d = createDispatch(testSession({ blobs, permissions: [], limits: { maxResponseBytes: 4096 } }), fns());
    const a = await d('huge', {}, never);
    assert.equal(a.outcome, 'too_large');
    assert.match((a.response.error as any).message, /the huge answer is 5008 bytes of JSON; the limit is 4096 \(VECRON_WASM_HOST_MAX_RESPONSE_BYTES\)/);
  });

  it('a call past the deadline is not started; a call that outlives it is aborted with timeout', async () => {
    const late = createDispatch(testSession({ blobs, permissions: [], deadline: Date.now() - 1 }), fns());
    assert.equal((await late('echo', {}, never)).outcome, 'timeout');
    const s = testSession({ blobs, permissions: [], deadline: Date.now() + 150 });
    const t0 = Date.now();
    const a = await createDispatch(s, fns())('hang', {}, never);
    assert.equal(a.outcome, 'timeout');
    assert.match((a.response.error as any).message, /did not finish before the step's deadline/);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('the run being stopped during a call aborts it with cancelled; a stopped run starts none', async () => {
    const run = new AbortController();
    const d = createDispatch(testSession({ blobs, permissions: [] }), fns());
    const pending = d('hang', {}, run.signal);
    setTimeout(() => run.abort(new Error('cancelled by operator')), 20);
    const a = await pending;
    assert.equal(a.outcome, 'cancelled');
    assert.equal((await d('echo', {}, run.signal)).outcome, 'cancelled');
  });

  it('a denial is reported once with the permission; a reporter that throws does not break the answer', async () => {
    const s = testSession({ blobs, permissions: [perm('http:read', 'https://api.example.com/**')] });
    const d = createDispatch(s, fns());
    assert.deepEqual(await d('guarded', { url: 'https://api.example.com/v1/x' }, never), {
      response: { ok: true },
      target: 'https://api.example.com/v1/x',
      outcome: 'ok',
    });
    const a = await d('guarded', { url: 'https://evil.example.net/' }, never);
    assert.deepEqual(a, {
      response: {
        error: {
          code: 'permission_denied',
          message: "permission denied: http:read for 'https://evil.example.net/' (no resource pattern of the module matches)",
        },
      },
      target: 'https://evil.example.net/',
      outcome: 'permission_denied',
      permission: 'http:read',
    });
    assert.equal(s.denials.length, 1);
    s.onDenied = () => {
      throw new Error('reporter broke');
    };
    const b = await d('guarded', { url: 'https://evil.example.net/' }, never);
    assert.equal(b.outcome, 'permission_denied');
    assert.equal(s.errors.length, 1);
  });
});

/** A pino logger whose lines land in `lines`. */
function captureLogger() {
  const lines: any[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    }),
  );
  return { logger, lines };
}

forEachDatabase((kind) => {
  describe(`host-call denials: audit, metric, log (${kind})`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
    });
    after(() => db.close());

    const auditRows = async (moduleId: string) =>
      (await db.query<any>('SELECT * FROM audit_log WHERE action = $1 AND resource_id = $2 ORDER BY id', [DENIED_AUDIT_ACTION, moduleId])).rows;

    it('two denials of one module in a minute are one audit row with count 2; another module has its own row', async () => {
      const metrics = createMetrics();
      const { logger, lines } = captureLogger();
      const module = { id: randomUUID(), name: 'tiers', version: '1.2.0' };
      const other = { id: randomUUID(), name: 'other', version: '0.1.0' };
      const deps = { db, metrics, logger, jobId: randomUUID(), executionId: randomUUID(), stepId: 'compute' };
      const rep = createDenialReporter({ ...deps, module });
      const repOther = createDenialReporter({ ...deps, module: other });
      const s = testSession({ blobs, permissions: [perm('file:read', 'in/**')] });
      s.onDenied = rep.onDenied;
      const call = createHostDispatch(s);
      // Both minute boundaries would split the rows: start at the beginning of a minute.
      if (Date.now() % 60_000 > 58_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 50));
      assert.equal((await call('file_write', { path: 'out/a.txt', content: 'x' }, never)).outcome, 'permission_denied');
      assert.equal((await call('crypto', { op: 'hmac_sha256', key_secret: 'K', data: 'x' }, never)).outcome, 'permission_denied');
      repOther.onDenied({ function: 'file_read', permission: 'file:read', resource: 'x', reason: 'no resource pattern of the module matches' });
      await rep.settled();
      await repOther.settled();

      const rows = await auditRows(module.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].outcome, 'denied');
      assert.equal(rows[0].resource_type, 'wasm_module');
      assert.equal(rows[0].actor_name, 'module:tiers@1.2.0');
      assert.equal(rows[0].details.count, 2);
      assert.equal(rows[0].details.aggregated, true);
      assert.deepEqual(rows[0].details.last, {
        function: 'crypto',
        permission: 'secret:use',
        resource: 'K',
        reason: 'the module has no such permission',
        module: 'tiers@1.2.0',
        job_id: deps.jobId,
        execution_id: deps.executionId,
        step_id: 'compute',
      });
      assert.equal((await auditRows(other.id)).length, 1);

      const text = await metrics.registry.metrics();
      assert.match(text, /vecron_wasm_host_denied_total\{function="file_write",permission="file:write"\} 1/);
      assert.match(text, /vecron_wasm_host_denied_total\{function="crypto",permission="secret:use"\} 1/);
      assert.match(text, /vecron_wasm_host_denied_total\{function="file_read",permission="file:read"\} 1/);
      const warnings = lines.filter((l) => l.level === 40);
      assert.deepEqual(
        warnings.map((l) => l.msg),
        [
          "host call denied: file_write needs file:write for 'out/a.txt'",
          "host call denied: crypto needs secret:use for 'K'",
          "host call denied: file_read needs file:read for 'x'",
        ],
      );
    });

    it('a failing audit write neither throws nor stalls the call: it is logged', async () => {
      const { logger, lines } = captureLogger();
      const broken = { query: async () => Promise.reject(new Error('database is down')) } as unknown as Database;
      const rep = createDenialReporter({
        db: broken,
        logger,
        module: { id: randomUUID(), name: 'm', version: '1.0.0' },
        jobId: 'j',
        executionId: 'e',
        stepId: 's',
      });
      const s = testSession({ blobs, permissions: [] });
      s.onDenied = rep.onDenied;
      const a = await createHostDispatch(s)('file_read', { path: 'x' }, never);
      assert.equal(a.outcome, 'permission_denied');
      await rep.settled();
      assert.ok(lines.some((l) => l.level === 50 && l.msg === 'could not write a host-call denial to the audit log' && /database is down/.test(l.err.message)));
      // A write that never finishes: the guest still gets its answer at once.
      const stuck = { query: () => new Promise(() => {}) } as unknown as Database;
      const hanging = createDenialReporter({
        db: stuck,
        logger,
        module: { id: randomUUID(), name: 'm', version: '1.0.0' },
        jobId: 'j',
        executionId: 'e',
        stepId: 's',
      });
      s.onDenied = hanging.onDenied;
      const b = await createHostDispatch(s)('file_read', { path: 'x' }, never);
      assert.equal(b.outcome, 'permission_denied');
    });

    it('the stored denial is masked', async () => {
      const { logger } = captureLogger();
      const module = { id: randomUUID(), name: 'm', version: '1.0.0' };
      const rep = createDenialReporter({
        db,
        logger,
        module,
        jobId: 'j',
        executionId: 'e',
        stepId: 's',
        mask: (v) => JSON.parse(JSON.stringify(v).replaceAll('tok-123', '***')),
      });
      rep.onDenied({ function: 'http_request', permission: 'http:read', resource: 'https://x.example/?t=tok-123', reason: 'r' });
      await rep.settled();
      const [row] = await auditRows(module.id);
      assert.equal(row.details.last.resource, 'https://x.example/?t=***');
    });
  });
});
