/**
 * The stored record is written as JSON text from the run's own texts (issue 20, src/wasm/replay/
 * record.ts): the input's JSON as the guest got it, the output's exactly as the guest wrote it.
 * The text is what is stored (input and output embedded as JSON, unless masked); it parses to the
 * record a replay reads (parseRecordText), its size is its UTF-8 bytes,
 * and masking still keeps every encoded form of a secret out of it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WasmRuntime } from '../../../src/wasm/runtime/index.ts';
import { parseRecordText, replayRun, writeRunRecord } from '../../../src/wasm/replay/index.ts';
import { createMasker } from '../../../src/engine/masking.ts';

const root = new URL('../../../', import.meta.url);
const ECHO = new Uint8Array(readFileSync(new URL('fixtures/wasm/echo/echo.wasm', root)));
const meta = { module: { id: null, name: 'echo', version: '1.0.0' }, recordedAt: '2026-12-02T12:00:00.000Z', maxBytes: 1 << 20, stepId: 's', attempt: 2 };

let rt: WasmRuntime;
before(() => {
  rt = new WasmRuntime({ poolSize: 1 });
});
after(async () => {
  await rt.close();
});

describe('the record written as text from the run texts', () => {
  it("keeps the input's and the output's texts exactly, parses to a replayable record, and counts its bytes", async () => {
    const input = { name: 'Zoë "quoted" \\ \u2028', list: [1, 2.5, -0, 1e21], nested: { ok: true, none: null } };
    const result = await rt.run({ bytes: ECHO, functionName: 'echo', input, record: true });
    assert.equal(result.ok, true);
    assert.equal(result.record?.outputJson, JSON.stringify(input), 'the output text as the guest wrote it (echo: its input)');
    const stored = writeRunRecord(result, meta);
    assert.ok(stored);
    assert.equal(stored.bytes, Buffer.byteLength(stored.text));
    assert.equal(stored.replayable, true);
    assert.equal(stored.moduleHash, result.record?.moduleHash);
    // the input and the output embedded as the JSON they are, not quoted
    assert.ok(stored.text.includes(`"input":${JSON.stringify(input)},`), stored.text);
    assert.ok(stored.text.includes(`"output":${JSON.stringify(input)},`), stored.text);
    const record = parseRecordText(stored.text);
    assert.equal(record.input_json, JSON.stringify(input));
    assert.equal(record.result.output_json, JSON.stringify(input));
    assert.equal(record.step_id, 's');
    assert.equal(record.attempt, 2);
    assert.deepEqual(record.masked, []);
    assert.deepEqual(record.cut, []);
    assert.equal(record.result.fuel_consumed, result.fuelConsumed);
    const r = await replayRun(rt, ECHO, record);
    assert.equal(r.status, 'reproduced');
  });

  it('counts its size from the bytes the run itself counted, on the calling thread and in a worker', async () => {
    const worker = new WasmRuntime({ poolSize: 1, inline: false });
    try {
      for (const runtime of [rt, worker]) {
        for (const input of [{ a: 'ascii' }, { a: 'Zoë ₫ 😀', b: '\ud800' }]) {
          const result = await runtime.run({ bytes: ECHO, functionName: 'echo', input, record: true });
          assert.equal(result.ok, true);
          const stored = writeRunRecord(result, meta);
          assert.ok(stored);
          assert.equal(stored.bytes, Buffer.byteLength(stored.text), stored.text);
        }
      }
    } finally {
      await worker.close();
    }
  });

  it('counts its size exactly whatever the texts hold: non-ASCII, astral characters and lone surrogates in every part', () => {
    // Every text the record takes from outside, each with 2-, 3- and 4-byte characters, a lone
    // surrogate (JSON.stringify escapes it: six ASCII bytes, where UTF-8 would write three) and
    // characters that need escaping. The size is counted part by part (record.ts: extraBytes).
    // Twice: texts that need escaping (and lone surrogates), and texts that do not.
    const escaping = (tag: string) => `${tag} Zoë ₫ 😀 \ud800 "q" \\ \n\u2028 ${tag}`;
    const plain = (tag: string) => `${tag} Zoë ₫ ${tag}`; // no surrogate: not escaped, quoted as it is
    for (const odd of [escaping, plain]) checkSizes(odd);
  });

  function checkSizes(odd: (tag: string) => string): void {
    const oddJson = JSON.stringify({ s: odd('json') });
    const result = {
      ok: false,
      error: { code: 'upstream_error', message: odd('error') },
      fuelConsumed: 1,
      initFuelConsumed: 2,
      memoryPeakBytes: 65536,
      durationMs: 0.123456,
      logs: [],
      contextWrites: { [odd('ck')]: odd('cv') },
      stdout: odd('stdout'),
      stderr: odd('stderr'),
      exitCode: null,
      hostCalls: [],
      hostCallsDropped: 0,
      record: {
        host_calls: [
          {
            seq: 0,
            function: 'http_request',
            request: oddJson,
            response: oddJson,
            outcome: 'ok',
            served: 'host',
            target: odd('target'),
            permission: odd('perm'),
          },
          { seq: 1, function: 'db_query', request: '', request_bytes: 9, response: '{"error":{}}', outcome: 'too_large', served: 'worker', target: null },
        ],
        context_reads: [
          { key: odd('key'), value: odd('value') },
          { key: 'none', value: null },
        ],
        wasi: { clocks: [{ clock: 1, ns: '123' }], random: ['AAEC'], stdin_bytes: 3 },
        cut: [{ path: odd('path'), reason: odd('reason') }],
        bytes: 0,
        moduleHash: 'a'.repeat(64),
        functionName: odd('fn'),
        limits: {
          fuel: 1,
          initFuel: 2,
          memoryMb: 3,
          tableLimit: 4,
          timeoutMs: 5,
          stackKb: 6,
          maxOutputBytes: 7,
          maxHostRequestBytes: 8,
          maxHostResponseBytes: 9,
        },
        inputJson: oddJson,
        contextChars: 10,
        env: { [odd('env')]: odd('env value') },
      },
    } as unknown as Parameters<typeof writeRunRecord>[0];
    const oddMeta = {
      ...meta,
      module: { id: odd('id'), name: odd('name'), version: odd('version') },
      executionId: odd('exec'),
      jobId: odd('job'),
      stepId: odd('step'),
    };
    for (const m of [oddMeta, oddMeta, meta, { ...oddMeta, mask: createMasker(['Zoë ₫ 😀']) }]) {
      // twice the same meta: the second reuses the module/limits text (and its count)
      const stored = writeRunRecord(result, m);
      assert.ok(stored);
      assert.equal(stored.bytes, Buffer.byteLength(stored.text), stored.text);
      const back = parseRecordText(stored.text);
      assert.equal(back.result.stdout, 'mask' in m ? odd('stdout').replaceAll('Zoë ₫ 😀', '***') : odd('stdout'));
    }
    // an output kept as text, embedded raw
    const ok = {
      ...result,
      ok: true,
      output: { s: odd('out') },
      record: { ...result.record!, outputJson: JSON.stringify({ s: odd('out') }) },
    } as typeof result;
    const stored = writeRunRecord(ok, oddMeta);
    assert.ok(stored);
    assert.equal(stored.bytes, Buffer.byteLength(stored.text));
  }

  it('a secret in the input is masked in every encoding, and the record says the run is not replayable', async () => {
    const secret = 'sk_live_"abc\\def"_123';
    const result = await rt.run({ bytes: ECHO, functionName: 'echo', input: { token: secret, other: 'x' }, record: true });
    const stored = writeRunRecord(result, { ...meta, mask: createMasker([secret]) });
    assert.ok(stored);
    for (const form of [
      secret,
      JSON.stringify(secret).slice(1, -1),
      JSON.stringify(JSON.stringify(secret)).slice(1, -1),
      Buffer.from(secret).toString('base64'),
    ]) {
      assert.ok(!stored.text.includes(form), `no ${form}`);
    }
    assert.equal(stored.replayable, false);
    assert.equal(stored.notReplayableReason, 'masked');
    // masked texts are quoted (masking may break a JSON text's syntax), the record still parses
    assert.ok(stored.text.includes('"input_json":"'), stored.text);
    const record = parseRecordText(stored.text);
    assert.deepEqual(record.masked, ['result.output_json', 'input_json']);
    assert.match(record.input_json, /\*\*\*/);
  });
});
