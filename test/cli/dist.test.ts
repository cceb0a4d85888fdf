/**
 * The compiled tree (scripts/build-dist.mjs → dist/, what `npm install` builds and `vecron start`
 * runs when it is current): the service starts from it on a new and on an existing data directory
 * and answers /health; the parts that load files relative to their own module (the WASM worker
 * threads, the MySQL parser thread, the step executors imported on first use, the SQL migrations)
 * work from it under plain Node, with no TypeScript loader; and bin/entry.js tells a current
 * dist/ from a stale one. No timing is asserted (the startup figures are in bench/startup.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { distProblem, sourceSnapshot } from '../../bin/entry.js';
import { listMigrations } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { pgliteTemplateDir } from '../../src/db/pglite-template.ts';
import { freePort } from '../helpers/ports.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

/** Plain Node (no tsx: the test runner's --import is not passed on), from the repository root. */
const plainNode = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, args, { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '', ...env }, maxBuffer: 8 << 20 });

describe('dist/: the compiled service', () => {
  let tmp = '';
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'vecron-dist-'));
    // npm install built it; after an edit of src/ it is stale, so build it again (about a second).
    await plainNode(['scripts/build-dist.mjs', '--if-stale']);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('is current after the build, and has every non-TypeScript file of src/ (migrations, worker entries)', () => {
    assert.equal(distProblem(), null);
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)).map((p) => `${e.name}/${p}`) : [e.name]));
    const src = walk(join(ROOT, 'src'));
    assert.ok(src.some((f) => f.endsWith('.sql')));
    // A declaration file (src/types/*.d.ts) types a package for tsc and has no output.
    for (const f of src.filter((x) => !x.endsWith('.d.ts'))) {
      const out = f.endsWith('.ts') ? f.replace(/\.ts$/, '.js') : f;
      assert.ok(existsSync(join(ROOT, 'dist', out)), `dist/${out}`);
    }
  });

  it('vecron start from dist/ answers /health on a new data directory (from the template), then on the same one reopened, and stops with code 0', {
    timeout: 600_000,
  }, async () => {
    const dataDir = join(tmp, 'data');
    for (const round of ['new', 'existing']) {
      const port = await freePort();
      const child = spawn(process.execPath, ['bin/vecron.js', 'start'], {
        cwd: ROOT,
        env: { ...process.env, NODE_OPTIONS: '', VECRON_RUN_FROM: 'dist', VECRON_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
      try {
        let status = 0;
        let body: { status?: string } = {};
        while (status !== 200) {
          assert.equal(child.exitCode, null, `${round}: the process exited before /health answered:\n${out}`);
          await new Promise((r) => setTimeout(r, 100));
          const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
          if (res) {
            status = res.status;
            body = (await res.json()) as { status?: string };
          }
        }
        assert.equal(body.status, 'ok', round);
        assert.doesNotMatch(out, /running src\/ through tsx/, round);
      } finally {
        child.kill('SIGTERM');
      }
      assert.deepEqual(await exited, { code: 0, signal: null }, `${round}:\n${out}`);
    }
    // The new data directory started as a copy of the build's template (src/db/pglite-template.ts), and has every migration.
    assert.ok(existsSync(join(pgliteTemplateDir(), 'PG_VERSION')), 'the build wrote the PGlite template for new data directories');
    const db = await openPglite(join(dataDir, 'pglite'));
    try {
      const { rows } = await db.query<{ name: string }>('SELECT name FROM vecron_migrations ORDER BY id');
      assert.deepEqual(
        rows.map((r) => r.name),
        listMigrations().map((m) => m.name),
      );
    } finally {
      await db.close();
    }
  });

  it('runs a WASM step in the worker pool, the MySQL parser thread and every step executor from dist/ under plain Node', { timeout: 300_000 }, async () => {
    const script = `
      import { readFileSync } from 'node:fs';
      const { WasmRuntime } = await import('./dist/wasm/runtime/index.js');
      const rt = new WasmRuntime({ poolSize: 1 });
      const r = await rt.run({ bytes: readFileSync('fixtures/wasm/echo/echo.wasm'), functionName: 'echo', input: { hello: 'dist' } });
      await rt.close();
      const { classifySql, closeSqlParsers } = await import('./dist/wasm/host/sql-classify.js');
      // Longer than INLINE_MYSQL_CHARS: parsed in the thread of mysql-parse-worker.mjs.
      const sql = 'SELECT a FROM t1 WHERE ' + Array.from({ length: 80 }, (_, i) => 'a = ' + i).join(' OR ');
      const c = await classifySql('mysql', sql);
      await closeSqlParsers();
      const { stepDefinitions } = await import('./dist/executors/definitions.js');
      const executors = [];
      for (const [type, d] of Object.entries(stepDefinitions)) executors.push([type, typeof (await d.loadExecutor()).execute]);
      console.log(JSON.stringify({ ok: r.ok, output: r.output, tables: [...c.tables.keys()], executors }));`;
    const { stdout } = await plainNode(['--input-type=module', '-e', script]);
    const res = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.equal(res.ok, true, stdout);
    assert.deepEqual(res.output, { hello: 'dist' });
    assert.deepEqual(res.tables, ['t1']);
    assert.ok(res.executors.length >= 5, stdout);
    for (const [type, kind] of res.executors) assert.equal(kind, 'function', `the ${type} executor`);
  });

  it('imports the packages loaded before /health from its bundles in dist/vendor/, with the names Node gives', async () => {
    // The compiled app points at the bundles, relatively (dist/ mirrors src/).
    assert.match(readFileSync(join(ROOT, 'dist', 'app.js'), 'utf8'), /from "\.\/vendor\/prom-client\.js"/);
    assert.match(readFileSync(join(ROOT, 'dist', 'api', 'server.js'), 'utf8'), /from "\.\.\/vendor\/fastify\.js"/);
    const check = `
      const out = {};
      for (const [pkg, file] of [['fastify', 'fastify'], ['prom-client', 'prom-client'], ['undici', 'undici'], ['@opentelemetry/api', 'opentelemetry+api'], ['commander', 'commander']]) {
        const real = await import(pkg);
        const bundled = await import('./dist/vendor/' + file + '.js');
        const missing = Object.keys(real).filter((k) => k !== '__esModule' && /^[A-Za-z_$][\\w$]*$/.test(k) && !(k in bundled));
        out[pkg] = { missing, sameKinds: Object.keys(real).every((k) => !(k in bundled) || typeof real[k] === typeof bundled[k]) };
      }
      console.log(JSON.stringify(out));`;
    const { stdout } = await plainNode(['--input-type=module', '-e', check]);
    const res = JSON.parse(stdout.trim().split('\n').pop()!);
    for (const [pkg, r] of Object.entries(res) as [string, { missing: string[]; sameKinds: boolean }][]) {
      assert.deepEqual(r.missing, [], pkg);
      assert.ok(r.sameKinds, pkg);
    }
  });

  it('bin/wasm-cli.js runs from dist/', async () => {
    const { stdout } = await plainNode(['bin/wasm-cli.js', 'inspect', 'fixtures/wasm/echo/echo.wasm', '--function', 'echo_copy'], { VECRON_RUN_FROM: 'dist' });
    assert.match(stdout, /^ABI: ok/m);
  });
});

describe('bin/entry.js: is dist/ current?', () => {
  it('is current with the stamp of the same sources; an edit, a new file, a deleted file or a missing stamp make it not', () => {
    const root = mkdtempSync(join(tmpdir(), 'vecron-stamp-'));
    try {
      mkdirSync(join(root, 'src', 'a'), { recursive: true });
      mkdirSync(join(root, 'scripts'));
      mkdirSync(join(root, 'dist'));
      writeFileSync(join(root, 'scripts', 'build-dist.mjs'), '// build');
      writeFileSync(join(root, 'src', 'a', 'one.ts'), 'export const one = 1;\n');
      writeFileSync(join(root, 'src', 'two.ts'), 'export const two = 2;\n');
      assert.equal(distProblem(root), 'not built');
      const stamp = () => writeFileSync(join(root, 'dist', '.stamp.json'), JSON.stringify(sourceSnapshot(root)));
      stamp();
      assert.equal(distProblem(root), null);

      // An edit of the same size, with a later modification time.
      writeFileSync(join(root, 'src', 'two.ts'), 'export const two = 3;\n');
      const later = new Date(Date.now() + 5000);
      utimesSync(join(root, 'src', 'two.ts'), later, later);
      assert.match(String(distProblem(root)), /changed/);
      stamp();
      writeFileSync(join(root, 'src', 'a', 'three.ts'), 'x');
      assert.match(String(distProblem(root)), /changed/);
      stamp();
      rmSync(join(root, 'src', 'a', 'three.ts'));
      assert.match(String(distProblem(root)), /changed/);
      stamp();
      writeFileSync(join(root, 'scripts', 'build-dist.mjs'), '// build, changed');
      assert.match(String(distProblem(root)), /changed/);
      // npm rewrites node_modules/.package-lock.json on an install or update: dist/vendor/ bundles packages.
      mkdirSync(join(root, 'node_modules'));
      writeFileSync(join(root, 'node_modules', '.package-lock.json'), '{}');
      assert.match(String(distProblem(root)), /changed/);
      stamp();
      assert.equal(distProblem(root), null);
      writeFileSync(join(root, 'node_modules', '.package-lock.json'), '{"a":1}');
      assert.match(String(distProblem(root)), /changed/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
