/** `wasm-cli sign`: the hex signature of a module, as the upload expects it. */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readModule, signWith } from './module-file.ts';

export function registerSign(program: Command): void {
  program
    .command('sign')
    .argument('<module>', 'the .wasm file')
    .requiredOption('-k, --key <file>', 'Ed25519 private key (PEM) from wasm-cli keygen')
    .option('-o, --out <file>', 'write the signature there instead of stdout')
    .description('sign a module: prints the hex signature the upload expects')
    .action((modulePath: string, opts: { key: string; out?: string }) => {
      const sig = signWith(readModule(modulePath), opts.key);
      if (opts.out) writeFileSync(resolve(opts.out), sig + '\n');
      else process.stdout.write(sig + '\n');
    });
}
