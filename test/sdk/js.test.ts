import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmRuntime, HOST_FUNCTIONS, type WasmRunResult } from '../../src/wasm/runtime/index.ts';
import type { HostDispatch } from '../../src/wasm/host/types.ts';

// The JavaScript SDK (sdk/js, docs/sdk/js.md): JS projects built with the QuickJS engine (from the
// cache under ~/.cache/vecron, built once when missing) and run on the real runtime.

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'vecron-sdk-js-'));
const rt = new WasmRuntime({ poolSize: 2 });
/** Every host call to the test's dispatch (time and crypto are not answered in the worker): to see the SDK's requests. */
const bridged = new WasmRuntime({ poolSize: 1, workerFunctionModules: [new URL('./support/bridge-all.ts', import.meta.url).href] });
after(async () => {
  await rt.close();
  await bridged.close();
  rmSync(work, { recursive: true, force: true });
});

/** Builds (or finds) the engine; null when the toolchain is there, else the reason it is not. */
function engineProblem(): string | null {
  const r = spawnSync(process.execPath, [join(root, 'sdk/js/build.mjs'), '--engine'], { encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status === 0) return null;
  return r.stderr.trim() || `build.mjs --engine exited with ${r.status}`;
}
const problem = engineProblem();
const missing = problem !== null && /install it with/.test(problem);
if (problem !== null && (!missing || process.env.VECRON_REQUIRE_TOOLCHAINS === '1')) throw new Error(`the JS engine did not build: ${problem}`);
if (missing) console.log(`# sdk/js: the C toolchain is missing, the JS SDK is not tested here: ${problem}`);
const ready = !missing;

/** A project folder as `wasm-cli init` makes it: the template, placeholders replaced, the SDK copied. */
function fromTemplate(name: string): string {
  const dir = join(work, name);
  const snake = name.replace(/[^A-Za-z0-9]+/g, '_');
  const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const sub = (s: string) =>
    s.replaceAll('{{name}}', name).replaceAll('{{name_snake}}', snake).replaceAll('{{name_camel}}', camel).replaceAll('{{version}}', '0.1.0');
  const copy = (from: string, to: string) => {
    for (const f of readdirSync(from)) {
      if (from === join(root, 'templates/js') && f === 'template.json') continue;
      const src = join(from, f);
      const dst = join(to, sub(f));
      if (statSync(src).isDirectory()) {
        mkdirSync(dst, { recursive: true });
        copy(src, dst);
      } else writeFileSync(dst, sub(readFileSync(src, 'utf8')));
    }
  };
  mkdirSync(dir, { recursive: true });
  copy(join(root, 'templates/js'), dir);
  cpSync(join(root, 'sdk/js'), join(dir, 'vecron-sdk'), { recursive: true });
  return dir;
}

/** A project from files (vecron.json + sources), using the repository's SDK directly. */
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
  size: number;
}
function build(dir: string, sdk = join(root, 'sdk/js/build.mjs')): Built {
  const r = spawnSync(process.execPath, [sdk, '--project', dir], { encoding: 'utf8', timeout: 10 * 60_000 });
  const m = /^built (\S+): (\d+) bytes, sha256 ([0-9a-f]{64})$/m.exec(r.stdout);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, path: m ? join(dir, m[1]) : '', size: m ? Number(m[2]) : 0, sha256: m ? m[3] : '' };
}
function built(dir: string, sdk?: string): Uint8Array {
  const b = build(dir, sdk);
  assert.equal(b.status, 0, `build failed: ${b.stderr}`);
  return new Uint8Array(readFileSync(b.path));
}

function ok(r: WasmRunResult): any {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}\nstderr: ${r.stderr}`);
  return r.output;
}
function failed(r: WasmRunResult, code: string): { message: string } {
  if (r.ok) assert.fail(`expected ${code}, got output ${JSON.stringify(r.output)}`);
  assert.equal(r.error.code, code, `${r.error.code}: ${r.error.message}`);
  return r.error;
}

const WASI = 'wasi_snapshot_preview1';

test('the template builds the same bytes twice, imports only log/context and WASI, and its cases pass', async () => {
  if (!ready) return;
  const dir = fromTemplate('tier-report');
  const manifest = JSON.parse(readFileSync(join(dir, 'vecron.json'), 'utf8'));
  assert.equal(manifest.build.output, 'build/tier_report.wasm');
  // `wasm-cli build` runs the manifest's command in the project folder: the project's own SDK copy.
  const first = build(dir, join(dir, 'vecron-sdk/build.mjs'));
  assert.equal(first.status, 0, first.stderr);
  assert.equal(first.path, join(dir, manifest.build.output));
  rmSync(join(dir, 'build'), { recursive: true });
  const second = build(dir, join(dir, 'vecron-sdk/build.mjs'));
  assert.equal(second.sha256, first.sha256, 'the same sources build the same bytes');
  assert.match(second.stdout, /modules: src\/tiers\.js, src\/index\.js; exports: process; host functions: none/);
  const bytes = new Uint8Array(readFileSync(second.path));

  const info = await rt.prepare(bytes);
  assert.deepEqual(
    info.imports.filter((i) => i.module !== WASI).map((i) => `${i.module}.${i.name}`),
    ['vecron.log', 'vecron.get_context', 'vecron.set_context'],
  );
  assert.deepEqual(
    info.entries.filter((e) => e.name === 'process'),
    [{ name: 'process', form: 'A' }],
  );
  // Pre-initialised at build time: no _initialize left to run (lib/snapshot.mjs).
  assert.ok(!info.exports.some((e) => e.name === '_initialize' || e.name === 'vecron_js_init_error'));

  const limits = { fuel: manifest.limits.fuel };
  const input = JSON.parse(readFileSync(join(dir, 'test-input.json'), 'utf8'));
  const sample = await rt.run({ bytes, functionName: manifest.entry, input, limits });
  assert.deepEqual(ok(sample), JSON.parse(readFileSync(join(dir, 'expected-output.json'), 'utf8')));
  assert.deepEqual(
    sample.logs.map((l) => [l.level, l.message]),
    [['info', 'classified 4 customers']],
  );
  assert.deepEqual(sample.contextWrites, { tier_counts: { platinum: 1, gold: 1, silver: 1, bronze: 1 } });
  assert.equal(sample.initFuelConsumed, 0);
  assert.ok(sample.fuelConsumed < manifest.limits.fuel / 2, `fuel ${sample.fuelConsumed}`);

  const cases = readdirSync(join(dir, 'tests')).filter((f) => f.endsWith('.json'));
  assert.ok(cases.length >= 4);
  for (const f of cases) {
    const c = JSON.parse(readFileSync(join(dir, 'tests', f), 'utf8'));
    const out = ok(await rt.run({ bytes, functionName: c.function ?? manifest.entry, input: c.input, limits }));
    if (c.expected_error) {
      assert.equal(c.expected_error, 'validation_failed', f);
      assert.equal(out.valid, false, f);
      assert.ok(Array.isArray(out.errors) && out.errors.length > 0, f);
    } else assert.deepEqual(out, c.expected_output, f);
    if (c.expected_route) assert.deepEqual(out.next_steps ?? [out.next_step], c.expected_route, f);
  }
  const invalid = JSON.parse(readFileSync(join(dir, 'tests/invalid-customers.json'), 'utf8'));
  const verdict = ok(await rt.run({ bytes, functionName: 'process', input: invalid.input, limits }));
  assert.deepEqual(verdict, {
    valid: false,
    errors: [
      'customers[0].total_orders: must be a number >= 0',
      'customers[1].id: must be a string or a number',
      'customers[1].total_orders: must be a number >= 0',
      'customers[2]: must be an object',
    ],
  });
});

const behaviours = `
export function process(input) {
  vecron.log.debug('debug line');
  vecron.log('info line', { n: input.n });
  vecron.log.warn('warn line');
  console.error('error line', [1, 2]);
  const sum = input.items.reduce((s, x) => s + x, 0);
  vecron.context.set('total', sum);
  return {
    sum,
    region: vecron.context.get('variables.region'),
    limit: vecron.context.get('limit'),
    written: vecron.context.get('total'),
    missing: vecron.context.get('nope') === undefined,
    input_again: vecron.input().n,
  };
}
export const reject = () => vecron.invalid(['amount: must be positive']);
export const fanOut = () => vecron.route(['audit', 'notify'], { checked: true });
export const stop = () => vecron.route([]);
export function boom(input) {
  const order = input.missing;
  return order.lines.length;
}
export function custom() {
  throw new Error('order 42 has no lines');
}
export function spin() {
  let i = 0;
  for (;;) i++;
}
export function deep() {
  const f = (n) => f(n + 1) + 1;
  return f(0);
}
export function hog() {
  const keep = [];
  for (;;) keep.push(new Float64Array(1 << 20));
}
export async function later(input) {
  const v = await Promise.resolve(input.n * 2);
  return { v };
}
export const rand = () => Math.random();
export const clock = () => ({ now: Date.now() });
export function hostUnlinked() {
  try {
    return vecron.time.now();
  } catch (e) {
    return { name: e.name, code: e.code, isHostError: e instanceof vecron.HostError };
  }
}
`;

test('a JS module on the real runtime: output, log, context, verdict, route, async, errors, and the sandbox holds', async () => {
  if (!ready) return;
  const entries = ['rand', 'clock', 'reject', 'fanOut', 'stop', 'boom', 'custom', 'spin', 'deep', 'hog', 'later', 'hostUnlinked'];
  const dir = project('behaviours', {
    'vecron.json': { name: 'behaviours', version: '0.1.0', entry: 'process', js: { entries, host_functions: 'none' } },
    'src/index.js': behaviours,
  });
  const bytes = built(dir);
  const context = { variables: { region: 'south', limit: 7 }, steps: {} };
  const run = (functionName: string, input: unknown = { n: 3, items: [1, 2, 3] }, limits = {}) =>
    rt.run({ bytes, functionName, input, context, limits: { fuel: 20_000_000, ...limits } });

  const main = await run('process');
  assert.deepEqual(ok(main), { sum: 6, region: 'south', limit: 7, written: 6, missing: true, input_again: 3 });
  assert.deepEqual(
    main.logs.map((l) => [l.level, l.message]),
    [
      ['debug', 'debug line'],
      ['info', 'info line {"n":3}'],
      ['warn', 'warn line'],
      ['error', 'error line [1,2]'],
    ],
  );
  assert.deepEqual(main.contextWrites, { total: 6 });

  assert.deepEqual(ok(await run('reject')), { valid: false, errors: ['amount: must be positive'] });
  assert.deepEqual(ok(await run('fanOut')), { checked: true, next_steps: ['audit', 'notify'] });
  assert.deepEqual(ok(await run('stop')), { next_steps: [] });
  assert.deepEqual(ok(await run('later')), { v: 6 });
  // Every run starts from the same pre-initialised memory, yet Math.random differs (random_get).
  const r1 = ok(await run('rand'));
  const r2 = ok(await run('rand'));
  assert.ok(typeof r1 === 'number' && r1 >= 0 && r1 < 1 && r1 !== r2, `${r1} ${r2}`);
  // ... and the clock is read at run time (the snapshot was taken with the clock at 0).
  const before = Date.now();
  const { now } = ok(await run('clock'));
  assert.ok(now >= before - 1000 && now <= Date.now() + 1000, `Date.now() in the module: ${now}`);
  assert.deepEqual(ok(await run('hostUnlinked')), { name: 'HostError', code: 'unavailable', isHostError: true });

  // A thrown JS error fails the step; its message and the author's file:line are in stderr and the log.
  const boom = await run('boom');
  failed(boom, 'trap');
  assert.match(boom.stderr, /^Uncaught TypeError: cannot read property 'lines' of undefined\n\s+at boom \(src\/index\.js:\d+:\d+\)/);
  assert.doesNotMatch(boom.stderr, /vecron:prelude/);
  assert.equal(boom.logs.at(-1)?.level, 'error');
  assert.match(boom.logs.at(-1)?.message ?? '', /TypeError/);
  const custom = await run('custom');
  failed(custom, 'trap');
  assert.match(custom.stderr, /Uncaught Error: order 42 has no lines\n\s+at custom \(src\/index\.js:\d+/);

  // The sandbox holds: an endless loop runs out of fuel, or, given fuel without end, hits the timeout.
  const spin = await run('spin', {}, { fuel: 5_000_000 });
  failed(spin, 'fuel_exhausted');
  assert.equal(spin.fuelConsumed, 5_000_000);
  const t0 = Date.now();
  const spinTimed = await run('spin', {}, { fuel: 1e15, timeoutMs: 1000 });
  failed(spinTimed, 'timeout');
  assert.ok(Date.now() - t0 < 1000 + 1000, `ended ${Date.now() - t0} ms after it started`);
  failed(await run('deep', {}, { fuel: 1e9 }), 'stack_overflow');
  const hog = await run('hog', {}, { fuel: 1e9, memoryMb: 32 });
  failed(hog, 'memory_limit');
  assert.match(hog.stderr, /out of memory/);

  // Nothing carries over: the next run of the same module is fresh.
  assert.deepEqual(ok(await run('process', { n: 1, items: [10] })).sum, 10);
});

test('script style: vecron.input() and vecron.output() without an exported entry', async () => {
  if (!ready) return;
  const dir = project('script-style', {
    'vecron.json': { name: 'script-style', version: '0.1.0', entry: 'run' },
    'src/index.js': 'const { amount } = vecron.input();\nvecron.output(amount > 100 ? vecron.route("review", { amount }) : { amount });\n',
  });
  const bytes = built(dir);
  assert.deepEqual(ok(await rt.run({ bytes, functionName: 'run', input: { amount: 500 }, limits: { fuel: 10_000_000 } })), {
    amount: 500,
    next_step: 'review',
  });
  assert.deepEqual(ok(await rt.run({ bytes, functionName: 'run', input: { amount: 5 }, limits: { fuel: 10_000_000 } })), { amount: 5 });
  // Without pre-initialisation the engine sets itself up in _initialize, on the init fuel budget.
  const plain = project('not-preinitialised', {
    'vecron.json': { name: 'not-preinitialised', version: '0.1.0', entry: 'run', js: { preinitialize: false } },
    'src/index.js': 'export const run = (input) => ({ twice: input.n * 2 });\n',
  });
  const plainBytes = built(plain);
  assert.ok((await rt.prepare(plainBytes)).exports.some((e) => e.name === '_initialize'));
  const p = await rt.run({ bytes: plainBytes, functionName: 'run', input: { n: 4 }, limits: { fuel: 10_000_000 } });
  assert.deepEqual(ok(p), { twice: 8 });
  assert.ok(p.initFuelConsumed > 1_000_000, `init fuel ${p.initFuelConsumed}`);
  const nothing = project('no-entry', { 'vecron.json': { name: 'no-entry', version: '0.1.0', entry: 'run' }, 'src/index.js': 'export const x = 1;\n' });
  const r = await rt.run({ bytes: built(nothing), functionName: 'run', input: {}, limits: { fuel: 10_000_000 } });
  failed(r, 'trap');
  assert.match(r.stderr, /neither exports a function "run" \(or a default function\) nor calls vecron\.output\(\)/);
});

test('build errors name the file, the line and what to do', () => {
  if (!ready) return;
  const manifest = { name: 'broken', version: '0.1.0', entry: 'process' };
  const syntax = build(project('syntax', { 'vecron.json': manifest, 'src/index.js': 'export function process(input) {\n  return {;\n}\n' }));
  assert.equal(syntax.status, 1);
  assert.match(syntax.stderr, /SyntaxError: .*\n.*src\/index\.js:2/);
  const missingImport = build(
    project('missing-import', { 'vecron.json': manifest, 'src/index.js': "import { x } from './nope.js';\nexport const process = () => x;\n" }),
  );
  assert.equal(missingImport.status, 1);
  assert.match(missingImport.stderr, /cannot import 'src\/nope\.js': no such file in the project/);
  const npmImport = build(project('npm-import', { 'vecron.json': manifest, 'src/index.js': "import _ from 'lodash';\nexport const process = () => _;\n" }));
  assert.equal(npmImport.status, 1);
  assert.match(npmImport.stderr, /cannot import 'lodash'.*bundle npm packages/);
  const badEntry = build(project('bad-entry', { 'vecron.json': { ...manifest, entry: 'not a name' }, 'src/index.js': '' }));
  assert.equal(badEntry.status, 1);
  assert.match(badEntry.stderr, /vecron\.json: entry "not a name" is not a function name/);
  const noManifest = build(project('no-manifest', { 'src/index.js': '' }));
  assert.equal(noManifest.status, 1);
  assert.match(noManifest.stderr, /no vecron\.json in .*wasm-cli init NAME --lang js/);
});

test('host functions are linked in only when the source names them', async () => {
  if (!ready) return;
  const dir = project('uses-time', {
    'vecron.json': { name: 'uses-time', version: '0.1.0', entry: 'process' },
    'src/index.js': 'export function process() {\n  const t = vecron.time.now();\n  return { year: new Date(t.epoch_ms).getUTCFullYear(), iso: t.iso };\n}\n',
  });
  const b = build(dir);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /host functions: time$/m);
  const bytes = new Uint8Array(readFileSync(b.path));
  const info = await rt.prepare(bytes);
  assert.deepEqual(
    info.imports
      .filter((i) => i.module !== WASI)
      .map((i) => i.name)
      .sort(),
    ['get_context', 'log', 'set_context', 'time'],
  );
  assert.deepEqual(HOST_FUNCTIONS.time, { params: ['i32', 'i32'], results: ['i64'] });
  const host: HostDispatch = async (fn, req) => ({
    response: { epoch_ms: Date.UTC(2026, 11, 2), iso: '2026-12-02T07:00:00+07:00', fn, req },
    target: fn,
    outcome: 'ok',
  });
  const r = await bridged.run({ bytes, functionName: 'process', input: {}, host, limits: { fuel: 10_000_000 } });
  assert.deepEqual(ok(r), { year: 2026, iso: '2026-12-02T07:00:00+07:00' });
  assert.deepEqual(
    r.hostCalls.map((c) => [c.function, c.request]),
    [['time', { op: 'now' }]],
  );
});

const wrappers = `
const tryCall = (f) => {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof vecron.HostError)) throw e;
    return { caught: e.code, fn: e.function, message: e.hostMessage };
  }
};
export function process() {
  return {
    request: vecron.http.request({ method: 'PUT', url: 'https://api.example.com/a', body: 'x' }),
    get: vecron.http.get('https://api.example.com/b', { headers: { accept: 'application/json' }, timeout_ms: 500 }),
    post: vecron.http.post('https://api.example.com/c', { n: 1 }),
    query: vecron.db.query('analytics', 'SELECT $1::int AS n', [1], { max_rows: 10 }),
    read: vecron.files.read('in/a.csv'),
    write: vecron.files.write('out/b.txt', 'aGk=', { encoding: 'base64' }),
    list: vecron.files.list('in/'),
    sha256: vecron.crypto.sha256('abc'),
    hmac: vecron.crypto.hmacSha256('SIGNING_KEY', 'payload'),
    random: vecron.crypto.randomBytes(16),
    uuid: vecron.crypto.uuid(),
    aes: vecron.crypto.call('aes_256_gcm_encrypt', { key_secret: 'K', data: 'p' }),
    now: vecron.time.now('UTC'),
    format: vecron.time.format({ epoch_ms: 0, format: 'yyyy' }),
    denied: tryCall(() => vecron.http.get('https://evil.example.net/')),
  };
}
`;

test('the host-function wrappers send the ABI requests and decode answers and refusals', async () => {
  if (!ready) return;
  const dir = project('wrappers', { 'vecron.json': { name: 'wrappers', version: '0.1.0', entry: 'process' }, 'src/index.js': wrappers });
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
    ['http_request', { method: 'PUT', headers: {}, body: 'x', url: 'https://api.example.com/a' }],
    ['http_request', { headers: { accept: 'application/json' }, body: null, timeout_ms: 500, method: 'GET', url: 'https://api.example.com/b' }],
    ['http_request', { headers: { 'content-type': 'application/json' }, method: 'POST', url: 'https://api.example.com/c', body: '{"n":1}' }],
    ['db_query', { max_rows: 10, datasource: 'analytics', sql: 'SELECT $1::int AS n', params: [1] }],
    ['file_read', { path: 'in/a.csv' }],
    ['file_write', { encoding: 'base64', path: 'out/b.txt', content: 'aGk=' }],
    ['file_list', { prefix: 'in/' }],
    ['crypto', { op: 'sha256', data: 'abc' }],
    ['crypto', { op: 'hmac_sha256', key_secret: 'SIGNING_KEY', data: 'payload' }],
    ['crypto', { op: 'random_bytes', n: 16 }],
    ['crypto', { op: 'uuid' }],
    ['crypto', { key_secret: 'K', data: 'p', op: 'aes_256_gcm_encrypt' }],
    ['time', { op: 'now', tz: 'UTC' }],
    ['time', { epoch_ms: 0, format: 'yyyy', op: 'format' }],
    ['http_request', { headers: {}, body: null, method: 'GET', url: 'https://evil.example.net/' }],
  ]);
  assert.deepEqual(out.request, { answered: 'http_request' });
  assert.deepEqual(out.query, { answered: 'db_query' });
  assert.deepEqual(out.list, [{ path: 'in/a.csv', size: 3, modified_at: 'x' }]);
  assert.deepEqual(out.denied, { caught: 'egress_denied', fn: 'http_request', message: 'evil.example.net is not allowed' });
});
