import type { Database } from '../../src/db/database.ts';
import { parseJobDocument } from '../../src/jobs/validate.ts';
import { createJob, type JobRecord } from '../../src/jobs/repository.ts';
import { createLogger } from '../../src/logger.ts';
import { Worker, type WorkerOptions } from '../../src/queue/worker.ts';
import { FsBlobStore } from '../../src/storage/fs-store.ts';
import { loadConfig } from '../../src/config/index.ts';
import { tmpdir } from 'node:os';

let n = 0;
/** Creates a job from a (flat or seed) document through the real validator and repository. */
export async function makeJob(db: Database, doc: Record<string, unknown>): Promise<JobRecord> {
  return createJob(db, parseJobDocument({ name: `job-${process.pid}-${++n}`, ...doc }), 'test');
}

export const silentLogger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

export function makeWorker(db: Database, opts: Partial<WorkerOptions> = {}): Worker {
  const config = loadConfig({ VECRON_DATA_DIR: tmpdir(), VECRON_LOG_LEVEL: 'silent' });
  return new Worker(
    {
      db,
      logger: silentLogger,
      services: { db, blobs: new FsBlobStore(tmpdir()), config, logger: silentLogger },
      loadVariables: async (_exec, v) => ({ values: v, secrets: [] }),
    },
    { concurrency: 4, leaseSeconds: 30, pollIntervalMs: 100, ...opts },
  );
}
