/**
 * bin/startup-tiering.js: the WebAssembly tiering budget is raised while `vecron start` starts and
 * put back once every role runs, unless the operator chose a tiering flag.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { deferWasmTierUp } from '../../bin/startup-tiering.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

describe('bin/startup-tiering.js', () => {
  it('leaves the flags alone when the operator set one, or asked for normal tiering', () => {
    assert.equal(deferWasmTierUp(['--wasm-tiering-budget=5'], {}), null);
    assert.equal(deferWasmTierUp(['--no-liftoff'], {}), null);
    assert.equal(deferWasmTierUp([], { NODE_OPTIONS: '--max-old-space-size=100 --no-wasm-dynamic-tiering' }), null);
    assert.equal(deferWasmTierUp([], { VECRON_STARTUP_WASM_TIERING: 'normal' }), null);
  });

  it('raises the budget otherwise and returns the function that puts it back', async () => {
    // In a child process: V8's flags are the process's.
    const script = `
      const { deferWasmTierUp } = await import('./bin/startup-tiering.js');
      const restore = deferWasmTierUp([], {});
      restore(); restore();
      console.log(typeof restore);`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    assert.equal(stdout.trim(), 'function');
  });
});
