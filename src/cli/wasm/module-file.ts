/** Reading a module file and signing its bytes: shared by sign and upload. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { signModuleBytes } from '../../modules/signatures.ts';
import { CliError } from './errors.ts';

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export function readModule(path: string): Buffer {
  const file = resolve(path);
  if (!existsSync(file)) throw new CliError(`${path}: no such file`);
  return readFileSync(file);
}

export function signWith(bytes: Buffer, keyPath: string): string {
  let pem: string;
  try {
    pem = readFileSync(resolve(keyPath), 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the private key ${keyPath}: ${(err as Error).message}`);
  }
  try {
    return signModuleBytes(bytes, pem);
  } catch (err) {
    throw new CliError(`${keyPath} is not a usable Ed25519 private key (wasm-cli keygen makes one): ${(err as Error).message}`);
  }
}
