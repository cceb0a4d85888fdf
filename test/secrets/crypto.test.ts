import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptSecret, encryptSecret, loadSecretKey, secretKeyFor } from '../../src/secrets/crypto.ts';
import { loadConfig } from '../../src/config/index.ts';
import { VecronError } from '../../src/errors.ts';

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vecron-crypto-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const WRONG_KEY = /cannot decrypt secret: the key differs from the one used to encrypt it \(check VECRON_SECRET_KEY\)$/;

describe('secret encryption', () => {
  it(
    'round-trips with AES-256-GCM in the v1:<iv>:<tag>:<ct> format, a fresh IV each time',
    withDir((dir) => {
      const key = loadSecretKey({ secretKey: null, dataDir: dir });
      const a = encryptSecret(key, 'p@ss wörd ✓');
      const b = encryptSecret(key, 'p@ss wörd ✓');
      assert.match(a, /^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
      assert.notEqual(a, b, 'random IV');
      assert.ok(!a.includes('p@ss'));
      assert.equal(decryptSecret(key, a), 'p@ss wörd ✓');
      assert.equal(decryptSecret(key, encryptSecret(key, '')), '');
      const [, iv, tag] = a.split(':');
      assert.equal(Buffer.from(iv, 'base64').length, 12);
      assert.equal(Buffer.from(tag, 'base64').length, 16);
    }),
  );

  it('fails clearly with another key or tampered data', () => {
    const k1 = loadSecretKey({ secretKey: 'a'.repeat(32), dataDir: '/nonexistent' });
    const k2 = loadSecretKey({ secretKey: 'b'.repeat(32), dataDir: '/nonexistent' });
    const enc = encryptSecret(k1, 'hunter22');
    assert.throws(
      () => decryptSecret(k2, enc),
      (err: unknown) => {
        assert.ok(err instanceof VecronError);
        assert.equal(err.code, 'internal');
        assert.match(err.message, WRONG_KEY);
        return true;
      },
    );
    const parts = enc.split(':');
    const ct = Buffer.from(parts[3], 'base64');
    ct[0] ^= 1;
    assert.throws(() => decryptSecret(k1, [parts[0], parts[1], parts[2], ct.toString('base64')].join(':')), WRONG_KEY);
    assert.throws(() => decryptSecret(k1, 'not-encrypted'), /not in the v1:<iv>:<tag>:<ciphertext> format/);
    assert.throws(() => decryptSecret(k1, 'v1:AAAA:BBBB:CCCC'), /malformed/);
  });

  it(
    'derives the key from VECRON_SECRET_KEY with HKDF (deterministic, 32 bytes, no file)',
    withDir((dir) => {
      const k1 = loadSecretKey({ secretKey: 'x'.repeat(40), dataDir: dir });
      const k2 = loadSecretKey({ secretKey: 'x'.repeat(40), dataDir: dir });
      assert.equal(k1.length, 32);
      assert.deepEqual(k1, k2);
      assert.notDeepEqual(k1, Buffer.from('x'.repeat(32)));
      assert.deepEqual(readdirSync(dir), [], 'no key file written');
    }),
  );

  it(
    'creates $VECRON_DATA_DIR/secret.key once (mode 0600) and reuses it',
    withDir((dir) => {
      const dataDir = join(dir, 'data', 'nested');
      const k1 = loadSecretKey({ secretKey: null, dataDir });
      const file = join(dataDir, 'secret.key');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'), k1);
      const k2 = loadSecretKey({ secretKey: null, dataDir });
      assert.deepEqual(k2, k1);
      assert.deepEqual(readdirSync(dataDir), ['secret.key'], 'no temporary files left');
      // a value encrypted with the file key decrypts after a "restart"
      const enc = encryptSecret(k1, 'persisted');
      assert.equal(decryptSecret(loadSecretKey({ secretKey: null, dataDir }), enc), 'persisted');
    }),
  );

  it(
    'rejects a damaged key file instead of silently replacing it',
    withDir((dir) => {
      writeFileSync(join(dir, 'secret.key'), 'too-short');
      assert.throws(() => loadSecretKey({ secretKey: null, dataDir: dir }), /secret key file .* is invalid/);
    }),
  );

  it(
    'caches the key per config object',
    withDir((dir) => {
      const config = loadConfig({ VECRON_DATA_DIR: dir });
      const k = secretKeyFor(config);
      rmSync(join(dir, 'secret.key'));
      assert.equal(secretKeyFor(config), k);
      const other = loadConfig({ VECRON_DATA_DIR: dir });
      assert.notDeepEqual(secretKeyFor(other), k, 'a new config reads (here: creates) the file again');
    }),
  );
});
