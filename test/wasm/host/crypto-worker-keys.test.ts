/**
 * crypto with `key_secret` served inside the worker (host/worker-keys.ts): the main thread resolves
 * the keys the module's `secret:use` grants by a plain name once per run and sends them with it;
 * the worker answers with them (no hop), and forwards everything else to the main thread, which
 * refuses, audits and answers exactly as before. The value never reaches the guest (only the MAC),
 * the call record, the run's log or its complete record. Real workers, the host-abi guest.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { cryptoWorker } from '../../../src/wasm/host/crypto.ts';
import { createHostDispatch } from '../../../src/wasm/host/index.ts';
import { FORWARD, HostCallError } from '../../../src/wasm/host/types.ts';
import { resolveWorkerKeys, workerKeysOf } from '../../../src/wasm/host/worker-keys.ts';
import { WasmRuntime, type WasmRunResult } from '../../../src/wasm/runtime/index.ts';
import { perm, testSession } from '../../helpers/host-session.ts';

const abi = new Uint8Array(readFileSync(new URL('../../../fixtures/wasm/host-abi/host-abi.wasm', import.meta.url)));
const blobs = new FsBlobStore('/nonexistent-not-used');
const HMAC_VALUE = `hmac-secret-${randomBytes(8).toString('hex')}`;
const AES_HEX = randomBytes(32).toString('hex');
const variables: Record<string, unknown> = { HMAC_KEY: HMAC_VALUE, AES_KEY: AES_HEX, EMPTY_KEY: '', NUM_KEY: 42, OTHER_KEY: 'other-value' };
const mac = (key: string, data: string) => createHmac('sha256', key).update(data).digest('hex');

const rt = new WasmRuntime({ poolSize: 1 });
after(() => rt.close());

function output(r: WasmRunResult): any {
  if (!r.ok) assert.fail(`the run failed: ${r.error.code}: ${r.error.message}`);
  return r.output;
}

describe('worker keys: what the main thread resolves', () => {
  it('only secret:use patterns that are plain names, granted, naming non-empty text', () => {
    const s = testSession({
      blobs,
      variables,
      permissions: [
        perm('secret:use', 'HMAC_KEY'),
        perm('secret:use', 'AES_KEY'),
        perm('secret:use', 'HMAC_KEY'), // twice: once
        perm('secret:use', 'OTHER_*'), // a glob: not resolved here (the main thread serves it)
        perm('secret:use', 'EMPTY_KEY'),
        perm('secret:use', 'NUM_KEY'),
        perm('secret:use', 'MISSING_KEY'),
        perm('secret:use', null), // any secret: none resolved ahead
        perm('http:read', 'OTHER_KEY'), // another type names nothing
      ],
    });
    const read: string[] = [];
    const variable = s.variable;
    s.variable = (name) => {
      read.push(name);
      return variable(name);
    };
    assert.deepEqual({ ...resolveWorkerKeys(s) }, { HMAC_KEY: HMAC_VALUE, AES_KEY: AES_HEX });
    assert.deepEqual(read.sort(), ['AES_KEY', 'EMPTY_KEY', 'HMAC_KEY', 'MISSING_KEY', 'NUM_KEY'], 'only names the module was granted are read');
    assert.equal(resolveWorkerKeys(testSession({ blobs, variables, permissions: [perm('secret:use', '*')] })), undefined);
    assert.equal(resolveWorkerKeys(testSession({ blobs, variables, permissions: [] })), undefined);
  });

  it('a dispatch made for a session carries its keys; another function carries none', () => {
    const d = createHostDispatch(testSession({ blobs, variables, permissions: [perm('secret:use', 'HMAC_KEY')] }));
    assert.deepEqual({ ...workerKeysOf(d) }, { HMAC_KEY: HMAC_VALUE });
    assert.equal(
      workerKeysOf(async () => ({ response: {}, target: null, outcome: 'ok' })),
      undefined,
    );
    assert.equal(workerKeysOf(undefined), undefined);
  });

  it('the worker half serves a keyed op with a run key and forwards any other name', () => {
    const keys = { HMAC_KEY: HMAC_VALUE, AES_KEY: AES_HEX };
    const a = cryptoWorker.serve({ op: 'hmac_sha256', key_secret: 'HMAC_KEY', data: 'x' }, keys) as any;
    assert.equal(a.hex, mac(HMAC_VALUE, 'x'));
    assert.equal(a.base64, Buffer.from(a.hex, 'hex').toString('base64'));
    assert.equal(cryptoWorker.serve({ op: 'hmac_sha256', key_secret: 'OTHER_KEY', data: 'x' }, keys), FORWARD);
    assert.equal(cryptoWorker.serve({ op: 'hmac_sha256', key_secret: 'toString', data: 'x' }, keys), FORWARD, 'own names only');
    assert.equal(cryptoWorker.serve({ op: 'hmac_sha256', data: 'x' }, keys), FORWARD, 'no name: the main thread says why');
    // AES with a worker key: a round trip, and a malformed request is bad_request here too.
    const enc = cryptoWorker.serve({ op: 'aes_256_gcm_encrypt', key_secret: 'AES_KEY', data: 'plain' }, keys) as any;
    const dec = cryptoWorker.serve({ op: 'aes_256_gcm_decrypt', key_secret: 'AES_KEY', ...enc }, keys) as any;
    assert.deepEqual(dec, { data: 'plain', encoding: 'utf8' });
    const c = createCipheriv('aes-256-gcm', Buffer.from(AES_HEX, 'hex'), Buffer.from(enc.iv_base64, 'base64'));
    assert.equal(Buffer.concat([c.update('plain'), c.final()]).toString('base64'), enc.ciphertext_base64);
    assert.throws(
      () => cryptoWorker.serve({ op: 'aes_256_gcm_decrypt', key_secret: 'AES_KEY' }, keys),
      (e: unknown) => e instanceof HostCallError && e.code === 'bad_request' && !e.message.includes(AES_HEX),
    );
  });
});

describe('worker keys: through a real worker', () => {
  const session = () =>
    testSession({ blobs, variables, permissions: [perm('secret:use', 'HMAC_KEY'), perm('secret:use', 'AES_KEY'), perm('secret:use', 'OTHER_*')] });
  const hmac = (key_secret: string, data: string, host = createHostDispatch(session())) =>
    rt.run({ bytes: abi, functionName: 'crypto', input: { op: 'hmac_sha256', key_secret, data }, host, record: true });

  it('hmac with a key granted by name is served in the worker; the value is nowhere in the result', async () => {
    const r = await hmac('HMAC_KEY', '{"id":1}');
    assert.equal(output(r).hex, mac(HMAC_VALUE, '{"id":1}'));
    assert.equal(r.hostCalls.length, 1);
    assert.equal(r.hostCalls[0].served, 'worker');
    assert.equal(r.hostCalls[0].target, 'hmac_sha256 HMAC_KEY');
    assert.equal(r.hostCalls[0].outcome, 'ok');
    // The call record, the logs, the complete record (request and answer texts), the output.
    assert.ok(!JSON.stringify(r).includes(HMAC_VALUE), 'the secret value appears in the run result');
    assert.ok(r.record && JSON.stringify(r.record.host_calls).includes('HMAC_KEY'), 'the complete record names the key');
  });

  it('a key granted by a glob is served on the main thread, with the same answer', async () => {
    const r = await hmac('OTHER_KEY', 'abc');
    assert.equal(output(r).hex, mac('other-value', 'abc'));
    assert.equal(r.hostCalls[0].served, 'host');
    assert.ok(!JSON.stringify(r).includes('other-value'));
  });

  it('a name the module was not granted is refused on the main thread and reported; a missing one is not_found', async () => {
    const s = session();
    const denied = await hmac('NUM_KEY', 'x', createHostDispatch(s));
    assert.equal(output(denied).error.code, 'permission_denied');
    assert.equal(denied.hostCalls[0].served, 'host');
    assert.equal(denied.hostCalls[0].permission, 'secret:use');
    assert.deepEqual(
      s.denials.map((d) => [d.function, d.permission, d.resource]),
      [['crypto', 'secret:use', 'NUM_KEY']],
    );
    assert.ok(denied.logs.some((l) => /refused: permission_denied/.test(l.message)));
    const missing = await rt.run({
      bytes: abi,
      functionName: 'crypto',
      input: { op: 'hmac_sha256', key_secret: 'GONE_KEY', data: 'x' },
      host: createHostDispatch(testSession({ blobs, variables, permissions: [perm('secret:use', 'GONE_KEY')] })),
    });
    assert.equal(output(missing).error.code, 'not_found');
    assert.equal(missing.hostCalls[0].served, 'host');
  });

  it('a replay sends no keys and answers from the record', async () => {
    const r = await hmac('HMAC_KEY', 'replayed');
    assert.ok(r.record);
    const again = await rt.run({
      bytes: abi,
      functionName: 'crypto',
      input: { op: 'hmac_sha256', key_secret: 'HMAC_KEY', data: 'replayed' },
      replay: { host_calls: r.record.host_calls, context_reads: r.record.context_reads, wasi: r.record.wasi, context_chars: r.record.contextChars },
    });
    assert.equal(output(again).hex, mac(HMAC_VALUE, 'replayed'));
    assert.equal(again.replay?.divergence, null);
  });
});
