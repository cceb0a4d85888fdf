/**
 * Encryption of secrets at rest (secret variables, webhook secrets): AES-256-GCM with a random
 * 96-bit IV per value. Stored form: `v1:<iv base64>:<tag base64>:<ciphertext base64>`.
 *
 * The key comes from VECRON_SECRET_KEY (stretched to 32 bytes with HKDF-SHA256) or, when that is
 * unset, from `$VECRON_DATA_DIR/secret.key` (32 random bytes, base64), created on first use.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { VecronError } from '../errors.ts';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_SALT = 'vecron-secrets-v1';
const HKDF_INFO = 'vecron secret encryption key';
export const SECRET_KEY_FILE = 'secret.key';

function deriveKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), HKDF_SALT, HKDF_INFO, KEY_BYTES));
}

function parseKeyFile(path: string, text: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== KEY_BYTES) {
    throw new VecronError(
      'invalid_config',
      `the secret key file ${path} is invalid: it must hold ${KEY_BYTES} bytes in base64 (restore the original file, or set VECRON_SECRET_KEY)`,
    );
  }
  return key;
}

function readKeyFile(path: string): Buffer | null {
  try {
    return parseKeyFile(path, readFileSync(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The 32-byte key that encrypts secrets. With `config.secretKey` the key is derived from it;
 * otherwise it is read from `${config.dataDir}/secret.key`, which is created (mode 0600) when
 * missing. Creation is atomic and exclusive: processes starting together end up with one key.
 */
export function loadSecretKey(config: Pick<Config, 'secretKey' | 'dataDir'>): Buffer {
  if (config.secretKey) return deriveKey(config.secretKey);
  const path = join(config.dataDir, SECRET_KEY_FILE);
  const existing = readKeyFile(path);
  if (existing) return existing;

  mkdirSync(config.dataDir, { recursive: true });
  const key = randomBytes(KEY_BYTES);
  const content = key.toString('base64') + '\n';
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  try {
    // link() publishes the complete file under its final name, and fails if another process won.
    linkSync(tmp, path);
    return key;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return readKeyFile(path) ?? parseKeyFile(path, '');
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'ENOSYS') throw err;
    // File systems without hard links: exclusive create (a reader may briefly see it half written).
    try {
      writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
      return key;
    } catch (err2) {
      if ((err2 as NodeJS.ErrnoException).code === 'EEXIST') return readKeyFile(path) ?? parseKeyFile(path, '');
      throw err2;
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
  }
}

const keyCache = new WeakMap<object, Buffer>();

/** loadSecretKey, computed once per config object. */
export function secretKeyFor(config: Config): Buffer {
  let key = keyCache.get(config);
  if (!key) {
    key = loadSecretKey(config);
    keyCache.set(config, key);
  }
  return key;
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_BYTES) throw new VecronError('internal', `secret key must be ${KEY_BYTES} bytes, got ${key.length}`);
}

/** Encrypts `plaintext`; the result is `v1:<iv>:<tag>:<ciphertext>` (base64 parts). */
export function encryptSecret(key: Buffer, plaintext: string): string {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `v1:${iv.toString('base64')}:${tag.toString('base64')}:${ct.toString('base64')}`;
}

/** Decrypts what encryptSecret produced; a different key (or tampered data) is a clear error. */
export function decryptSecret(key: Buffer, stored: string): string {
  checkKey(key);
  const parts = typeof stored === 'string' ? stored.split(':') : [];
  if (parts.length !== 4 || parts[0] !== 'v1') {
    throw new VecronError('internal', 'cannot decrypt secret: the stored value is not in the v1:<iv>:<tag>:<ciphertext> format');
  }
  const iv = Buffer.from(parts[1], 'base64');
  const tag = Buffer.from(parts[2], 'base64');
  const ct = Buffer.from(parts[3], 'base64');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new VecronError('internal', 'cannot decrypt secret: the stored value is malformed');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  } catch {
    throw new VecronError('internal', 'cannot decrypt secret: the key differs from the one used to encrypt it (check VECRON_SECRET_KEY)');
  }
}
