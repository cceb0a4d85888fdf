import type { FastifyInstance } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import type { Config } from './config/index.ts';
import type { Database } from './db/database.ts';
import { openDatabase } from './db/open.ts';
import { describeDbError } from './db/transient.ts';
import { startTableUpkeep } from './db/upkeep.ts';
import { dbErrorLogger } from './db/error-logger.ts';
import { openBlobStore } from './storage/index.ts';
import type { BlobStore } from './storage/blob-store.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { ensureBootstrapToken, tokenKeyFor } from './auth/tokens.ts';
import { buildApi } from './api/server.ts';
import { EventBus, startEventPruner } from './events/bus.ts';
import { startIdempotencyPruner } from './triggers/idempotency.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { Worker } from './queue/worker.ts';
import type { RunVariables } from './engine/run-execution.ts';
import { mergeRunVariables } from './variables/repository.ts';
import { secretKeyFor } from './secrets/crypto.ts';
import { WasmRuntime } from './wasm/runtime/index.ts';
import { ModuleRegistry } from './modules/registry.ts';
import { runShutdownHooks } from './executors/shutdown.ts';
import { configureEgress, registerOwnListenAddress } from './egress/index.ts';
import { configureInternalNetworks } from './wasm/host/network-class.ts';
import { startRetention } from './retention/runner.ts';
import { retentionPeriods } from './retention/settings.ts';
import { registerMaintenanceMetrics } from './maintenance/metrics.ts';
import type { Tracing } from './tracing/setup.ts';

/** A running vecron process: whichever of the api, scheduler and worker roles its config asks for. */
export interface App {
  config: Config;
  db: Database;
  blobs: BlobStore;
  logger: Logger;
  metrics: Metrics;
  events: EventBus;
  modules: ModuleRegistry;
  /** The process's WASM runtime, created on first use. */
  wasm(): WasmRuntime;
  api: FastifyInstance | null;
  scheduler: Scheduler | null;
  worker: Worker | null;
  /** The address the API listens on, e.g. http://127.0.0.1:8080. */
  url: string | null;
  /** Graceful stop: stop taking work, let running work finish within the grace period, close. */
  close(): Promise<void>;
}

/** The process's tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set; the SDK is not even loaded otherwise. */
async function startTracingFor(config: Config, logger: Logger): Promise<Tracing | null> {
  if (!config.otelEndpoint) return null;
  const { startTracing } = await import('./tracing/setup.ts');
  const t = startTracing({
    endpoint: config.otelEndpoint,
    headers: config.otelHeaders,
    serviceName: config.otelServiceName,
    sampler: config.otelSampler,
    samplerArg: config.otelSamplerArg,
  });
  logger.info({ endpoint: new URL(config.otelEndpoint).origin, sampler: config.otelSampler }, 'tracing on: sending spans over OTLP');
  return t;
}

export interface StartOptions {
  logger?: Logger;
  /** An already open database (tests); it is not closed by app.close(). */
  db?: Database;
  /**
   * The database being opened by the caller, for the app to own (closed by app.close()): `vecron
   * start` opens it while the app's modules still load (issue 19's cold start).
   */
  opening?: Promise<Database>;
}

export async function startApp(config: Config, opts: StartOptions = {}): Promise<App> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const db = opts.db ?? (await (opts.opening ?? openDatabase(config, { onError: dbErrorLogger(logger) })));
  const ownsDb = !opts.db;
  const closers: (() => Promise<void>)[] = [];
  /** The API once it listens and until its closer joins `closers` (a start that fails in between closes it). */
  let apiToClose: FastifyInstance | null = null;
  // Tracing first (the first enqueue or claim may come soon), stopped last (it flushes the spans).
  const tracing = await startTracingFor(config, logger);
  try {
    const blobs = await openBlobStore(config);
    if (ownsDb) db.onReconnect(() => logger.info('database listener reconnected: catching up on missed notifications'));
    const metrics = createMetrics();
    // The database connection as this process sees it (alert when 0 for more than a few seconds).
    new Gauge({
      name: 'vecron_database_up',
      help: '1 while the database answers this process, 0 from a connection failure until it answers again',
      registers: [metrics.registry],
      collect() {
        this.set(db.connectionState().ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'vecron_database_listener_up',
      help: '1 while the LISTEN connection (worker and scheduler wake-ups) is connected or not needed, 0 while it reconnects',
      registers: [metrics.registry],
      collect() {
        this.set(db.connectionState().listener === 'reconnecting' ? 0 : 1);
      },
    });
    registerMaintenanceMetrics(metrics, db);
    const events = new EventBus(db);
    closers.push(() => events.stop());
    if (config.bootstrapToken) await ensureBootstrapToken(db, tokenKeyFor(config), config.bootstrapToken);
    configureEgress({ allow: config.egressAllow, deny: config.egressDeny });
    configureInternalNetworks(config.internalNetworks);

    // One WASM runtime per process (its worker pool and module cache), created on first use.
    let runtime: WasmRuntime | null = null;
    const wasm = () => (runtime ??= new WasmRuntime({ poolSize: config.wasmPoolSize, cacheDir: config.wasmCacheDir }));
    closers.push(async () => {
      await runtime?.close();
    });
    const modules = new ModuleRegistry({ db, blobs, config, runtime: wasm, logger: logger.child({ component: 'modules' }), metrics });

    // The API first: /health answers as soon as the server listens, and the worker, the scheduler
    // and the housekeeping start right after (their first queries would otherwise queue before it
    // on a single embedded connection: issue 19's cold start). Its closer is added last, so that
    // on shutdown it still closes first (no new work taken while the rest drains).
    let api: FastifyInstance | null = null;
    let url: string | null = null;
    let rolesStarted = false;
    if (config.roles.includes('api')) {
      api = await buildApi({ db, config, blobs, logger, metrics, events, modules, wasm, rolesStarted: () => rolesStarted });
      apiToClose = api;
      await api.listen({ port: config.port, host: config.host });
      const addr = api.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
      // Jobs may not call this API from the worker's network position (the egress policy refuses it).
      const forget = registerOwnListenAddress(config.host, port);
      closers.push(async () => forget());
    }

    closers.push(startEventPruner(db, config.eventRetentionSeconds, (err) => logger.warn({ err }, 'pruning old status events failed')));
    if (config.dbUpkeepSeconds > 0) {
      const upkeepLogger = logger.child({ component: 'db-upkeep' });
      closers.push(
        startTableUpkeep(
          db,
          config.dbUpkeepSeconds * 1000,
          (err) => upkeepLogger.warn({ err: describeDbError(err) }, 'analyzing the busy tables failed; tried again at the next interval'),
          (run) => upkeepLogger.info({ tables: run.tables, ms: Math.round(run.ms) }, db.kind === 'pglite' ? 'vacuumed and analyzed' : 'analyzed'),
        ),
      );
    }
    const keysPruned = new Counter({
      name: 'vecron_idempotency_keys_pruned_total',
      help: 'Idempotency keys deleted by this process after their window (VECRON_IDEMPOTENCY_WINDOW_SECONDS) passed',
      registers: [metrics.registry],
    });
    closers.push(
      startIdempotencyPruner(
        db,
        (err) => logger.warn({ err }, 'pruning expired idempotency keys failed'),
        (n) => keysPruned.inc(n),
      ),
    );

    let worker: Worker | null = null;
    if (config.roles.includes('worker')) {
      worker = new Worker(
        {
          db,
          logger: logger.child({ component: 'worker' }),
          metrics,
          services: { db, blobs, config, logger, modules, wasm, metrics },
          loadVariables: async (exec, documentVariables): Promise<RunVariables> =>
            mergeRunVariables(exec.variable_rows ?? [], secretKeyFor(config), documentVariables),
        },
        {
          concurrency: config.workerConcurrency,
          leaseSeconds: config.leaseSeconds,
          pollIntervalMs: config.pollIntervalMs,
          claimAheadMs: config.workerClaimAheadMs,
        },
      );
      await worker.start();
      closers.unshift(() => worker!.stop(config.shutdownGraceSeconds * 1000));
    }

    let scheduler: Scheduler | null = null;
    if (config.roles.includes('scheduler')) {
      scheduler = new Scheduler(
        db,
        { intervalMs: config.schedulerIntervalMs, misfireThresholdMs: config.misfireThresholdSeconds * 1000, lookaheadMs: config.schedulerLookaheadMs },
        logger.child({ component: 'scheduler' }),
        metrics,
      );
      await scheduler.start();
      closers.unshift(() => scheduler!.stop());
      // Retention runs beside the scheduler; one process of the cluster at a time (src/retention).
      const retentionLogger = logger.child({ component: 'retention' });
      closers.unshift(
        startRetention(
          { db, blobs, logger: retentionLogger, metrics, periods: retentionPeriods(config), intervalSeconds: config.retentionIntervalSeconds },
          (err) => retentionLogger.warn({ err: describeDbError(err) }, 'retention run failed; it is tried again at the next interval'),
        ),
      );
    }

    rolesStarted = true;
    if (api !== null) {
      closers.unshift(() => api!.close());
      apiToClose = null;
      logger.info({ url, database: db.kind, blobs: blobs.kind }, 'vecron API listening');
    }
    logger.info({ roles: config.roles, database: db.kind }, 'vecron started');
    return {
      config,
      db,
      blobs,
      logger,
      metrics,
      events,
      modules,
      wasm,
      api,
      scheduler,
      worker,
      url,
      async close() {
        for (const c of closers) await c().catch((err) => logger.error({ err }, 'error during shutdown'));
        // Executors' pools (database steps) once no step runs any more.
        await runShutdownHooks((err) => logger.error({ err }, 'error closing an executor resource'));
        if (ownsDb) await db.close();
        await tracing?.shutdown().catch((err) => logger.warn({ err }, 'could not send the last spans'));
      },
    };
  } catch (err) {
    await apiToClose?.close().catch(() => {});
    for (const c of closers) await c().catch(() => {});
    if (ownsDb) await db.close();
    await tracing?.shutdown().catch(() => {});
    throw err;
  }
}
