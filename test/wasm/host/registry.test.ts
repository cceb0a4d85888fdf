/** The registries hold every function of the ABI, once, under the name the guest imports. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOST_FUNCTIONS as MAIN_THREAD } from '../../../src/wasm/host/index.ts';
import { WORKER_HOST_FUNCTIONS } from '../../../src/wasm/host/worker-functions.ts';
import { PRIVILEGED_HOST_FUNCTIONS } from '../../../src/wasm/host/types.ts';
import { HOST_FUNCTIONS as IMPORTABLE } from '../../../src/wasm/runtime/imports.ts';

test('every privileged function is importable, served on the main thread, and keyed by its own name', () => {
  for (const name of PRIVILEGED_HOST_FUNCTIONS) {
    assert.deepEqual(IMPORTABLE[name], { params: ['i32', 'i32'], results: ['i64'] }, `${name} importable as (i32,i32)->i64`);
    assert.equal(MAIN_THREAD.get(name)?.name, name, `${name} has a main-thread function`);
  }
  assert.deepEqual([...MAIN_THREAD.keys()].sort(), [...PRIVILEGED_HOST_FUNCTIONS].sort());
});

test('worker-served functions are privileged functions, each listed once', () => {
  const names = WORKER_HOST_FUNCTIONS.map((f) => f.name);
  assert.equal(new Set(names).size, names.length);
  for (const n of names) assert.ok((PRIVILEGED_HOST_FUNCTIONS as readonly string[]).includes(n), n);
  assert.deepEqual(names.sort(), ['crypto', 'time']);
});
