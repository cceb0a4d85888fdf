/**
 * crypto `{"op", ...}` (docs/abi.md, "crypto"). Ops without a key (sha256, sha512, ed25519_verify,
 * random_bytes, uuid) are served inside the worker (`cryptoWorker`, no I/O, no permission). Ops that
 * name a key (`key_secret`: hmac_sha256, aes_256_gcm_encrypt, aes_256_gcm_decrypt) are served in the
 * worker too when the key is one of the run's worker keys (granted by its plain name, resolved and
 * checked on the main thread once per run: worker-keys.ts), otherwise forwarded to the main thread
 * (`cryptoHost`), which checks `secret:use` on the name and reads the secret. Neither puts the
 * secret in an answer, an error message or the call record.
 *
 * Key formats: HMAC-SHA256 keys are the secret's UTF-8 bytes; AES-256 keys are 32 bytes written as
 * 64 hex digits or as base64. Ed25519 public keys come in the request (32 bytes, hex or base64).
 */
import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  createSecretKey,
  hash,
  randomBytes,
  randomUUID,
  verify,
} from 'node:crypto';
import { FORWARD, HostCallError, type HostFunction, type HostResponse, type WorkerHostFunction } from './types.ts';

export const CRYPTO_OPS = ['sha256', 'sha512', 'hmac_sha256', 'aes_256_gcm_encrypt', 'aes_256_gcm_decrypt', 'ed25519_verify', 'random_bytes', 'uuid'] as const;
type Op = (typeof CRYPTO_OPS)[number];
const KEYED = new Set<Op>(['hmac_sha256', 'aes_256_gcm_encrypt', 'aes_256_gcm_decrypt']);
/** Most bytes one random_bytes call returns. */
export const MAX_RANDOM_BYTES = 65_536;

/** `crypto.hash` (Node 20.12+); older Nodes use a Hash object. */
const oneShot = typeof hash === 'function';
const bad = (message: string) => new HostCallError('bad_request', message);
const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function opOf(request: Record<string, unknown>): Op {
  const op = request.op;
  if (typeof op !== 'string' || !(CRYPTO_OPS as readonly string[]).includes(op)) {
    throw bad(`op must be one of ${CRYPTO_OPS.join(', ')}; got ${JSON.stringify(op)?.slice(0, 60)}`);
  }
  return op as Op;
}

function base64Field(request: Record<string, unknown>, field: string, bytes?: number): Buffer | undefined {
  const v = request[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !BASE64.test(v)) throw bad(`${field} must be base64 (standard alphabet, padded)`);
  const b = Buffer.from(v, 'base64');
  if (bytes !== undefined && b.length !== bytes) throw bad(`${field} must be ${bytes} bytes; got ${b.length}`);
  return b;
}

/**
 * `<name>` (UTF-8 text) or `<name>_base64`, exactly one; required unless `optional`. Text comes back
 * as the string itself: hashing and MACs take it as UTF-8 without a Buffer made of it first (a copy
 * that cost as much as the digest of 1 KB).
 */
function dataOf(request: Record<string, unknown>, name: string, optional = false): Buffer | string | undefined {
  const text = request[name];
  const b64 = base64Field(request, `${name}_base64`);
  if (text !== undefined && text !== null) {
    if (b64) throw bad(`give either ${name} or ${name}_base64, not both`);
    if (typeof text !== 'string') throw bad(`${name} must be a string (UTF-8 text); use ${name}_base64 for bytes`);
    return text;
  }
  if (b64) return b64;
  if (optional) return undefined;
  throw bad(`${name} (UTF-8 text) or ${name}_base64 is required`);
}

/** As dataOf, as bytes (ciphers and signatures want a Buffer). */
function bytesOf(request: Record<string, unknown>, name: string, optional = false): Buffer | undefined {
  const d = dataOf(request, name, optional);
  return typeof d === 'string' ? Buffer.from(d, 'utf8') : d;
}

/** 32 bytes written as hex (64 digits) or base64 (ed25519 public keys). */
function key32(v: unknown, field: string): Buffer {
  if (typeof v === 'string' && v.length === 64 && HEX.test(v)) return Buffer.from(v, 'hex');
  if (typeof v === 'string' && BASE64.test(v)) {
    const b = Buffer.from(v, 'base64');
    if (b.length === 32) return b;
  }
  throw bad(`${field} must be 32 bytes as 64 hex digits or base64`);
}

/** A digest that `hash` wrote as hex (in one step, no Hash object), with its base64 too. */
const digestHex = (hex: string): HostResponse => ({ hex, base64: Buffer.from(hex, 'hex').toString('base64') });

/** The answer to a keyless op. */
function serveKeyless(op: Op, request: Record<string, unknown>): HostResponse {
  switch (op) {
    case 'sha256':
    case 'sha512':
      // One-shot `hash` (no Hash object), the text hashed as UTF-8 without a copy, hex straight out.
      return digestHex(oneShot ? hash(op, dataOf(request, 'data')!, 'hex') : createHash(op).update(dataOf(request, 'data')!).digest('hex'));
    case 'random_bytes': {
      const n = request.n;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_RANDOM_BYTES) throw bad(`n must be an integer from 1 to ${MAX_RANDOM_BYTES}`);
      return { base64: randomBytes(n).toString('base64') };
    }
    case 'uuid':
      return { uuid: randomUUID() };
    case 'ed25519_verify': {
      const publicKey = key32(request.public_key, 'public_key');
      const sig = request.signature;
      let signature: Buffer | undefined;
      if (typeof sig === 'string' && sig.length === 128 && HEX.test(sig)) signature = Buffer.from(sig, 'hex');
      else if (typeof sig === 'string' && BASE64.test(sig)) signature = Buffer.from(sig, 'base64');
      if (signature?.length !== 64) throw bad('signature must be 64 bytes as 128 hex digits or base64');
      const data = bytesOf(request, 'data')!;
      let key;
      try {
        key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') }, format: 'jwk' });
      } catch {
        throw bad('public_key is not an Ed25519 public key');
      }
      return { valid: verify(null, data, key, signature) };
    }
    default:
      throw new Error(`${op} needs a key`);
  }
}

/** The AES-256 key of a secret: 64 hex digits or base64 of 32 bytes. The message never shows the value. */
function aesKey(secret: string, name: string): Buffer {
  const s = secret.trim();
  if (s.length === 64 && HEX.test(s)) return Buffer.from(s, 'hex');
  if (BASE64.test(s)) {
    const b = Buffer.from(s, 'base64');
    if (b.length === 32) return b;
  }
  throw bad(`key_secret '${name}' is not an AES-256 key: its value must be 32 bytes as 64 hex digits or base64`);
}

/** The answer to a keyed op, given the secret's value (or, for HMAC, its key object). */
function serveKeyed(op: Op, request: Record<string, unknown>, secret: string, name: string, hmacKey?: KeyObject): HostResponse {
  if (op === 'hmac_sha256')
    return digestHex(
      createHmac('sha256', hmacKey ?? secret)
        .update(dataOf(request, 'data')!)
        .digest('hex'),
    );
  const key = aesKey(secret, name);
  const aad = bytesOf(request, 'aad', true);
  if (op === 'aes_256_gcm_encrypt') {
    const data = bytesOf(request, 'data')!;
    const iv = base64Field(request, 'iv_base64', 12) ?? randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    if (aad) cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
    return { ciphertext_base64: ciphertext.toString('base64'), iv_base64: iv.toString('base64'), tag_base64: cipher.getAuthTag().toString('base64') };
  }
  const ciphertext = base64Field(request, 'ciphertext_base64');
  if (!ciphertext) throw bad('ciphertext_base64 is required');
  const iv = base64Field(request, 'iv_base64', 12);
  if (!iv) throw bad('iv_base64 (12 bytes) is required');
  const tag = base64Field(request, 'tag_base64', 16);
  if (!tag) throw bad('tag_base64 (16 bytes) is required');
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  if (aad) decipher.setAAD(aad);
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw bad('tag_base64 does not authenticate the data: wrong key, iv, tag or aad, or the ciphertext was altered');
  }
  try {
    return { data: utf8.decode(plain), encoding: 'utf8' };
  } catch {
    return { data: plain.toString('base64'), encoding: 'base64' };
  }
}

/** The target the call record shows: the op, and the key's name for a keyed op. */
function targetOf(request: Record<string, unknown>): string | null {
  const op = typeof request.op === 'string' ? request.op.slice(0, 40) : null;
  if (op && typeof request.key_secret === 'string') return `${op} ${request.key_secret.slice(0, 100)}`;
  return op;
}

/**
 * HMAC keys made once per run and name (a run's keys object lives as long as the run): a module
 * that signs call after call does not pay for the key's preparation each time.
 */
const hmacKeys = new WeakMap<object, Map<string, KeyObject>>();
function hmacKeyOf(keys: Readonly<Record<string, string>>, name: string): KeyObject {
  let byName = hmacKeys.get(keys);
  if (byName === undefined) hmacKeys.set(keys, (byName = new Map()));
  let k = byName.get(name);
  if (k === undefined) byName.set(name, (k = createSecretKey(Buffer.from(keys[name], 'utf8'))));
  return k;
}

/**
 * In the worker: keyless ops, and keyed ops whose key is one of the run's worker keys (granted by
 * its plain name and resolved on the main thread, worker-keys.ts); any other keyed op goes to the
 * main thread, which checks `secret:use` (and audits a refusal) as before.
 */
export const cryptoWorker: WorkerHostFunction = {
  name: 'crypto',
  serve(request, keys) {
    const op = opOf(request);
    if (!KEYED.has(op)) return serveKeyless(op, request);
    const name = request.key_secret;
    if (keys === undefined || typeof name !== 'string' || !Object.hasOwn(keys, name)) return FORWARD;
    return serveKeyed(op, request, keys[name], name, op === 'hmac_sha256' ? hmacKeyOf(keys, name) : undefined);
  },
  target: targetOf,
};

/** On the main thread: every op (keyed ones reach only here), `secret:use` checked on the key's name. */
export const cryptoHost: HostFunction = {
  name: 'crypto',
  async call(request, ctx) {
    const op = opOf(request);
    const t = targetOf(request);
    if (t) ctx.target(t);
    if (!KEYED.has(op)) return serveKeyless(op, request);
    const name = request.key_secret;
    if (typeof name !== 'string' || name === '' || name.length > 200)
      throw bad(`key_secret must name the secret variable that holds the key (${op} takes no key inline)`);
    ctx.require('secret:use', name);
    const value = ctx.session.variable(name);
    if (value === undefined || value === null) throw new HostCallError('not_found', `key_secret: no variable '${name}'`);
    if (typeof value !== 'string' || value === '') throw bad(`key_secret '${name}' must be a non-empty text variable`);
    return serveKeyed(op, request, value, name);
  },
};
