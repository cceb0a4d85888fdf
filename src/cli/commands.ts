/**
 * `vecron`: the server and its administration.
 *   vecron start                 run the roles in VECRON_ROLES (api, scheduler, worker)
 *   vecron token create --role R --name N
 *   vecron token list | revoke <id>
 *   vecron migrate               apply database migrations and exit
 *   vecron config                print the configuration table
 */
import { Command, Option } from 'commander';
import { loadConfig, settingsTable, type Config } from '../config/index.ts';
import { openDatabase } from '../db/open.ts';
import { createToken, listTokens, revokeToken, tokenKeyFor } from '../auth/tokens.ts';
import { ROLES, type TokenRole } from '../auth/roles.ts';
import { writeAudit } from '../audit/audit-log.ts';
import type { App } from '../app.ts';
import { createLogger } from '../logger.ts';
import { dbErrorLogger } from '../db/error-logger.ts';
import { isVecronError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { onShutdownSignal } from './signals.ts';

/** Put back V8's WebAssembly tiering budget that bin/vecron.js raised for the start (none when run otherwise). */
function restoreWasmTierUp(): void {
  const restore = (globalThis as Record<symbol, unknown>)[Symbol.for('vecron.restoreWasmTierUp')];
  if (typeof restore === 'function') restore();
}

function fail(err: unknown): never {
  if (isVecronError(err)) {
    process.stderr.write(`vecron: ${err.message}\n`);
  } else {
    process.stderr.write(`vecron: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  process.exit(1);
}

async function withDb<T>(fn: (db: Awaited<ReturnType<typeof openDatabase>>, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config);
  try {
    return await fn(db, config);
  } finally {
    await db.close();
  }
}

const program = new Command();
program.name('vecron').description('Vietnam Enterprise Cron: distributed job scheduler').version(VERSION);

program
  .command('start')
  .description('start the service (roles from VECRON_ROLES, default api,scheduler,worker)')
  .option('--roles <list>', 'override VECRON_ROLES, e.g. worker or api,scheduler')
  .action(async (opts: { roles?: string }) => {
    const env = { ...process.env, ...(opts.roles ? { VECRON_ROLES: opts.roles } : {}) };
    const config = loadConfig(env);
    // The handlers go in before start: a SIGTERM while the process is still starting (opening the
    // database, migrating, binding the port) waits for the start to finish and then shuts down
    // cleanly, instead of killing the process by signal halfway through.
    let stopping = false;
    let starting: Promise<App> | null = null;
    const stop = async (signal: string) => {
      if (stopping) {
        process.stderr.write(`vecron: second ${signal}: exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      const app = await starting?.catch(() => null);
      if (app) {
        app.logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
        await app.close();
      }
      process.exit(0);
    };
    onShutdownSignal((signal) => void stop(signal));
    // The database opens (PGlite: its WASM compiled off the main thread, its files read) while the
    // app's modules load: app.ts is imported only now (issue 19's cold start).
    const logger = createLogger(config.logLevel);
    starting = (async () => {
      const opening = openDatabase(config, { onError: dbErrorLogger(logger) });
      opening.catch(() => {}); // awaited by startApp; a failure is thrown there
      const { startApp } = await import('../app.ts');
      return startApp(config, { logger, opening });
    })();
    const a = await starting;
    // Every role runs: WebAssembly tiers up as usual from here (bin/startup-tiering.js).
    restoreWasmTierUp();
    if (stopping) return; // stop() closes it
    if (a.url) process.stderr.write(`vecron ${VERSION} listening on ${a.url} (database: ${a.db.kind}, blobs: ${a.blobs.kind})\n`);
  });

/**
 * The token commands open the database themselves, which the embedded database allows one process
 * at a time; while the server runs, the API makes tokens, so the refusal says how.
 */
async function withTokenDb<T>(fn: Parameters<typeof withDb<T>>[0]): Promise<T> {
  try {
    return await withDb(fn);
  } catch (err) {
    if (isVecronError(err) && err.code === 'unavailable' && /embedded database/.test(err.message)) {
      const port = loadConfig().port; // it loaded before the database refused
      err.message +=
        `. While the server runs, create tokens through its API with an admin token: curl -X POST http://127.0.0.1:${port}/api/v1/tokens ` +
        `-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"name": "deploy-bot", "role": "operator"}'`;
    }
    throw err;
  }
}

const token = program.command('token').description('manage API tokens');
token
  .command('create')
  .description('create an API token and print it (shown only once)')
  .addOption(new Option('--role <role>', 'role of the token').choices([...ROLES]).makeOptionMandatory())
  .option('--name <name>', 'a name that says who or what uses the token', 'cli')
  .option('--json', 'print a JSON object instead of the bare token')
  .action(async (opts: { role: TokenRole; name: string; json?: boolean }) => {
    await withTokenDb(async (db, config) => {
      const t = await createToken(db, tokenKeyFor(config), { name: opts.name, role: opts.role, createdBy: 'cli' });
      await writeAudit(db, {
        actorName: 'cli',
        action: 'token.create',
        resourceType: 'token',
        resourceId: t.id,
        outcome: 'success',
        details: { name: t.name, role: t.role },
      });
      process.stdout.write(opts.json ? JSON.stringify(t, null, 2) + '\n' : `${t.token}\n`);
      if (!opts.json) process.stderr.write(`created ${t.role} token '${t.name}' (id ${t.id}); store it now, it is not shown again\n`);
    });
  });
token
  .command('list')
  .description('list API tokens (not their values)')
  .action(async () => {
    await withTokenDb(async (db) => {
      for (const t of await listTokens(db)) {
        process.stdout.write(`${t.id}  ${t.role.padEnd(8)}  ${t.name}${t.revoked_at ? '  (revoked)' : ''}\n`);
      }
    });
  });
token
  .command('revoke <id>')
  .description('revoke an API token')
  .action(async (id: string) => {
    await withTokenDb(async (db) => {
      const t = await revokeToken(db, id);
      await writeAudit(db, { actorName: 'cli', action: 'token.revoke', resourceType: 'token', resourceId: t.id, outcome: 'success' });
      process.stderr.write(`revoked token '${t.name}'\n`);
    });
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(async () => {
    await withDb(async () => process.stderr.write('database schema is up to date\n'));
  });

program
  .command('config')
  .description('print the configuration settings (environment variables)')
  .action(() => {
    process.stdout.write(settingsTable() + '\n');
  });

program.parseAsync(process.argv).catch(fail);
