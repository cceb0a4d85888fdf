/**
 * Shared by the SDK tests (test/sdk/<lang>.test.ts): make a project from a template the way
 * `wasm-cli init` does (CONTRACT-16: copy templates/<lang>/ with {{name}}... replaced, the SDK into
 * vecron-sdk/), run its manifest's build command, and run modules on the real runtime.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { WasmRuntime, WasmRunResult } from '../../src/wasm/runtime/index.ts';
import { verdictOf } from '../../src/executors/wasm/verdict.ts';
import { routeOf } from '../../src/engine/routing.ts';
import { parseModule } from '../../src/wasm/binary/index.ts';
import { PRIVILEGED_HOST_FUNCTIONS, type HostDispatch } from '../../src/wasm/host/types.ts';
import { createHash } from 'node:crypto';

export const ROOT = new URL('../..', import.meta.url).pathname;
// The repository's node_modules/.bin stands in for a project's own `npm install` (AssemblyScript).
export const PATH_ENV = `${process.env.PATH ?? ''}:/usr/local/go/bin:${ROOT}node_modules/.bin`;

export interface Manifest {
  name: string;
  version: string;
  language: string;
  entry: string;
  build: { command: string | string[]; output: string; requires?: { tool: string; check: string; install: string }[] };
  limits?: { fuel?: number; memory_mb?: number; timeout_seconds?: number };
  permissions?: unknown[];
  tests?: string;
}

const substitutions = (name: string): [string, string][] => [
  ['{{name}}', name],
  ['{{name_snake}}', name.replace(/[^A-Za-z0-9]+/g, '_').toLowerCase()],
  ['{{name_camel}}', name.replace(/[^A-Za-z0-9]+(.)/g, (_m, c: string) => c.toUpperCase())],
  ['{{version}}', '0.1.0'],
];

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** A new project from templates/<lang> (as `wasm-cli init NAME --lang <lang>` makes it). */
export function initProject(lang: string, name = 'my-module'): { dir: string; manifest: Manifest } {
  const tpl = join(ROOT, 'templates', lang);
  const meta = JSON.parse(readFileSync(join(tpl, 'template.json'), 'utf8')) as { sdk?: string };
  const dir = join(mkdtempSync(join(tmpdir(), `vecron-sdk-${lang}-`)), name);
  const subs = substitutions(name);
  const sub = (s: string) => subs.reduce((acc, [k, v]) => acc.split(k).join(v), s);
  for (const file of walk(tpl)) {
    const rel = relative(tpl, file);
    if (rel === 'template.json') continue;
    const target = join(dir, sub(rel));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, sub(readFileSync(file, 'utf8')));
  }
  cpSync(join(ROOT, 'sdk', meta.sdk ?? lang), join(dir, 'vecron-sdk'), { recursive: true });
  return { dir, manifest: JSON.parse(readFileSync(join(dir, 'vecron.json'), 'utf8')) as Manifest };
}

/** The tools of a manifest that are missing here (their install hints). */
export function missingTools(m: Manifest, cwd: string): string[] {
  return (m.build.requires ?? [])
    .filter((r) => spawnSync('sh', ['-c', r.check], { cwd, env: { ...process.env, PATH: PATH_ENV }, stdio: 'ignore' }).status !== 0)
    .map((r) => `${r.tool} (${r.install})`);
}

/**
 * True when the toolchains are here. Otherwise: fails the test under VECRON_REQUIRE_TOOLCHAINS=1,
 * else says in the test's output which is missing (and the caller returns).
 */
export function haveTools(t: TestContext, m: Manifest, cwd: string): boolean {
  const missing = missingTools(m, cwd);
  if (missing.length === 0) return true;
  const msg = `toolchain missing: ${missing.join(', ')}`;
  if (process.env.VECRON_REQUIRE_TOOLCHAINS === '1') assert.fail(msg);
  t.diagnostic(msg);
  console.log(`# ${t.name}: ${msg}`);
  return false;
}

/** Runs the manifest's build command(s) in the project as `wasm-cli build` does; returns the bytes. */
export function buildProject(dir: string, m: Manifest): Uint8Array {
  const commands = Array.isArray(m.build.command) ? m.build.command : [m.build.command];
  for (const c of commands) {
    const r = spawnSync('sh', ['-c', c], {
      cwd: dir,
      env: { ...process.env, PATH: PATH_ENV, VECRON_SDK: join(dir, 'vecron-sdk'), HOME: process.env.HOME ?? '/root' },
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (r.status !== 0) assert.fail(`build command failed (${r.status}): ${c}\n${r.stdout}\n${r.stderr}`);
  }
  const out = join(dir, m.build.output);
  assert.ok(existsSync(out), `the build made no ${m.build.output}`);
  return new Uint8Array(readFileSync(out));
}

/** Runs a compile command in cwd; returns the bytes of `output` (default cwd/out.wasm). */
export function compile(cwd: string, command: string, output = join(cwd, 'out.wasm')): Uint8Array {
  const r = spawnSync('sh', ['-c', command], { cwd, env: { ...process.env, PATH: PATH_ENV }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) assert.fail(`compile failed: ${command}\n${r.stdout}\n${r.stderr}`);
  return new Uint8Array(readFileSync(output));
}

export function ok(r: WasmRunResult): unknown {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.output;
}

interface Case {
  name: string;
  input: unknown;
  context?: Record<string, unknown>;
  expected_output?: unknown;
  expected_error?: string;
  expected_route?: string[];
}

/**
 * Runs every tests/*.json case of a project and test-input.json against expected-output.json, on
 * the real runtime with the manifest's limits; asserts outputs, verdicts and routes.
 */
export async function runProjectCases(rt: WasmRuntime, dir: string, m: Manifest, bytes: Uint8Array): Promise<number> {
  const limits = {
    fuel: m.limits?.fuel ?? 1_000_000,
    memoryMb: m.limits?.memory_mb ?? 64,
    timeoutMs: (m.limits?.timeout_seconds ?? 30) * 1000,
  };
  const run = (input: unknown, context?: Record<string, unknown>) =>
    rt.run({ bytes, functionName: m.entry, input, context: context ?? (input as Record<string, unknown>), limits });
  const cases: Case[] = readdirSync(join(dir, 'tests'))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, 'tests', f), 'utf8')) as Case);
  assert.ok(cases.length >= 3, 'a template has test cases');
  for (const c of cases) {
    const r = await run(c.input, c.context);
    const v = verdictOf(r);
    if (c.expected_output !== undefined) assert.deepEqual(ok(r), c.expected_output, c.name);
    if (c.expected_error !== undefined) assert.equal(v.error?.code, c.expected_error, c.name);
    const out = r.ok ? (r.output as { valid?: unknown }) : null;
    if (out && out.valid === false) {
      assert.equal(v.error?.code, 'validation_failed', `${c.name}: a {"valid": false} output fails the step`);
      assert.ok(
        r.logs.some((l) => l.level === 'warn' && l.message.startsWith('order rejected:')),
        `${c.name}: logs the rejection`,
      );
    }
    if (c.expected_route !== undefined) {
      const route = routeOf(ok(r), 'test');
      assert.deepEqual(route, { kind: 'goto', ids: c.expected_route }, c.name);
      assert.equal(v.error, null);
      const id = (c.input as { order: { id: string } }).order.id;
      assert.deepEqual(r.contextWrites, { last_order_id: id }, `${c.name}: set_context`);
      assert.ok(
        r.logs.some((l) => l.level === 'info' && l.message.startsWith(`order ${id}:`) && l.message.endsWith(`-> ${c.expected_route![0]}`)),
        `${c.name}: logs the route: ${JSON.stringify(r.logs)}`,
      );
    }
  }
  const sample = JSON.parse(readFileSync(join(dir, 'test-input.json'), 'utf8'));
  const expected = JSON.parse(readFileSync(join(dir, 'expected-output.json'), 'utf8'));
  assert.deepEqual(ok(await run(sample)), expected, 'test-input.json gives expected-output.json');
  return cases.length;
}

/** Builds a template twice in two fresh projects: the same bytes (a reproducible build). */
export function buildTwiceSame(lang: string, t: TestContext): { bytes: Uint8Array; dir: string; manifest: Manifest } | null {
  const a = initProject(lang);
  if (!haveTools(t, a.manifest, a.dir)) return null;
  const first = buildProject(a.dir, a.manifest);
  const b = initProject(lang);
  const second = buildProject(b.dir, b.manifest);
  assert.ok(Buffer.from(first).equals(Buffer.from(second)), `${lang}: two builds give the same bytes`);
  return { bytes: first, dir: a.dir, manifest: a.manifest };
}

/** Every template has the same cases and sample (one behaviour, six languages). */
export function sharedFiles(lang: string): Record<string, string> {
  const tpl = join(ROOT, 'templates', lang);
  const files: Record<string, string> = {};
  for (const f of ['test-input.json', 'expected-output.json', ...readdirSync(join(tpl, 'tests')).map((n) => `tests/${n}`)]) {
    files[f] = readFileSync(join(tpl, f), 'utf8');
  }
  return files;
}

/** The probe input: every SDK's test module answers it the same way (fixtures/sdk-probes/). */
export const PROBE_INPUT = {
  text: 'héllo \u0000 "q" \\ 😀 \u001f',
  n: 42,
  list: [{ name: 'a' }, { name: 'b', tags: [true, false, null] }],
  nested: { deep: { deeper: [1.5, -3, 1e-7, 12345678901234] } },
  variables: { region: 'hcm' },
};

/** Runs a probe module: echo (input, context, logs, numbers), verdict and route. */
export async function assertProbe(rt: WasmRuntime, bytes: Uint8Array, fuel = 1_000_000): Promise<void> {
  const limits = { fuel, memoryMb: 64, timeoutMs: 20_000 };
  const r = await rt.run({ bytes, functionName: 'probe', input: PROBE_INPUT, limits });
  assert.deepEqual(ok(r), {
    echo: PROBE_INPUT,
    second_name: 'b',
    region: 'hcm',
    dotted: 'hcm',
    missing_is_null: true,
    set_broken: 1,
    list_len: 2,
    n_is_integer: true,
    numbers: [0.1, -2.5e-7, 1e21, 123456789012, null],
  });
  assert.deepEqual(
    r.logs.map((l) => [l.level, l.message]),
    [
      ['debug', 'debug line'],
      ['info', `text has ${Buffer.byteLength(PROBE_INPUT.text)} bytes`],
      ['warn', 'warn line'],
      ['error', 'error line'],
    ],
  );
  assert.deepEqual(r.contextWrites, { probe: 42, greeting: 'xin chào "quoted"\n' });

  const v = await rt.run({ bytes, functionName: 'probe', input: { mode: 'verdict' }, limits });
  assert.deepEqual(ok(v), { valid: false, errors: ['field a is required', 'field b is required'] });
  assert.equal(verdictOf(v).error?.code, 'validation_failed');

  const route = await rt.run({ bytes, functionName: 'probe', input: { mode: 'route', to: 'notify' }, limits });
  assert.deepEqual(ok(route), { next_step: 'notify' });
  assert.deepEqual(routeOf(ok(route), 'probe'), { kind: 'goto', ids: ['notify'] });
}

/** The functions a module imports from `vecron` (or `env`), sorted. */
export function hostImports(bytes: Uint8Array): string[] {
  return parseModule(bytes, { walkCode: false })
    .imports.filter((i) => i.module === 'vecron' || i.module === 'env')
    .map((i) => i.name)
    .sort();
}

/** Asserts that every privileged host function a module imports has the ABI's `(i32, i32) -> i64`. */
export function assertHostSignatures(bytes: Uint8Array): void {
  const info = parseModule(bytes, { walkCode: false });
  for (const imp of info.imports) {
    if (!(PRIVILEGED_HOST_FUNCTIONS as readonly string[]).includes(imp.name)) continue;
    const t = info.types[imp.typeIndex ?? -1];
    assert.equal(imp.module, 'vecron', imp.name);
    assert.deepEqual({ params: t.params, results: t.results }, { params: ['i32', 'i32'], results: ['i64'] }, imp.name);
  }
}
export const ALL_HOST_IMPORTS = ['crypto', 'db_query', 'file_list', 'file_read', 'file_write', 'get_context', 'http_request', 'log', 'set_context', 'time'];

/**
 * Runs a probe's `hosts` entry on the real runtime with the real host functions (`real.host`: a
 * createHostDispatch over a session, see host-functions.test.ts), recording the requests the SDK
 * sent: the SDK's requests are held to issue 15's shapes and its decoding of the answers (results
 * and `{"error"}`) to what the functions answer, through the real worker, alloc and pointers.
 */
export async function assertHosts(rt: WasmRuntime, bytes: Uint8Array, fuel: number, real: { host: HostDispatch; url: string }): Promise<void> {
  const seen: { fn: string; request: Record<string, unknown> }[] = [];
  const digest = (alg: string, data: string) => createHash(alg).update(data).digest('hex');
  const host: HostDispatch = async (fn, request, signal) => {
    seen.push({ fn, request: request as Record<string, unknown> });
    return real.host(fn, request, signal);
  };
  const url = real.url;
  const r = await rt.run({ bytes, functionName: 'hosts', input: { url }, host, limits: { fuel, memoryMb: 64, timeoutMs: 20_000 } });
  const out = ok(r) as Record<string, string>;
  assert.equal(out.http, '200 pong', JSON.stringify(r.hostCalls.find((c) => c.function === 'http_request')?.response));
  assert.equal(out.db, '1 greeting=xin chào');
  assert.equal(out.write, `5 ${digest('sha256', 'hello')}`);
  assert.equal(out.read, 'hello');
  assert.equal(out.list, '1 out/a.txt');
  assert.equal(out.sha256, digest('sha256', 'abc'));
  assert.equal(out.sha512, digest('sha512', 'abc'));
  assert.equal(out.hmac, 'error:permission_denied', 'a refusal comes back as the error code, not a trap');
  assert.match(out.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(Buffer.from(out.random, 'base64').length, 16);
  const [ms, iso] = out.now.split(' ');
  assert.ok(Math.abs(Number(ms) - Date.now()) < 60_000 && iso.length >= 20, out.now);

  // The requests, as issue 15 shapes them.
  const req = (fn: string, pick: (r: Record<string, any>) => boolean) => seen.find((s) => s.fn === fn && pick(s.request))?.request;
  const http = req('http_request', () => true) as Record<string, unknown>;
  assert.equal(http.method, 'GET');
  assert.equal(http.url, url);
  assert.ok(http.headers && typeof http.headers === 'object', 'headers is an object');
  assert.ok(http.body === null || http.body === undefined);
  assert.deepEqual(
    req('db_query', () => true),
    { datasource: 'main', sql: seen.find((s) => s.fn === 'db_query')!.request.sql, params: ['xin chào'] },
  );
  assert.match(String(req('db_query', () => true)!.sql), /^SELECT \$1/);
  assert.deepEqual(
    req('file_write', () => true),
    { path: 'out/a.txt', content: 'hello', encoding: 'utf8' },
  );
  assert.deepEqual(
    req('file_read', () => true),
    { path: 'out/a.txt' },
  );
  assert.deepEqual(
    req('file_list', () => true),
    { prefix: 'out/' },
  );
  assert.deepEqual(
    req('crypto', (x) => x.op === 'hmac_sha256'),
    { op: 'hmac_sha256', key_secret: 'SIGNING_KEY', data: 'abc' },
  );
  {
    const served = Object.fromEntries(r.hostCalls.map((c) => [`${c.function}:${c.target}`, `${c.served}:${c.outcome}`]));
    assert.equal(served['crypto:sha256'], 'worker:ok', JSON.stringify(served));
    assert.equal(r.hostCalls.find((c) => c.function === 'crypto' && c.outcome === 'permission_denied')?.served, 'host');
  }
  assert.deepEqual(
    r.hostCalls.map((c) => c.function).sort(),
    ['crypto', 'crypto', 'crypto', 'crypto', 'crypto', 'db_query', 'file_list', 'file_read', 'file_write', 'http_request', 'time'],
    'every call is in the run record',
  );
}
