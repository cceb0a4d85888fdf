/**
 * A module project from init to a checked build and passing test cases, with the CLI's own test
 * template (test/cli/fixtures/home, a C module: clang with wasi-libc), and every error path of
 * init, build, test and inspect: an actionable message and a non-zero exit code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toToml } from 'smol-toml';
import { FIXTURE_HOME, ROOT, wasmCli } from './run-cli.ts';

const home = { WASM_CLI_HOME: FIXTURE_HOME };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('wasm-cli init, build, test, inspect in a project', () => {
  let dir = '';
  let project = '';
  const inProject = (args: string[], env: Record<string, string> = {}) => wasmCli(args, { cwd: project, env: { ...home, ...env } });
  const manifest = () => JSON.parse(readFileSync(join(project, 'vecron.json'), 'utf8'));
  const setManifest = (m: unknown) => writeFileSync(join(project, 'vecron.json'), JSON.stringify(m, null, 2));
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wasm-cli-project-'));
    project = join(dir, 'order-check');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('init writes the template with the names filled in, the SDK in vecron-sdk/, and the next three commands', async () => {
    const r = await wasmCli(['init', 'order-check', '--lang', 'c'], { cwd: dir, env: home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Next:\n {2}cd order-check\n {2}wasm-cli build\n {2}wasm-cli test\n/);
    const m = manifest();
    assert.equal(m.name, 'order-check');
    assert.equal(m.version, '0.1.0');
    assert.equal(m.build.output, 'build/order_check.wasm');
    assert.match(readFileSync(join(project, 'src/main.c'), 'utf8'), /"module\\":\\"order-check\\"/);
    assert.match(readFileSync(join(project, 'vecron-sdk/vecron_mini.h'), 'utf8'), /export_name\("alloc"\)/);
    assert.throws(() => readFileSync(join(project, 'template.json')), /ENOENT/, 'template.json describes the template; it is not copied');
  });

  it('init refuses a folder that is not empty, and names the templates present for a missing language', async () => {
    const again = await wasmCli(['init', 'order-check', '--lang', 'c'], { cwd: dir, env: home });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /order-check exists and is not empty: choose another name or --dir, or pass --force/);
    const rust = await wasmCli(['init', 'other', '--lang', 'rust'], { cwd: dir, env: home });
    assert.equal(rust.code, 1);
    assert.match(rust.stderr, /there is no rust template \(templates\/rust\) in .*; templates present: c \(wasm-cli init other --lang c\)/);
    const badName = await wasmCli(['init', '-x', '--lang', 'c'], { cwd: dir, env: home });
    assert.equal(badName.code, 2);
  });

  it('build runs the toolchain, optimises, checks the ABI and prints size, sha256, entry, exports and path; twice gives the same bytes', async () => {
    const r = await inProject(['build']);
    assert.equal(r.code, 0, r.stderr);
    const out = join(project, 'build/order_check.wasm');
    const bytes = readFileSync(out);
    assert.match(r.stdout, /^OK order-check@0\.1\.0$/m);
    assert.match(r.stdout, new RegExp(`path {5}${out}`));
    assert.match(r.stdout, new RegExp(`size {5}${bytes.length.toLocaleString('en')} bytes`));
    assert.match(r.stdout, new RegExp(`sha256 {3}${sha(bytes)}`));
    assert.match(r.stdout, /entry {4}process \(form A\)/);
    assert.match(r.stdout, /exports {2}.*alloc \(i32\)->\(i32\), process \(i32,i32\)->\(i64\)/);
    // Not a terminal: one line when a step starts and one when it ends.
    assert.match(r.stderr, /^build \[2\/2\]: clang .* \.\.\.$/m);
    assert.match(r.stderr, /^ok build \[2\/2\]: clang .*: done \([\d.]+ s\)$/m);
    const second = await inProject(['build', '--json']);
    assert.equal(second.code, 0, second.stderr);
    const j = JSON.parse(second.stdout);
    assert.equal(j.sha256, sha(bytes), 'reproducible: the same bytes twice');
    assert.ok(readFileSync(out).equals(bytes));
    assert.deepEqual(j.entry, { name: 'process', form: 'A' });
  });

  it("test runs the manifest's cases; --input runs once, and the output is the project's expected-output.json", async () => {
    const r = await inProject(['test']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^PASS wraps the input \(tests\/gold\.json\) · fuel [\d,]+/m);
    assert.match(r.stdout, /^PASS bad input is invalid \(tests\/invalid\.json\)/m);
    assert.match(r.stdout, /^2 case\(s\): 2 passed, 0 failed$/m);
    const once = await inProject(['test', '--input', 'test-input.json', '--json']);
    assert.equal(once.code, 0, once.stderr);
    assert.deepEqual(JSON.parse(once.stdout).output, JSON.parse(readFileSync(join(project, 'expected-output.json'), 'utf8')));
  });

  it('a failing case exits 1 with a readable difference, naming the JSON path', async () => {
    writeFileSync(
      join(project, 'tests/wrong.json'),
      JSON.stringify({
        name: 'silver',
        input: { customer: 'gold' },
        expected_output: { module: 'order-check', next_step: 'notify', input: { customer: 'silver' } },
      }),
    );
    writeFileSync(join(project, 'tests/route.json'), JSON.stringify({ name: 'route', input: {}, expected_route: ['archive'] }));
    writeFileSync(join(project, 'tests/error.json'), JSON.stringify({ name: 'err', input: { a: 1 }, expected_error: 'validation_failed' }));
    try {
      const r = await inProject(['test']);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^FAIL silver \(tests\/wrong\.json\)/m);
      assert.match(r.stdout, /^ {5}\$\.input\.customer: expected "silver", got "gold"$/m);
      assert.match(r.stdout, /^FAIL route .*\n {5}expected the route \["archive"\], got \["notify"\]$/m);
      assert.match(r.stdout, /^FAIL err .*\n {5}expected the error validation_failed, got success$/m);
      assert.match(r.stdout, /^5 case\(s\): 2 passed, 3 failed$/m);
      const j = await inProject(['test', '--json']);
      assert.equal(j.code, 1);
      assert.equal(JSON.parse(j.stdout).failed, 3);
    } finally {
      for (const f of ['wrong', 'route', 'error']) rmSync(join(project, `tests/${f}.json`));
    }
  });

  it('a bad test case file is a usage error (exit 2) naming the key', async () => {
    writeFileSync(join(project, 'tests/bad.json'), JSON.stringify({ name: 'x', input: {}, expect: {} }));
    try {
      const r = await inProject(['test']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /tests\/bad\.json: expect is not a test case key/);
    } finally {
      rmSync(join(project, 'tests/bad.json'));
    }
  });

  it('a missing toolchain prints the command that installs it, exit 1, before anything runs', async () => {
    const m = manifest();
    setManifest({ ...m, build: { ...m.build, requires: [{ tool: 'zigcc', check: 'command -v zigcc-not-here', install: 'sudo apt-get install -y zigcc' }] } });
    try {
      const r = await inProject(['build']);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /missing toolchain for this c project:\n {2}zigcc: not found \(check: command -v zigcc-not-here\)\n {4}install it with: sudo apt-get install -y zigcc/,
      );
      assert.doesNotMatch(r.stderr, /clang/, 'nothing ran');
    } finally {
      setManifest(m);
    }
  });

  it('a module that breaks the ABI fails the build with the reason (exit 1); so does a failing compiler, with its output', async () => {
    const m = manifest();
    for (const [fixture, reason] of [
      ['foreign-import/foreign-import.wasm', /breaks the ABI: import_not_allowed: import not allowed: .*evil/],
      ['missing-exports/missing-exports.wasm', /breaks the ABI: abi_error: /],
    ] as const) {
      setManifest({
        ...m,
        entry: undefined,
        build: { ...m.build, requires: [], command: `mkdir -p build && cp ${join(ROOT, 'fixtures/wasm', fixture)} build/order_check.wasm` },
      });
      const r = await inProject(['build', '--no-optimize']);
      assert.equal(r.code, 1, fixture);
      assert.match(r.stderr, reason, fixture);
      assert.match(r.stderr, /`wasm-cli inspect` shows what it has/);
    }
    setManifest(m);
    const src = join(project, 'src/main.c');
    const good = readFileSync(src, 'utf8');
    writeFileSync(src, `${good}\nthis is not C;\n`);
    try {
      const r = await inProject(['build']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^FAILED build \[2\/2\]: clang .*: exit 1/m);
      assert.match(r.stderr, /main\.c:\d+:\d+: error:/, "the compiler's own message is shown");
      assert.match(r.stderr, /the build command failed \(exit 1\): clang/);
    } finally {
      writeFileSync(src, good);
    }
    assert.equal((await inProject(['build'])).code, 0, 'the project builds again');
  });

  it('vecron.toml works as the manifest; a bad manifest is a usage error naming the key; no project says how to make one', async () => {
    const m = manifest();
    const tomlDir = join(dir, 'toml-project');
    cpSync(project, tomlDir, { recursive: true });
    rmSync(join(tomlDir, 'vecron.json'));
    writeFileSync(join(tomlDir, 'vecron.toml'), toToml(m));
    const r = await wasmCli(['build'], { cwd: join(tomlDir, 'src') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /OK order-check@0\.1\.0/);
    writeFileSync(join(tomlDir, 'vecron.toml'), toToml({ ...m, limits: { fuel: -1 }, permissions: [{ type: 'http:fly' }] }));
    const bad = await wasmCli(['build'], { cwd: tomlDir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /vecron\.toml: limits\.fuel: must be a positive number; permissions\[0\]\.type: must be one of/);
    const none = await wasmCli(['build'], { cwd: dir });
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /no vecron\.json or vecron\.toml in .* or any folder above it: run `wasm-cli build` inside a project \(wasm-cli init NAME --lang LANG makes one\)/,
    );
  });

  it('test in a project that is not built yet says to build it', async () => {
    const fresh = join(dir, 'fresh');
    assert.equal((await wasmCli(['init', 'fresh', '--lang', 'c'], { cwd: dir, env: home })).code, 0);
    const r = await wasmCli(['test'], { cwd: fresh });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /build\/fresh\.wasm does not exist yet: run `wasm-cli build` first/);
  });

  it('inspect prints imports, exports, entry forms, memory and table limits, and the ABI verdict', async () => {
    const r = await wasmCli(['inspect', join(project, 'build/order_check.wasm')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^imports \(\d+\):$/m);
    assert.match(r.stdout, /^ {2}wasi_snapshot_preview1\.\w+ \(/m);
    assert.match(r.stdout, /^ {2}process \(i32,i32\)->\(i64\)$/m);
    assert.match(r.stdout, /^entries: process \(form A: \(ptr, len\) -> i64 packed/m);
    assert.match(r.stdout, /^memory 0: min \d+ pages \([\d.]+ MiB\), max /m);
    assert.match(r.stdout, /^table 0: funcref, min \d+, max /m);
    assert.match(r.stdout, /^ABI: ok, the server would run process \(form A\)$/m);
    const j = JSON.parse((await wasmCli(['inspect', join(ROOT, 'fixtures/wasm/echo/echo.wasm'), '--function', 'echo_copy', '--json'])).stdout);
    assert.equal(j.ok, true);
    assert.ok(j.entries.some((e: { name: string; form: string }) => e.name === 'echo_copy' && e.form === 'A'));
    const foreign = await wasmCli(['inspect', join(ROOT, 'fixtures/wasm/foreign-import/foreign-import.wasm')]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stdout, /^ABI: refused: import_not_allowed: .*evil/m);
    writeFileSync(join(dir, 'not.wasm'), 'hello');
    const junk = await wasmCli(['inspect', join(dir, 'not.wasm')]);
    assert.equal(junk.code, 1);
    assert.match(junk.stderr, /invalid_module|not a valid WebAssembly module/);
    const missing = await wasmCli(['inspect', join(dir, 'nope.wasm')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope\.wasm/);
  });
});
