/**
 * Ed25519 signatures of module bytes. The author signs the exact bytes of the `.wasm` file with
 * their private key (`wasm-cli sign`); the upload carries the 64-byte signature as 128 hex digits;
 * the registry verifies it against the author's registered, unrevoked public keys.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { VecronError } from '../errors.ts';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const HEX_SIG = /^[0-9a-fA-F]{128}$/;

/** Reads a public key given as 64 hex digits (the raw 32 bytes) or a PEM `PUBLIC KEY`; returns the raw key as hex. */
export function parsePublicKey(input: string): string {
  const s = input.trim();
  if (HEX_KEY.test(s)) {
    publicKeyObject(s.toLowerCase()); // rejects bytes that are not a valid key encoding
    return s.toLowerCase();
  }
  if (s.startsWith('-----BEGIN PUBLIC KEY-----')) {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: s, format: 'pem' });
    } catch (err) {
      throw new VecronError('validation_failed', `public_key: not a readable PEM public key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new VecronError('validation_failed', `public_key: an Ed25519 key is required, got ${key.asymmetricKeyType}`);
    }
    return Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url').toString('hex');
  }
  throw new VecronError(
    'validation_failed',
    'public_key: give the Ed25519 public key as 64 hex digits (32 bytes) or as a PEM "PUBLIC KEY" block (wasm-cli keygen prints both)',
  );
}

function publicKeyObject(hex: string): KeyObject {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(hex, 'hex').toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw new VecronError('validation_failed', `public_key: not a valid Ed25519 public key (${(err as Error).message})`);
  }
}

/** Checks the shape of a signature from an upload; returns its bytes. */
export function parseSignature(hex: string): Buffer {
  const s = hex.trim();
  if (!HEX_SIG.test(s)) {
    throw new VecronError('invalid_signature', `signature must be the Ed25519 signature of the module bytes as 128 hex digits; got ${s.length} characters`);
  }
  return Buffer.from(s, 'hex');
}

/** The key (of those given) whose signature over `bytes` this is, or null when none verifies it. */
export function findSigningKey<K extends { public_key: string }>(bytes: Uint8Array, signature: Buffer, keys: readonly K[]): K | null {
  for (const k of keys) {
    if (verify(null, bytes, publicKeyObject(k.public_key), signature)) return k;
  }
  return null;
}

export interface GeneratedKeyPair {
  /** PKCS#8 PEM of the private key: keep it secret. */
  privateKeyPem: string;
  publicKeyPem: string;
  /** Raw public key, 64 hex digits: what the registry stores. */
  publicKeyHex: string;
}

export function generateSigningKeyPair(): GeneratedKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicKeyHex: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('hex'),
  };
}

/** Signs module bytes with a PEM private key; returns the signature as 128 hex digits. */
export function signModuleBytes(bytes: Uint8Array, privateKeyPem: string): string {
  const key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`an Ed25519 private key is required, got ${key.asymmetricKeyType}`);
  return sign(null, bytes, key).toString('hex');
}
