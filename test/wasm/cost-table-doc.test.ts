import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SIZE_COSTS, HOST_COSTS, HOST_BOUNDS, TABLE_ENTRY_BYTES } from '../../src/wasm/instrument/costs.ts';
import { ENGINE_LIMITS } from '../../src/wasm/instrument/engine-limits.ts';
import { MAX_ELEMENT_ENTRIES } from '../../src/wasm/binary/parse.ts';
import { DEFAULT_LIMITS } from '../../src/wasm/runtime/index.ts';
import { wasm } from '../../src/executors/wasm/definition.ts';

// docs/abi.md states the cost table and every bound; the code keeps them as data. They must agree.
const doc = readFileSync(new URL('../../docs/abi.md', import.meta.url), 'utf8');
const fmt = (n: number) => n.toLocaleString('en');
const row = (start: string): string => {
  const line = doc.split('\n').find((l) => l.startsWith(`| ${start}`));
  assert.ok(line, `docs/abi.md has no table row starting with '${start}'`);
  return line!;
};

test('the cost table in docs/abi.md is the one in costs.ts', () => {
  assert.match(row('`memory.copy`, `memory.fill`, `memory.init`'), new RegExp(`1 \\+ bytes / ${2 ** SIZE_COSTS.memoryBulk.shift} `));
  assert.equal(SIZE_COSTS.memoryBulk.perUnit, 1);
  assert.equal(SIZE_COSTS.tableBulk.perUnit, 1);
  assert.equal(SIZE_COSTS.tableBulk.shift, 0);
  assert.match(row('`table.copy`, `table.fill`, `table.init`'), /1 \+ entries /);
  assert.match(row('`memory.grow`'), new RegExp(`1 \\+ ${SIZE_COSTS.memoryGrow.perUnit} per page`));
  assert.equal(SIZE_COSTS.tableGrow.perUnit, 1);
  assert.match(row('`table.grow`'), /1 \+ entries asked for/);
  assert.match(row('every host function and WASI call'), new RegExp(`\\| ${HOST_COSTS.call} \\|$`));
  assert.match(row('bytes copied'), new RegExp(`1 per ${HOST_COSTS.copyBytesPerUnit} bytes`));
  assert.equal(HOST_COSTS.jsonBytesPerUnit, 1);
  assert.match(row('bytes of JSON'), /1 per byte/);
  assert.match(row('`random_get`'), new RegExp(`1 per ${HOST_COSTS.randomBytesPerUnit} bytes`));
  assert.match(row('iovecs of'), new RegExp(`\\+ ${HOST_COSTS.iovec} each`));
  assert.match(row('subscriptions of'), new RegExp(`\\+ ${HOST_COSTS.pollSubscription} each`));
  assert.match(row('a privileged host function'), new RegExp(`\\+ ${fmt(HOST_COSTS.privilegedCall)}, then \\+ 1 per byte of the request.*answer`));
  assert.match(row('a privileged call bridged'), new RegExp(`\\+ ${fmt(HOST_COSTS.bridgedCall)} \\|$`));
});

test('the calling convention of the privileged host functions in docs/abi.md states the bounds in the code', () => {
  assert.match(row('request JSON'), new RegExp(`${HOST_BOUNDS.maxHostRequestBytes / 2 ** 20} MiB \\(${fmt(HOST_BOUNDS.maxHostRequestBytes)} bytes\\)`));
  assert.match(row('answer JSON'), new RegExp(`${HOST_BOUNDS.maxHostResponseBytes / 2 ** 20} MiB \\(${fmt(HOST_BOUNDS.maxHostResponseBytes)} bytes\\)`));
  assert.match(row('calls a run'), new RegExp(`\\| ${fmt(HOST_BOUNDS.maxHostCallRecords)} \\|`));
  assert.match(row('one string'), new RegExp(`\\| ${fmt(HOST_BOUNDS.maxRecordStringChars)} characters \\|`));
  assert.match(row('one request or answer'), new RegExp(`about ${HOST_BOUNDS.maxRecordValueBytes / 1024} KiB of JSON`));
  assert.match(row('all requests and answers of a run'), new RegExp(`about ${HOST_BOUNDS.maxRecordRunBytes / 2 ** 20} MiB of JSON`));
  assert.match(row('nesting'), new RegExp(`\\| ${HOST_BOUNDS.maxRecordDepth} levels \\|`));
  const conv = doc.slice(doc.indexOf('## Privileged host functions: the calling convention'), doc.indexOf('## Fuel: the cost table'));
  assert.ok(conv.includes(`${HOST_COSTS.call} (every host call) + ${fmt(HOST_COSTS.privilegedCall)} (a\nprivileged call)`), 'the fuel paragraph');
  assert.ok(conv.includes(`+ ${fmt(HOST_COSTS.bridgedCall)} more when the`), 'the bridged cost');
});

test('every bound in docs/abi.md is the one in the code, with its setting', () => {
  assert.match(row('fuel'), new RegExp(`${fmt(DEFAULT_LIMITS.fuel)} per run.*${fmt(DEFAULT_LIMITS.initFuel)}.*step \`fuel_limit\``));
  assert.match(row('memory'), new RegExp(`${DEFAULT_LIMITS.memoryMb} MB.*step \`memory_limit_mb\`.*VECRON_WASM_MAX_MEMORY_MB`));
  const tables = row('tables');
  assert.match(
    tables,
    new RegExp(`${fmt(DEFAULT_LIMITS.tableLimit)} entries.*${TABLE_ENTRY_BYTES} bytes an entry.*step \`table_limit\`.*VECRON_WASM_MAX_TABLE_ELEMENTS`),
  );
  assert.equal((wasm.configSchema.properties as any).table_limit.maximum, 10_000_000);
  const jobsDoc = readFileSync(new URL('../../docs/jobs.md', import.meta.url), 'utf8');
  assert.ok(jobsDoc.includes(`| \`table_limit\` | \`${DEFAULT_LIMITS.tableLimit}\` |`), 'docs/jobs.md gives the step default of table_limit');
  assert.match(row('timeout'), new RegExp(`${DEFAULT_LIMITS.timeoutMs / 1000} s.*step \`timeout_seconds\``));
  assert.match(row('element segment entries'), new RegExp(`${fmt(MAX_ELEMENT_ENTRIES)}, all segments together`));
  assert.match(row('WASI iovecs'), new RegExp(fmt(HOST_BOUNDS.maxIovecs)));
  assert.match(row('`poll_oneoff` subscriptions'), new RegExp(fmt(HOST_BOUNDS.maxPollSubscriptions)));
  assert.match(row('`get_context` / `set_context` keys'), new RegExp(`${HOST_BOUNDS.maxKeyBytes / 1024} KiB`));
  assert.match(row('`set_context` values'), new RegExp(`${HOST_BOUNDS.maxContextWriteBytes / 2 ** 20} MiB a run`));
  assert.match(
    row('logs'),
    new RegExp(`${fmt(HOST_BOUNDS.maxLogLines)} lines, ${HOST_BOUNDS.maxLogLineBytes / 1024} KiB a line, ${HOST_BOUNDS.maxLogBytes / 2 ** 20} MiB a run`),
  );
  assert.match(row('stderr'), new RegExp(`${HOST_BOUNDS.maxStderrBytes / 2 ** 20} MiB`));
  assert.match(row('parameters / results'), new RegExp(`${fmt(ENGINE_LIMITS.params)} \\| ${fmt(ENGINE_LIMITS.params)}`));
  assert.match(row('locals of a function'), new RegExp(`${fmt(ENGINE_LIMITS.locals)} \\| ${fmt(ENGINE_LIMITS.locals - 1)}`));
});
