import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmRuntime, type WasmRunResult } from '../../src/wasm/runtime/index.ts';
import type { HostDispatch } from '../../src/wasm/host/types.ts';
import { assertProbe, buildTwiceSame, hostImports, runProjectCases } from './support.ts';

// The Python SDK (sdk/python, docs/sdk/python.md): Python projects built with CPython for WASI
// (fetched and cached under ~/.cache/vecron once), pre-initialised at build time, run on the real
// runtime.

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'vecron-sdk-python-'));
const rt = new WasmRuntime({ poolSize: 2, cacheDir: null });
/** Every host call reaches the test's dispatch (time and crypto are not answered in the worker). */
const bridged = new WasmRuntime({ poolSize: 1, cacheDir: null, workerFunctionModules: [new URL('./support/bridge-all.ts', import.meta.url).href] });
after(async () => {
  await rt.close();
  await bridged.close();
  rmSync(work, { recursive: true, force: true });
});

/** Fetches and builds (or finds) the engine; null when it is ready, else why not. */
function engineProblem(): string | null {
  const r = spawnSync(process.execPath, [join(root, 'sdk/python/build.mjs'), '--engine'], { encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status === 0) return null;
  return r.stderr.trim() || `build.mjs --engine exited with ${r.status}`;
}
const problem = engineProblem();
const missing = problem !== null && /install it with/.test(problem);
if (problem !== null && (!missing || process.env.VECRON_REQUIRE_TOOLCHAINS === '1')) throw new Error(`the Python engine did not build: ${problem}`);
if (missing) console.log(`# sdk/python: the C toolchain is missing, the Python SDK is not tested here: ${problem}`);
const ready = !missing;

/** A project from files (vecron.json + sources), built with the repository's SDK. */
function project(name: string, files: Record<string, unknown>): string {
  const dir = join(work, name);
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

interface Built {
  status: number | null;
  stdout: string;
  stderr: string;
  path: string;
  sha256: string;
}
function build(dir: string, env: NodeJS.ProcessEnv = {}): Built {
  const r = spawnSync(process.execPath, [join(root, 'sdk/python/build.mjs'), '--project', dir], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
    env: { ...process.env, ...env },
  });
  const m = /^built (\S+): (\d+) bytes, sha256 ([0-9a-f]{64})$/m.exec(r.stdout);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, path: m ? join(dir, m[1]) : '', sha256: m ? m[3] : '' };
}
function built(dir: string): Uint8Array {
  const b = build(dir);
  assert.equal(b.status, 0, `build failed: ${b.stderr}`);
  return new Uint8Array(readFileSync(b.path));
}

function ok(r: WasmRunResult): any {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}\nstderr: ${r.stderr}`);
  return r.output;
}
function failed(r: WasmRunResult, code: string): void {
  if (r.ok) assert.fail(`expected ${code}, got output ${JSON.stringify(r.output)}`);
  assert.equal(r.error.code, code, `${r.error.code}: ${r.error.message}`);
}

test('python template: reproducible build, pre-initialised, its cases pass (verdict, route, log, set_context)', async (t) => {
  if (!ready) return;
  const b = buildTwiceSame('python', t);
  if (!b) return;
  const info = await rt.prepare(b.bytes);
  assert.deepEqual(hostImports(b.bytes), ['get_context', 'log', 'set_context'], 'a module imports only the host functions it uses');
  assert.deepEqual(
    info.entries.filter((e) => e.name === 'process'),
    [{ name: 'process', form: 'A' }],
  );
  assert.ok(!info.exports.some((e) => e.name === '_initialize' || e.name === 'vecron_py_init_error'), 'no start-up left to run');
  assert.equal(await runProjectCases(rt, b.dir, b.manifest, b.bytes), 6);

  const input = JSON.parse(readFileSync(join(b.dir, 'test-input.json'), 'utf8'));
  const r = await rt.run({ bytes: b.bytes, functionName: 'process', input, context: input, limits: { fuel: b.manifest.limits?.fuel ?? 20_000_000 } });
  assert.deepEqual(ok(r), JSON.parse(readFileSync(join(b.dir, 'expected-output.json'), 'utf8')));
  assert.deepEqual(
    r.logs.map((l) => [l.level, l.message]),
    [['info', 'order A-1001: 3 item(s), 1250000 VND -> fulfil']],
  );
  assert.deepEqual(r.contextWrites, { last_order_id: 'A-1001' });
  // CPython started and the module was imported at build time: a run pays only for process().
  assert.equal(r.initFuelConsumed, 0);
  assert.ok(r.fuelConsumed < 5_000_000, `fuel ${r.fuelConsumed}`);
});

test('python SDK: JSON in and out, verdict, route, log, context (the probe every SDK answers)', async () => {
  if (!ready) return;
  const dir = join(work, 'probe');
  cpSync(join(root, 'fixtures/sdk-probes/python'), dir, { recursive: true });
  await assertProbe(rt, built(dir), 20_000_000);
});

const behaviours = `
import random
import time as _time

import vecron
from util.money import total

print('imported at build time')


def process(input):
    vecron.log.debug('debug line')
    vecron.log('info line', {'n': input['n']})
    vecron.log.warn('warn line')
    print('printed', [1, 2])
    vecron.context.set('total', total(input['items']))
    return {
        'sum': total(input['items']),
        'region': vecron.context.get('variables.region'),
        'limit': vecron.context.get('limit'),
        'written': vecron.context.get('total'),
        'missing': vecron.context.get('nope', 'default'),
        'input_again': vecron.input()['n'],
    }


def fan_out(input):
    return vecron.route(['audit', 'notify'], {'checked': True})


def stop(input):
    return vecron.route([])


def by_output(input):
    vecron.output({'set': True})


def boom(input):
    order = input.get('missing')
    return order['lines']


def lazy_import(input):
    import csv
    return {}


def lazy_preloaded(input):
    from decimal import Decimal
    return {'sum': str(Decimal('0.1') + Decimal('0.2'))}


def not_json(input):
    return {'when': object()}


def rand(input):
    return {'r': random.random(), 'clock': _time.time()}


def spin(input):
    i = 0
    while True:
        i += 1


def deep(input):
    def f(n):
        return f(n + 1) + 1
    return f(0)


def hog(input):
    keep = []
    while True:
        keep.append(bytearray(1 << 20))


def host_unlinked(input):
    try:
        return vecron.time.now()
    except vecron.HostError as e:
        return {'code': e.code, 'function': e.function}
`;

test('a Python module on the real runtime: output, log, print, context, verdict, route, errors, and the sandbox holds', async () => {
  if (!ready) return;
  const entries = ['fan_out', 'stop', 'by_output', 'boom', 'lazy_import', 'lazy_preloaded', 'not_json', 'rand', 'spin', 'deep', 'hog', 'host_unlinked'];
  const dir = project('behaviours', {
    'vecron.json': {
      name: 'behaviours',
      version: '0.1.0',
      entry: 'process',
      python: { main: 'src/main.py', entries, preload: ['decimal'], host_functions: 'none' },
    },
    'src/main.py': behaviours,
    'src/util/__init__.py': '',
    'src/util/money.py': 'def total(items):\n    return sum(items)\n',
  });
  const b = build(dir);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /files: src\/main\.py, src\/util\/__init__\.py, src\/util\/money\.py; exports: process, fan_out/);
  assert.match(b.stderr, /printed while importing the module:\nimported at build time/);
  const bytes = new Uint8Array(readFileSync(b.path));
  const context = { variables: { region: 'south', limit: 7 }, steps: {} };
  const run = (functionName: string, input: unknown = { n: 3, items: [1, 2, 3] }, limits = {}) =>
    rt.run({ bytes, functionName, input, context, limits: { fuel: 20_000_000, ...limits } });

  const main = await run('process');
  assert.deepEqual(ok(main), { sum: 6, region: 'south', limit: 7, written: 6, missing: 'default', input_again: 3 });
  assert.deepEqual(
    main.logs.map((l) => [l.level, l.message]),
    [
      ['debug', 'debug line'],
      ['info', 'info line {"n": 3}'],
      ['warn', 'warn line'],
      ['info', 'printed [1, 2]'],
    ],
  );
  assert.deepEqual(main.contextWrites, { total: 6 });
  assert.deepEqual(ok(await run('fan_out')), { checked: true, next_steps: ['audit', 'notify'] });
  assert.deepEqual(ok(await run('stop')), { next_steps: [] });
  assert.deepEqual(ok(await run('by_output')), { set: true });
  assert.deepEqual(ok(await run('host_unlinked')), { code: 'unavailable', function: 'time' });

  // Every run starts from the same snapshot, yet random differs and the clock is read at run time.
  const before = Date.now();
  const r1 = ok(await run('rand'));
  const r2 = ok(await run('rand'));
  assert.notEqual(r1.r, r2.r);
  assert.ok(Math.abs(r1.clock * 1000 - before) < 60_000, `time.time() in the module: ${r1.clock}`);

  // An exception fails the step with the author's traceback (file and line, not the SDK's frames).
  const boom = await run('boom');
  failed(boom, 'trap');
  assert.match(
    boom.stderr,
    /Traceback \(most recent call last\):\n {2}File "src\/main\.py", line \d+, in boom\n.*\nTypeError: 'NoneType' object is not subscriptable/s,
  );
  assert.doesNotMatch(boom.stderr, /_vecron_runtime/);
  assert.equal(boom.logs.at(-1)?.level, 'error');
  assert.match(boom.logs.at(-1)?.message ?? '', /TypeError/);
  const lazy = await run('lazy_import');
  failed(lazy, 'trap');
  assert.match(lazy.stderr, /ModuleNotFoundError: No module named 'csv' in this module: .*import it at the top of your code/);
  // ... unless the manifest's python.preload imported it at build time.
  assert.deepEqual(ok(await run('lazy_preloaded')), { sum: '0.3' });
  const notJson = await run('not_json');
  failed(notJson, 'trap');
  assert.match(notJson.stderr, /TypeError: the output of not_json\(\) is not JSON: Object of type object is not JSON serializable/);

  // The sandbox holds: an endless loop runs out of fuel, deep recursion is a RecursionError,
  // a memory hog hits the step's memory limit.
  const spin = await run('spin', {}, { fuel: 5_000_000 });
  failed(spin, 'fuel_exhausted');
  const deep = await run('deep', {}, { fuel: 1e9 });
  failed(deep, 'trap');
  assert.match(deep.stderr, /RecursionError: maximum recursion depth exceeded/);
  failed(await run('hog', {}, { fuel: 1e9, memoryMb: 48 }), 'memory_limit');

  // Nothing carries over: the next run of the same module is fresh.
  assert.equal(ok(await run('process', { n: 1, items: [10] })).sum, 10);
});

test('build errors say what is wrong and where', () => {
  if (!ready) return;
  const manifest = { name: 'broken', version: '0.1.0', entry: 'process' };
  const syntax = build(project('syntax', { 'vecron.json': manifest, 'src/main.py': 'def process(input):\n    return {\n' }));
  assert.equal(syntax.status, 1);
  assert.match(syntax.stderr, /the module failed to load .*\n.*File "src\/main\.py", line 2[\s\S]*SyntaxError: '\{' was never closed/);
  const raises = build(project('raises', { 'vecron.json': manifest, 'src/main.py': 'import vecron\nx = vecron.input()\n' }));
  assert.equal(raises.status, 1);
  assert.match(raises.stderr, /RuntimeError: vecron.input\(\) has no value while the module is built: call it inside the entry function/);
  const noModule = build(project('no-module', { 'vecron.json': manifest, 'src/main.py': 'import requests\n' }));
  assert.equal(noModule.status, 1);
  assert.match(noModule.stderr, /ModuleNotFoundError: No module named 'requests'/);
  const noEntry = build(project('no-entry', { 'vecron.json': manifest, 'src/main.py': 'def run(input):\n    return input\n' }));
  assert.equal(noEntry.status, 1);
  assert.match(noEntry.stderr, /src\/main\.py defines no function process\(\) \(the manifest's entry\)/);
  const badEntry = build(project('bad-entry', { 'vecron.json': { ...manifest, entry: 'not a name' }, 'src/main.py': '' }));
  assert.equal(badEntry.status, 1);
  assert.match(badEntry.stderr, /vecron\.json: entry "not a name" is not a Python function name/);
  const noManifest = build(project('no-manifest', { 'src/main.py': '' }));
  assert.equal(noManifest.status, 1);
  assert.match(noManifest.stderr, /no vecron\.json in .*wasm-cli init NAME --lang python/);
  const noClang = build(project('no-clang', { 'vecron.json': manifest, 'src/main.py': 'def process(input):\n    return input\n' }), {
    VECRON_CLANG: '/nonexistent/clang',
  });
  assert.equal(noClang.status, 1);
  assert.match(
    noClang.stderr,
    /clang was not found \(\/nonexistent\/clang\)\n {2}install it with: sudo apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32/,
  );
});

const wrappers = `
import vecron


def attempt(f):
    try:
        return f()
    except vecron.HostError as e:
        return {'caught': e.code, 'fn': e.function, 'message': e.message}


def process(input):
    return {
        'request': vecron.http.request('PUT', 'https://api.example.com/a', body='x'),
        'get': vecron.http.get('https://api.example.com/b', headers={'accept': 'application/json'}, timeout_ms=500),
        'post': vecron.http.post('https://api.example.com/c', {'n': 1}),
        'query': vecron.db.query('analytics', 'SELECT $1::int AS n', [1], max_rows=10),
        'read': vecron.files.read('in/a.csv'),
        'write': vecron.files.write('out/b.txt', 'aGk=', encoding='base64'),
        'list': vecron.files.list('in/'),
        'sha256': vecron.crypto.sha256('abc'),
        'hmac': vecron.crypto.hmac_sha256('SIGNING_KEY', 'payload'),
        'random': vecron.crypto.random_bytes(16),
        'uuid': vecron.crypto.uuid(),
        'aes': vecron.crypto.call('aes_256_gcm_encrypt', key_secret='K', data='p'),
        'now': vecron.time.now('UTC'),
        'format': vecron.time.format(epoch_ms=0, format='yyyy'),
        'denied': attempt(lambda: vecron.http.get('https://evil.example.net/')),
    }
`;

test('the host-function wrappers send the ABI requests and decode answers and refusals', async () => {
  if (!ready) return;
  const dir = project('wrappers', { 'vecron.json': { name: 'wrappers', version: '0.1.0', entry: 'process' }, 'src/main.py': wrappers });
  const b = build(dir);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /host functions: http_request, db_query, file_read, file_write, file_list, crypto, time$/m);
  const bytes = new Uint8Array(readFileSync(b.path));
  const seen: [string, any][] = [];
  const host: HostDispatch = async (fn, req: any) => {
    seen.push([fn, req]);
    if (fn === 'http_request' && String(req.url).includes('evil')) {
      return { response: { error: { code: 'egress_denied', message: 'evil.example.net is not allowed' } }, target: req.url, outcome: 'egress_denied' };
    }
    if (fn === 'file_list') return { response: { files: [{ path: 'in/a.csv', size: 3, modified_at: 'x' }] }, target: req.prefix, outcome: 'ok' };
    return { response: { answered: fn }, target: fn, outcome: 'ok' };
  };
  const out = ok(await bridged.run({ bytes, functionName: 'process', input: {}, host, limits: { fuel: 50_000_000 } }));
  assert.deepEqual(seen, [
    ['http_request', { method: 'PUT', url: 'https://api.example.com/a', headers: {}, body: 'x' }],
    ['http_request', { method: 'GET', url: 'https://api.example.com/b', headers: { accept: 'application/json' }, body: null, timeout_ms: 500 }],
    ['http_request', { method: 'POST', url: 'https://api.example.com/c', headers: { 'content-type': 'application/json' }, body: '{"n": 1}' }],
    ['db_query', { datasource: 'analytics', sql: 'SELECT $1::int AS n', params: [1], max_rows: 10 }],
    ['file_read', { path: 'in/a.csv' }],
    ['file_write', { path: 'out/b.txt', content: 'aGk=', encoding: 'base64' }],
    ['file_list', { prefix: 'in/' }],
    ['crypto', { op: 'sha256', data: 'abc' }],
    ['crypto', { op: 'hmac_sha256', key_secret: 'SIGNING_KEY', data: 'payload' }],
    ['crypto', { op: 'random_bytes', n: 16 }],
    ['crypto', { op: 'uuid' }],
    ['crypto', { key_secret: 'K', data: 'p', op: 'aes_256_gcm_encrypt' }],
    ['time', { op: 'now', tz: 'UTC' }],
    ['time', { epoch_ms: 0, format: 'yyyy', op: 'format' }],
    ['http_request', { method: 'GET', url: 'https://evil.example.net/', headers: {}, body: null }],
  ]);
  assert.deepEqual(out.request, { answered: 'http_request' });
  assert.deepEqual(out.query, { answered: 'db_query' });
  assert.deepEqual(out.list, [{ path: 'in/a.csv', size: 3, modified_at: 'x' }]);
  assert.deepEqual(out.denied, { caught: 'egress_denied', fn: 'http_request', message: 'evil.example.net is not allowed' });
});
