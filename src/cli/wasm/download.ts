/** `wasm-cli download --id ID --output FILE` (or `download name@version`): the bytes, SHA-256 checked. */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, UsageError } from './errors.ts';
import { call, serverOf, type ServerOptions } from './server.ts';
import { serverOptions } from './server-options.ts';
import { progressBar } from './progress.ts';
import { sha256 } from './module-file.ts';

export function registerDownload(program: Command): void {
  serverOptions(
    program
      .command('download')
      .argument('[module]', 'module id, name@version or name@latest')
      .option('--id <ref>', 'module id (or name@version), the same as the argument')
      .option('--output <file>', 'where to write it (default <name>-<version>.wasm)')
      .option('-o, --out <file>', 'the same as --output'),
  )
    .description('download a module; its SHA-256 is checked against the registry')
    .action(async (arg: string | undefined, opts: ServerOptions & { id?: string; out?: string; output?: string }) => {
      if (arg && opts.id && arg !== opts.id) throw new UsageError(`two modules named: ${arg} and --id ${opts.id}; give one`);
      const ref = opts.id ?? arg;
      if (!ref) throw new UsageError('which module? wasm-cli download --id <module-id> --output module.wasm (or download name@version)');
      if (opts.out && opts.output && opts.out !== opts.output) throw new UsageError('give --output or -o, not both');
      const { base, headers } = serverOf(opts);
      const res = await call(`${base}/api/v1/wasm/modules/${encodeURIComponent(ref)}/download`, { headers }, 'download');
      const total = Number(res.headers.get('content-length') ?? 0);
      const bar = progressBar(`downloading ${ref}`, total);
      const chunks: Buffer[] = [];
      let got = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        chunks.push(Buffer.from(chunk));
        got += chunk.length;
        bar.update(got);
      }
      const bytes = Buffer.concat(chunks);
      const expected = res.headers.get('x-vecron-module-sha256');
      if (expected && sha256(bytes) !== expected) throw new CliError(`download corrupted: sha256 ${sha256(bytes)}, the registry says ${expected}`);
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'module.wasm';
      const out = resolve(opts.output ?? opts.out ?? name);
      writeFileSync(out, bytes);
      bar.end('sha256 verified');
      process.stdout.write(`${out} (${bytes.length} bytes, sha256 ${sha256(bytes)})\n`);
    });
}
