/**
 * The crypto host function: digests against known vectors, keyed ops through a named secret under
 * `secret:use` (denied, missing, malformed keys; the key never in an answer), AES-256-GCM round
 * trips and tampering, Ed25519 verification, random bytes and uuids, and which ops the worker half
 * serves itself and which it forwards to the main thread.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { FsBlobStore } from '../../../src/storage/fs-store.ts';
import { cryptoWorker } from '../../../src/wasm/host/crypto.ts';
import { FORWARD, HostCallError } from '../../../src/wasm/host/types.ts';
import { WORKER_HOST_FUNCTIONS } from '../../../src/wasm/host/worker-functions.ts';
import { caller, perm, testSession } from '../../helpers/host-session.ts';

const blobs = new FsBlobStore('/nonexistent-not-used');
const AES_HEX = 'a'.repeat(64);
const AES_B64 = randomBytes(32).toString('base64');
const variables = { HMAC_KEY: 'webhook-secret', AES_KEY: AES_HEX, AES_KEY_B64: AES_B64, SHORT_KEY: 'abcd', OTHER: 'x' };
const granted = () => testSession({ blobs, permissions: [perm('secret:use', '*_KEY*')], variables });
const err = (a: { response: any }) => a.response.error as { code: string; message: string };

describe('crypto: digests', () => {
  it('sha256 and sha512 of text and of base64 bytes match the FIPS 180 vectors', async () => {
    const call = caller(granted());
    const a = await call('crypto', { op: 'sha256', data: 'abc' });
    assert.deepEqual(a.response, {
      hex: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      base64: Buffer.from('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'hex').toString('base64'),
    });
    assert.equal(a.target, 'sha256');
    const b = await call('crypto', { op: 'sha512', data_base64: Buffer.from('abc').toString('base64') });
    assert.match((b.response as any).hex, /^ddaf35a193617aba/);
    // The worker half answers the same without the bridge.
    assert.deepEqual(cryptoWorker.serve({ op: 'sha256', data: 'abc' }), a.response);
  });

  it('bad input is bad_request naming the field', async () => {
    const call = caller(granted());
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ op: 'md5', data: 'x' }, /op must be one of sha256, sha512/],
      [{ data: 'x' }, /op must be one of/],
      [{ op: 'sha256' }, /data \(UTF-8 text\) or data_base64 is required/],
      [{ op: 'sha256', data: 'x', data_base64: 'eA==' }, /either data or data_base64/],
      [{ op: 'sha256', data: 5 }, /data must be a string/],
      [{ op: 'sha256', data_base64: '***' }, /data_base64 must be base64/],
      [{ op: 'random_bytes', n: 0 }, /n must be an integer from 1 to 65536/],
      [{ op: 'random_bytes', n: 65537 }, /n must be an integer/],
      [{ op: 'random_bytes', n: 1.5 }, /n must be an integer/],
      [{ op: 'ed25519_verify', public_key: 'zz', signature: 'aa', data: 'x' }, /public_key must be 32 bytes/],
      [{ op: 'ed25519_verify', public_key: 'a'.repeat(64), signature: 'aa', data: 'x' }, /signature must be 64 bytes/],
    ];
    for (const [req, message] of cases) {
      const a = await call('crypto', req);
      assert.equal(a.outcome, 'bad_request', JSON.stringify(req));
      assert.match(err(a).message, message, JSON.stringify(req));
      assert.throws(
        () => cryptoWorker.serve(req),
        (e: unknown) => e instanceof HostCallError && e.code === 'bad_request' && message.test(e.message),
      );
    }
  });
});

describe('crypto: keyed ops through secrets', () => {
  it('hmac_sha256 keys with the secret UTF-8 bytes; the key is not in the answer', async () => {
    const call = caller(granted());
    const a = await call('crypto', { op: 'hmac_sha256', key_secret: 'HMAC_KEY', data: '{"id":1}' });
    assert.equal(a.outcome, 'ok');
    assert.equal((a.response as any).hex, createHmac('sha256', 'webhook-secret').update('{"id":1}').digest('hex'));
    assert.equal(a.target, 'hmac_sha256 HMAC_KEY');
    assert.doesNotMatch(JSON.stringify(a), /webhook-secret/);
  });

  it('the worker half forwards keyed ops to the main thread and answers the rest itself', () => {
    assert.equal(cryptoWorker.serve({ op: 'hmac_sha256', key_secret: 'HMAC_KEY', data: 'x' }), FORWARD);
    assert.equal(cryptoWorker.serve({ op: 'aes_256_gcm_encrypt', key_secret: 'AES_KEY', data: 'x' }), FORWARD);
    assert.equal(cryptoWorker.serve({ op: 'aes_256_gcm_decrypt', key_secret: 'AES_KEY' }), FORWARD);
    assert.match((cryptoWorker.serve({ op: 'uuid' }) as any).uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(Buffer.from((cryptoWorker.serve({ op: 'random_bytes', n: 32 }) as any).base64, 'base64').length, 32);
    assert.notEqual((cryptoWorker.serve({ op: 'uuid' }) as any).uuid, (cryptoWorker.serve({ op: 'uuid' }) as any).uuid);
    assert.equal(cryptoWorker.target({ op: 'hmac_sha256', key_secret: 'K' }), 'hmac_sha256 K');
    assert.deepEqual(
      WORKER_HOST_FUNCTIONS.map((f) => f.name),
      ['time', 'crypto'],
    );
  });

  it('a secret no secret:use pattern names is permission_denied and reported; its value is never read', async () => {
    const s = granted();
    let read = 0;
    s.variable = (name) => {
      read++;
      return (variables as any)[name];
    };
    const a = await caller(s)('crypto', { op: 'hmac_sha256', key_secret: 'OTHER', data: 'x' });
    assert.equal(a.outcome, 'permission_denied');
    assert.equal(a.permission, 'secret:use');
    assert.match(err(a).message, /secret:use for 'OTHER'/);
    assert.deepEqual(s.denials, [{ function: 'crypto', permission: 'secret:use', resource: 'OTHER', reason: 'no resource pattern of the module matches' }]);
    assert.equal(read, 0);
    const none = testSession({ blobs, permissions: [], variables });
    const b = await caller(none)('crypto', { op: 'aes_256_gcm_encrypt', key_secret: 'AES_KEY', data: 'x' });
    assert.equal(b.outcome, 'permission_denied');
    assert.match(err(b).message, /the module has no such permission/);
  });

  it('a missing secret is not_found, a malformed key bad_request, neither shows a value', async () => {
    const call = caller(granted());
    const missing = await call('crypto', { op: 'hmac_sha256', key_secret: 'NO_KEY', data: 'x' });
    assert.equal(missing.outcome, 'not_found');
    const short = await call('crypto', { op: 'aes_256_gcm_encrypt', key_secret: 'SHORT_KEY', data: 'x' });
    assert.equal(short.outcome, 'bad_request');
    assert.match(err(short).message, /key_secret 'SHORT_KEY' is not an AES-256 key: its value must be 32 bytes as 64 hex digits or base64/);
    assert.doesNotMatch(err(short).message, /abcd/);
    const noName = await call('crypto', { op: 'hmac_sha256', data: 'x' });
    assert.match(err(noName).message, /key_secret must name the secret variable/);
  });

  it('aes_256_gcm encrypts and decrypts with aad, with a random or a given iv; tampering is refused', async () => {
    const call = caller(granted());
    for (const key_secret of ['AES_KEY', 'AES_KEY_B64']) {
      const e = await call('crypto', { op: 'aes_256_gcm_encrypt', key_secret, data: 'số tài khoản 0123', aad: 'customer-42' });
      assert.equal(e.outcome, 'ok', JSON.stringify(e.response));
      const { ciphertext_base64, iv_base64, tag_base64 } = e.response as Record<string, string>;
      assert.equal(Buffer.from(iv_base64, 'base64').length, 12);
      assert.equal(Buffer.from(tag_base64, 'base64').length, 16);
      const d = await call('crypto', { op: 'aes_256_gcm_decrypt', key_secret, ciphertext_base64, iv_base64, tag_base64, aad: 'customer-42' });
      assert.deepEqual(d.response, { data: 'số tài khoản 0123', encoding: 'utf8' });
      const wrongAad = await call('crypto', { op: 'aes_256_gcm_decrypt', key_secret, ciphertext_base64, iv_base64, tag_base64, aad: 'customer-43' });
      assert.equal(wrongAad.outcome, 'bad_request');
      assert.match(err(wrongAad).message, /does not authenticate/);
      const flipped = Buffer.from(ciphertext_base64, 'base64');
      flipped[0] ^= 1;
      const tampered = await call('crypto', {
        op: 'aes_256_gcm_decrypt',
        key_secret,
        ciphertext_base64: flipped.toString('base64'),
        iv_base64,
        tag_base64,
        aad: 'customer-42',
      });
      assert.equal(tampered.outcome, 'bad_request');
    }
    const iv = Buffer.alloc(12, 7).toString('base64');
    const e1 = await call('crypto', {
      op: 'aes_256_gcm_encrypt',
      key_secret: 'AES_KEY',
      data_base64: Buffer.from([0xff, 0]).toString('base64'),
      iv_base64: iv,
    });
    const e2 = await call('crypto', {
      op: 'aes_256_gcm_encrypt',
      key_secret: 'AES_KEY',
      data_base64: Buffer.from([0xff, 0]).toString('base64'),
      iv_base64: iv,
    });
    assert.deepEqual(e1.response, e2.response, 'a given iv makes it deterministic');
    assert.equal((e1.response as any).iv_base64, iv);
    const d = await call('crypto', { op: 'aes_256_gcm_decrypt', key_secret: 'AES_KEY', ...(e1.response as object) });
    assert.deepEqual(d.response, { data: Buffer.from([0xff, 0]).toString('base64'), encoding: 'base64' });
    const badIv = await call('crypto', { op: 'aes_256_gcm_encrypt', key_secret: 'AES_KEY', data: 'x', iv_base64: Buffer.alloc(8).toString('base64') });
    assert.match(err(badIv).message, /iv_base64 must be 12 bytes; got 8/);
    const noTag = await call('crypto', { op: 'aes_256_gcm_decrypt', key_secret: 'AES_KEY', ciphertext_base64: 'AA==', iv_base64: iv });
    assert.match(err(noTag).message, /tag_base64 \(16 bytes\) is required/);
  });
});

describe('crypto: ed25519_verify', () => {
  it('verifies a real signature with the public key as hex or base64, and rejects a wrong one', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const sig = sign(null, Buffer.from('payload'), privateKey);
    const call = caller(granted());
    const ok = await call('crypto', { op: 'ed25519_verify', public_key: raw.toString('hex'), signature: sig.toString('hex'), data: 'payload' });
    assert.deepEqual(ok.response, { valid: true });
    const ok64 = await call('crypto', { op: 'ed25519_verify', public_key: raw.toString('base64'), signature: sig.toString('base64'), data: 'payload' });
    assert.deepEqual(ok64.response, { valid: true });
    const wrong = await call('crypto', { op: 'ed25519_verify', public_key: raw.toString('hex'), signature: sig.toString('hex'), data: 'payloaD' });
    assert.deepEqual(wrong.response, { valid: false });
  });
});
