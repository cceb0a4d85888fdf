/**
 * The wasm step's HostSession (src/executors/wasm/host-session.ts) on both databases: the
 * module's permissions as stored in the registry now, the job's blob area, the run's variables,
 * the config's limits, and denials that reach the audit log and the metric.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../../src/config/index.ts';
import type { Database } from '../../../src/db/database.ts';
import type { StepRunContext } from '../../../src/executors/executor.ts';
import { hostSessionFor, settleDenials } from '../../../src/executors/wasm/host-session.ts';
import { createMetrics } from '../../../src/metrics.ts';
import { insertModule, writePermissions, type ModuleRow } from '../../../src/modules/repository.ts';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { createHostDispatch } from '../../../src/wasm/host/index.ts';
import { forEachDatabase, openTestDb } from '../../helpers/db.ts';

const never = new AbortController().signal;

forEachDatabase((kind) => {
  describe(`wasm step host session (${kind})`, () => {
    let db: Database;
    let dir: string;
    let module: ModuleRow;
    before(async () => {
      db = await openTestDb(kind);
      dir = mkdtempSync(join(tmpdir(), 'vecron-step-session-'));
      const id = randomUUID();
      module = await insertModule(db, {
        id,
        name: `files-${id.slice(0, 8)}`,
        version: '1.0.0',
        description: null,
        author: 'tests',
        minio_path: `wasm-modules/${id}.wasm`,
        hash: '0'.repeat(64),
        size_bytes: 8,
        signed_by_key: null,
        info: { imports: [], exports: [], entries: [], function_count: 0, memory: null, tables: [], wasi: false, command: false },
        created_by: null,
      });
      await writePermissions(
        db,
        module.id,
        [
          { type: 'file:write', resource_pattern: 'out/**' },
          { type: 'file:read', resource_pattern: null },
        ],
        'tests',
        true,
      );
    });
    after(async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    });

    function stepContext(metrics = createMetrics()): StepRunContext {
      const config = loadConfig({ VECRON_WASM_HOST_MAX_RESPONSE_BYTES: '2048' });
      const blobs = new FsBlobStore(dir);
      const logger = pino({ level: 'silent' });
      return {
        jobId: randomUUID(),
        executionId: randomUUID(),
        stepId: 'tiers',
        attempt: 1,
        signal: never,
        deadline: Date.now() + 30_000,
        context: {},
        logger,
        services: { db, blobs, config, logger, metrics, variable: (n) => ({ AES_KEY: 'ab'.repeat(32) })[n] },
      };
    }

    it('grants what the registry stores for the module, in the job area, with the config limits', async () => {
      const ctx = stepContext();
      const { session, denials } = await hostSessionFor(ctx, module, Date.now() + 10_000);
      assert.deepEqual(session.permissions, [
        { type: 'file:write', resource_pattern: 'out/**' },
        { type: 'file:read', resource_pattern: null },
      ]);
      assert.equal(session.limits.maxResponseBytes, 2048);
      assert.equal(session.variable('AES_KEY'), 'ab'.repeat(32));
      const call = createHostDispatch(session);
      assert.equal((await call('file_write', { path: 'out/t.csv', content: 'a' }, never)).outcome, 'ok');
      assert.equal((await ctx.services.blobs.get(`jobs/${ctx.jobId}/out/t.csv`)).toString(), 'a');
      assert.equal((await call('file_read', { path: 'out/t.csv' }, never)).response.content, 'a');
      await ctx.services.blobs.put(`jobs/${ctx.jobId}/big.txt`, Buffer.alloc(4096));
      assert.equal((await call('file_read', { path: 'big.txt' }, never)).outcome, 'too_large');
      await settleDenials(denials);
    });

    it('a denial in a step is audited for the module and counted; a permission added later applies to the next run', async () => {
      const metrics = createMetrics();
      const ctx = stepContext(metrics);
      const first = await hostSessionFor(ctx, module, Date.now() + 10_000);
      const denied = await createHostDispatch(first.session)('crypto', { op: 'aes_256_gcm_encrypt', key_secret: 'AES_KEY', data: 'x' }, never);
      assert.equal(denied.outcome, 'permission_denied');
      await settleDenials(first.denials);
      const { rows } = await db.query<any>("SELECT * FROM audit_log WHERE action = 'wasm.host.denied' AND resource_id = $1", [module.id]);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].details.last.execution_id, ctx.executionId);
      assert.match(await metrics.registry.metrics(), /vecron_wasm_host_denied_total\{function="crypto",permission="secret:use"\} 1/);

      // secret:use is not in the stored CHECK list until its migration lands: grant it in the session's list directly.
      const next = await hostSessionFor(ctx, module, Date.now() + 10_000);
      const granted = { ...next.session, permissions: [...next.session.permissions, { type: 'secret:use' as const, resource_pattern: 'AES_*' }] };
      const ok = await createHostDispatch(granted)('crypto', { op: 'aes_256_gcm_encrypt', key_secret: 'AES_KEY', data: 'x' }, never);
      assert.equal(ok.outcome, 'ok');
      await writePermissions(db, module.id, [{ type: 'file:write', resource_pattern: 'logs/**' }], 'tests', false);
      const later = await hostSessionFor(ctx, module, Date.now() + 10_000);
      assert.equal((await createHostDispatch(later.session)('file_write', { path: 'logs/a.txt', content: 'x' }, never)).outcome, 'ok');
    });
  });
});
