#!/usr/bin/env node
/**
 * Runs one example end to end, with everything it needs on loopback:
 *   node examples/run-example.mjs <customer-analysis | customer-analysis-plugin | low-stock-routing | order-validation> [--json]
 *
 * - a small mock API (127.0.0.1, a free port) serving the JSON the job reads, and recording what the
 *   job posts to it;
 * - for customer-analysis, a PostgreSQL-protocol database: PGlite behind its socket server
 *   (@electric-sql/pglite-socket), with the customer_analysis table;
 * - a vecron server: the one at $VECRON_URL (with an admin or operator token in $VECRON_TOKEN), or,
 *   when those are not set, one it starts itself (bin/vecron.js on a free port, a temporary data
 *   directory) and stops at the end;
 * - the module uploaded (the name@version job.json names; an existing one is kept) and, when the
 *   example has a permissions.json, granted exactly those permissions (`${API_BASE}` filled in; this
 *   needs an admin token), the job created
 *   DISABLED (its schedule does not fire; a job of that name is updated instead), the variables it
 *   reads set on the job (API_BASE, SKU, the analytics_db connection), one manual run, its result.
 *
 * The mock API and the database stop when the script ends, so the job stays disabled: enabling it
 * on a real server means pointing API_BASE (and analytics_db) at real systems first.
 * Exit code 0 when the run did what the example is about, 1 otherwise.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;

/** What each example's mock API serves, the job variables it reads, and what a good run looks like. */
const EXAMPLES = {
  'customer-analysis': {
    routes: {
      'GET /customers': [
        200,
        {
          data: {
            customers: [
              { id: 'c1', name: 'Alice', total_orders: 150000 },
              { id: 'c2', name: 'Bob', total_orders: 75000.5 },
              { id: 'c3', name: 'Carol', total_orders: 20000 },
              { id: 'c4', name: 'Dan', total_orders: 10000 },
            ],
          },
        },
      ],
    },
    database: 'CREATE TABLE IF NOT EXISTS customer_analysis (execution_id text, customer_id text, name text, revenue numeric, tier text)',
    variables: {},
  },
  'customer-analysis-plugin': {
    routes: {
      'GET /customers': [
        200,
        {
          data: {
            customers: [
              { id: 'c1', name: 'Alice', total_orders: 150000 },
              { id: 'c2', name: 'Bob', total_orders: 75000.5 },
              { id: 'c3', name: 'Carol', total_orders: 20000 },
              { id: 'c4', name: 'Dan', total_orders: 10000 },
            ],
          },
        },
      ],
      'POST /vip': [201, { ok: true }],
    },
    database: 'CREATE TABLE IF NOT EXISTS customer_analysis (execution_id text, customer_id text, name text, revenue numeric, tier text)',
    variables: {},
  },
  'low-stock-routing': {
    routes: {
      'GET /inventory/SKU-LOW': [200, { data: { sku: 'SKU-LOW', stock_level: 42 } }],
      'POST /alerts': [201, { ok: true }],
      'POST /replenishment/SKU-LOW/ok': [200, { ok: true }],
    },
    variables: { SKU: 'SKU-LOW' },
  },
  'order-validation': {
    routes: {
      'GET /orders/next': [200, { id: 'o-1', amount: 120.5, customer: { email: 'an@example.vn' }, items: [{ sku: 'A', qty: 1 }] }],
      'POST /shipments': [201, { ok: true }],
    },
    variables: {},
  },
};

const say = (json, ...text) => {
  if (!json) console.log(...text);
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The mock API: fixed answers per "METHOD /path", every request recorded. */
async function startMockApi(routes) {
  const seen = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body: body ? JSON.parse(body) : null });
      const [status, answer] = routes[`${req.method} ${req.url}`] ?? [404, { error: `the mock API has no ${req.method} ${req.url}` }];
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

/** PGlite behind its PostgreSQL wire-protocol server, on loopback. */
async function startDatabase(ddl) {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  await db.exec(ddl);
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 8 });
  await server.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    query: async (sql, params) => (await db.query(sql, params)).rows,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}

/** A vecron server of our own: bin/vecron.js on a free port with a temporary data directory. */
async function startVecron(json) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'vecron-example-'));
  const token = `example-${randomBytes(16).toString('hex')}`;
  const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', VECRON_DATA_DIR: dataDir, VECRON_BOOTSTRAP_TOKEN: token };
  env.VECRON_LOG_LEVEL ??= 'warn';
  const child = spawn(process.execPath, [join(ROOT, 'bin/vecron.js'), 'start'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  say(json, `starting vecron on ${url} (data in ${dataDir})`);
  const deadline = Date.now() + 90_000;
  while (
    !(await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (child.exitCode !== null) throw new Error(`vecron exited with code ${child.exitCode} before answering /health`);
    if (Date.now() > deadline) throw new Error('vecron did not answer /health within 90 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    token,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function client(base, token) {
  return async (method, path, body) => {
    const init = { method, headers: { authorization: `Bearer ${token}` } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(base + path, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

function expectStatus(r, ok, what) {
  if (!ok.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function runExample(name, { json = false } = {}) {
  const spec = EXAMPLES[name];
  if (!spec) throw new Error(`unknown example '${name}' (one of ${Object.keys(EXAMPLES).join(', ')})`);
  const folder = join(ROOT, 'examples', name);
  const doc = JSON.parse(readFileSync(join(folder, 'job.json'), 'utf8'));
  const wasmStep = doc.steps.find((s) => s.type === 'wasm');
  const [moduleName, moduleVersion] = wasmStep.config.module_id.split('@');
  const wasmFile =
    readdirSync(join(folder, 'module')).find((f) => f === `${moduleName}.wasm`) ??
    readdirSync(join(folder, 'module')).find((f) => f.endsWith('.wasm') && !f.includes('reactor'));

  const cleanup = [];
  try {
    const api = await startMockApi(spec.routes);
    cleanup.push(api.close);
    say(json, `mock API on ${api.url}`);
    let database = null;
    if (spec.database) {
      database = await startDatabase(spec.database);
      cleanup.push(database.close);
      say(json, `database on ${database.url.replace(/:[^:@]*@/, ':***@')}`);
    }
    let base = process.env.VECRON_URL;
    let token = process.env.VECRON_TOKEN;
    if (!base || !token) {
      const own = await startVecron(json);
      cleanup.push(own.close);
      ({ url: base, token } = own);
    }
    base = base.replace(/\/+$/, '');
    const call = client(base, token);

    // 1. the module
    const form = new FormData();
    form.set('file', new Blob([readFileSync(join(folder, 'module', wasmFile))]), wasmFile);
    form.set('name', moduleName);
    form.set('version', moduleVersion);
    form.set('author', 'examples');
    const up = await call('POST', '/api/v1/wasm/modules', form);
    expectStatus(up, [201, 409], `uploading ${moduleName}@${moduleVersion}`);
    say(json, up.status === 201 ? `uploaded ${moduleName}@${moduleVersion}` : `${moduleName}@${moduleVersion} is already in the registry`);

    // 1b. the permissions the module needs (deny by default), when the example names some
    const permissionsFile = join(folder, 'permissions.json');
    if (existsSync(permissionsFile)) {
      const permissions = JSON.parse(readFileSync(permissionsFile, 'utf8').replaceAll('${API_BASE}', api.url));
      const granted = expectStatus(
        await call('PUT', `/api/v1/wasm/modules/${encodeURIComponent(`${moduleName}@${moduleVersion}`)}/permissions`, { permissions }),
        [200],
        `granting the permissions of ${moduleName}@${moduleVersion} (an admin token is needed)`,
      );
      say(json, `permissions: ${granted.permissions.map((p) => `${p.type} ${p.resource_pattern ?? '*'}`).join(', ')}`);
    }

    // 2. the job, disabled, created or updated by name
    const body = { ...doc, enabled: false };
    const existing = expectStatus(await call('GET', `/api/v1/jobs?name=${encodeURIComponent(doc.name)}`), [200], 'looking the job up').items[0];
    const job = existing
      ? expectStatus(await call('PUT', `/api/v1/jobs/${existing.id}`, body), [200], 'updating the job')
      : expectStatus(await call('POST', '/api/v1/jobs', body), [201], 'creating the job');
    say(json, `job ${job.name} (${job.id}) ${existing ? 'updated' : 'created'}, disabled: its schedule '${doc.schedule.expression}' does not fire`);

    // 3. what its templates read, as job-scoped variables
    const variables = { API_BASE: api.url, ...spec.variables };
    for (const [k, value] of Object.entries(variables)) {
      expectStatus(await call('PUT', `/api/v1/jobs/${job.id}/variables/${k}`, { value }), [200, 201], `setting ${k}`);
    }
    if (database) {
      expectStatus(
        await call('PUT', `/api/v1/jobs/${job.id}/variables/analytics_db`, { value: database.url, secret: true }),
        [200, 201],
        'setting analytics_db',
      );
    }
    say(json, `variables: ${[...Object.keys(variables), ...(database ? ['analytics_db (secret)'] : [])].join(', ')}`);

    // 4. one run now
    const started = expectStatus(await call('POST', `/api/v1/jobs/${job.id}/trigger`, {}), [202], 'triggering');
    let execution;
    const deadline = Date.now() + 120_000;
    for (;;) {
      execution = expectStatus(await call('GET', `/api/v1/executions/${started.execution_id}`), [200], 'reading the execution');
      if (!['queued', 'running'].includes(execution.status)) break;
      if (Date.now() > deadline) throw new Error(`execution ${started.execution_id} is still ${execution.status} after 120 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const steps = execution.steps.map((s) => ({ id: s.id, status: s.status }));
    const received = api.seen.filter((r) => r.method !== 'GET');
    const rows = database
      ? await database.query('SELECT customer_id, name, revenue::float AS revenue, tier FROM customer_analysis WHERE execution_id = $1 ORDER BY customer_id', [
          execution.id,
        ])
      : undefined;
    const result = {
      example: name,
      job_id: job.id,
      execution_id: execution.id,
      status: execution.status,
      error: execution.error ?? null,
      steps,
      received,
      ...(rows ? { rows } : {}),
    };
    if (json) console.log(JSON.stringify(result));
    else {
      console.log(`execution ${execution.id}: ${execution.status}${execution.error ? ` (${execution.error.code}: ${execution.error.message})` : ''}`);
      for (const s of steps) console.log(`  ${s.id}: ${s.status}`);
      for (const r of received) console.log(`  the mock API received ${r.method} ${r.url} ${JSON.stringify(r.body)}`);
      if (rows) for (const r of rows) console.log(`  customer_analysis: ${r.customer_id} ${r.name} ${r.revenue} ${r.tier}`);
    }
    return result;
  } finally {
    for (const close of cleanup.reverse()) await close().catch(() => {});
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('--'));
  if (!name) {
    console.error(`usage: node examples/run-example.mjs <${Object.keys(EXAMPLES).join(' | ')}> [--json]`);
    process.exit(2);
  }
  runExample(name, { json: args.includes('--json') }).then(
    (r) => process.exit(r.status === 'succeeded' ? 0 : 1),
    (err) => {
      console.error(`example ${name} failed: ${err.message}`);
      process.exit(1);
    },
  );
}
