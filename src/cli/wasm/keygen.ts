/** `wasm-cli keygen`: an Ed25519 key pair for signing modules. */
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { generateSigningKeyPair } from '../../modules/signatures.ts';
import { CliError } from './errors.ts';

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('create an Ed25519 signing key pair: <name>.key (private, keep it secret) and <name>.pub')
    .option('-o, --out <name>', 'path prefix of the two files', 'vecron-signing')
    .option('--force', 'overwrite existing files')
    .action((opts: { out: string; force?: boolean }) => {
      const priv = resolve(`${opts.out}.key`);
      const pub = resolve(`${opts.out}.pub`);
      for (const f of [priv, pub]) if (existsSync(f) && !opts.force) throw new CliError(`${f} exists; choose another --out or pass --force`);
      const kp = generateSigningKeyPair();
      writeFileSync(priv, kp.privateKeyPem, { mode: 0o600 });
      writeFileSync(pub, kp.publicKeyPem);
      process.stdout.write(
        `private key: ${priv} (mode 600; never upload it)\npublic key:  ${pub}\npublic key (hex): ${kp.publicKeyHex}\n\n` +
          `An admin registers it once:\n  curl -X POST $VECRON_URL/api/v1/wasm/keys -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\\n` +
          `    -d '{"author": "<your author name>", "public_key": "${kp.publicKeyHex}"}'\n`,
      );
    });
}
