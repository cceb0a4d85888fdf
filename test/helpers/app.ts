/**
 * Starts a real vecron app (HTTP API on a loopback port) on a test database, with an admin token.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { startApp, type App } from '../../src/app.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { createToken, tokenKeyFor } from '../../src/auth/tokens.ts';
import type { TokenRole } from '../../src/auth/roles.ts';
import { openTestDb, type DbKind } from './db.ts';

export interface TestApp {
  app: App;
  url: string;
  adminToken: string;
  dataDir: string;
  /** fetch against the API with a token (admin by default) and JSON bodies. */
  api(
    method: string,
    path: string,
    opts?: { body?: unknown; token?: string | null; rawBody?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  token(role: TokenRole, name?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startTestApp(kind: DbKind, env: Record<string, string> = {}, opts: { logger?: Logger } = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'vecron-test-'));
  const config: Config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    VECRON_DATA_DIR: dataDir,
    VECRON_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  const db = await openTestDb(kind);
  const app = await startApp(config, { db, logger: opts.logger ?? createLogger(config.logLevel) });
  const adminToken = (await createToken(db, tokenKeyFor(config), { name: 'test-admin', role: 'admin' })).token;
  const url = app.url!;
  return {
    app,
    url,
    adminToken,
    dataDir,
    async api(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const token = opts.token === undefined ? adminToken : opts.token;
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON (e.g. /metrics) */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async token(role, name = `test-${role}`) {
      return (await createToken(db, tokenKeyFor(config), { name, role })).token;
    },
    async close() {
      await app.close();
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
