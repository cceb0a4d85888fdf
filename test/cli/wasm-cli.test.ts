import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const fx = (p: string) => join(root, 'fixtures/wasm', p);

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/wasm-cli.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('wasm-cli test', () => {
  let dir: string;
  let input: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wasm-cli-'));
    input = join(dir, 'context.json');
    writeFileSync(
      input,
      JSON.stringify({
        steps: {
          fetch_customers: {
            output: {
              data: {
                customers: [
                  { id: 'c1', name: 'Alice', total_orders: 150000 },
                  { id: 'c4', name: 'Dan', total_orders: 10000 },
                ],
              },
            },
          },
        },
      }),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a module with the server runtime and prints output, logs, fuel, memory and duration', async () => {
    const r = await cli(['test', fx('customer-tiers/customer-tiers.wasm'), '--function', 'transform_data', '--input', input]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))), {
      customers: [
        { id: 'c1', name: 'Alice', revenue: 150000, tier: 'platinum' },
        { id: 'c4', name: 'Dan', revenue: 10000, tier: 'bronze' },
      ],
      total_revenue: 160000,
    });
    assert.match(r.stdout, /\[info\] classified 2 customers/);
    assert.match(r.stderr, /ok · fuel [\d,]+ .*· memory [\d.]+ MiB · [\d.]+ ms/);
  });

  it("without --function the module's only entry runs; several entries are named in the error (exit 2)", async () => {
    const r = await cli(['test', fx('customer-tiers/customer-tiers.wasm'), '--input', input, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).output.total_revenue, 160000);
    const several = await cli(['test', fx('echo/echo.wasm'), '--input', input]);
    assert.equal(several.code, 2);
    assert.match(several.stderr, /several entry functions \(echo, echo_copy, echo_cstr\): name one with --function, or set "entry" in the manifest/);
  });

  it("shows the run's host calls: function, target, outcome, duration, bytes", async () => {
    const req = join(dir, 'now.json');
    writeFileSync(req, JSON.stringify({ op: 'now', tz: 'Asia/Ho_Chi_Minh' }));
    const r = await cli(['test', fx('host-abi/host-abi.wasm'), '--function', 'time', '--input', req]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /^host calls \(1\):\n {2}# {2}FUNCTION {2}TARGET +OUTCOME +TIME +IN\/OUT\n {2}0 {2}time {6}now Asia\/Ho_Chi_Minh +ok +[\d.]+ (us|ms) +\d+\/\d+ B$/m,
    );
    const j = JSON.parse((await cli(['test', fx('host-abi/host-abi.wasm'), '--function', 'time', '--input', req, '--json'])).stdout);
    assert.equal(j.hostCalls.length, 1);
    assert.equal(j.hostCalls[0].function, 'time');
    assert.equal(j.hostCalls[0].outcome, 'ok', 'served: the run is given the host functions');
    assert.equal(j.output.tz, 'Asia/Ho_Chi_Minh');
  });

  it('--json prints one object; a limit breach exits 1 with its error code', async () => {
    const r = await cli(['test', fx('endless-loop/endless-loop.wasm'), '--function', 'run', '--fuel', '5000', '--json']);
    assert.equal(r.code, 1);
    const o = JSON.parse(r.stdout);
    assert.equal(o.ok, false);
    assert.equal(o.error.code, 'fuel_exhausted');
    assert.ok(o.fuelConsumed >= 5000);
  });

  it('a module with a foreign import is refused, naming the import', async () => {
    const r = await cli(['test', fx('foreign-import/foreign-import.wasm'), '--function', 'run', '--json']);
    assert.equal(r.code, 1);
    const o = JSON.parse(r.stdout);
    assert.equal(o.error.code, 'import_not_allowed');
    assert.match(o.error.message, /evil/);
  });

  it('reports the step\'s verdict: {"valid": false} is a failed validation (exit 1); a routing output shows its route', async () => {
    const invalid = join(dir, 'invalid.json');
    writeFileSync(invalid, JSON.stringify({ valid: false, errors: ['amount must be positive'] }));
    const r = await cli(['test', fx('echo/echo.wasm'), '--function', 'echo_copy', '--input', invalid]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error validation_failed: the module found the data invalid: amount must be positive/);
    assert.match(r.stderr, /failed \(the step would fail\)/);
    const j = await cli(['test', fx('echo/echo.wasm'), '--function', 'echo_copy', '--input', invalid, '--json']);
    assert.equal(j.code, 1);
    const o = JSON.parse(j.stdout);
    assert.equal(o.ok, true, 'the run itself succeeded');
    assert.equal(o.verdict.ok, false);
    assert.equal(o.verdict.error.code, 'validation_failed');

    const routed = join(dir, 'routed.json');
    writeFileSync(routed, JSON.stringify({ next_step: 'alert', sku: 'A1' }));
    const rr = await cli(['test', fx('echo/echo.wasm'), '--function', 'echo_copy', '--input', routed]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.match(rr.stderr, /route: next: alert/);
    const rj = JSON.parse((await cli(['test', fx('echo/echo.wasm'), '--function', 'echo_copy', '--input', routed, '--json'])).stdout);
    assert.deepEqual(rj.route, { kind: 'goto', ids: ['alert'] });
    const bad = join(dir, 'bad-route.json');
    writeFileSync(bad, JSON.stringify({ next_step: 5 }));
    const br = await cli(['test', fx('echo/echo.wasm'), '--function', 'echo_copy', '--input', bad]);
    assert.equal(br.code, 1);
    assert.match(br.stderr, /routing_error/);
  });

  it('get_context reads the input file as the job context, as in a job step: a bare key finds a job variable', async () => {
    const ctx = join(dir, 'vars.json');
    const steps = { fetch_amounts: { output: { amounts: [1, 2] } }, other: { output: { amounts: [5, 6, 7] } } };
    writeFileSync(ctx, JSON.stringify({ variables: { source_step: 'other' }, steps }));
    const r = await cli(['test', fx('sum-amounts/sum-amounts.wasm'), '--function', 'sum_amounts', '--input', ctx, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).output, { total: 18, count: 3 });
  });

  it('bad arguments exit 2 with a message', async () => {
    const missing = await cli(['test', fx('echo/echo.wasm'), '--function', 'echo', '--input', join(dir, 'nope.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json/);
    const badFuel = await cli(['test', fx('echo/echo.wasm'), '--function', 'echo', '--fuel', 'lots']);
    assert.notEqual(badFuel.code, 0);
    assert.match(badFuel.stderr, /--fuel must be a positive whole number/);
  });
});
