import type { Database } from '../db/database.ts';
import type { Config } from '../config/index.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Principal, TokenRole } from '../auth/roles.ts';
import type { EventBus } from '../events/bus.ts';
import type { ModuleRegistry } from '../modules/registry.ts';
import type { WasmRuntime } from '../wasm/runtime/index.ts';

/** What route handlers need; built once by the app and handed to every route module. */
export interface ApiContext {
  db: Database;
  config: Config;
  blobs: BlobStore;
  logger: Logger;
  metrics: Metrics;
  events: EventBus;
  modules: ModuleRegistry;
  /** The process's WASM runtime (its worker pool): server-side replays and shadow tests run in it. */
  wasm?: () => WasmRuntime;
  /**
   * Whether the process's other roles (worker, scheduler) have started: the API listens first, so
   * `/health` (liveness) answers at once while `/ready` waits for them. Absent: started.
   */
  rolesStarted?: () => boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least role that may call the route; 'public' needs no token. */
    role?: TokenRole | 'public';
    /** Records the call in the audit log under this action name (every mutating route sets it). */
    audit?: { action: string; resource: string };
    /** The route also accepts the API token as `?access_token=` (browsers' EventSource cannot send
     * an Authorization header). Read by the auth hook; only for read-only streaming routes. */
    queryToken?: boolean;
    /** The setting behind the route's bodyLimit, named in a 413 answer. */
    bodyLimitSetting?: string;
  }
  interface FastifyRequest {
    principal: Principal | null;
    /** Set by a handler when the audited resource id is not the `:id` path parameter. */
    auditResourceId?: string;
    auditDetails?: unknown;
  }
}
