/**
 * wasm-cli commands that work with the module registry: keygen, sign, upload, list, download.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { generateSigningKeyPair, signModuleBytes } from '../../modules/signatures.ts';
import { CliError, call, serverOf, type ServerOptions } from './server.ts';
import { progressBar } from './progress.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function readModule(path: string): Buffer {
  const file = resolve(path);
  if (!existsSync(file)) throw new CliError(`${path}: no such file`);
  return readFileSync(file);
}

function signWith(bytes: Buffer, keyPath: string): string {
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

/**
 * multipart/form-data as a stream, so the upload's progress can be shown as the bytes leave.
 */
function multipartBody(fields: Record<string, string>, file: { name: string; bytes: Buffer }, onProgress: (sent: number) => void) {
  const boundary = `----vecron${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('') +
      `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${file.name.replace(/"/g, '')}"\r\ncontent-type: application/wasm\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const CHUNK = 64 * 1024;
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset === 0) controller.enqueue(head);
      if (offset < file.bytes.length) {
        const end = Math.min(file.bytes.length, offset + CHUNK);
        controller.enqueue(file.bytes.subarray(offset, end));
        offset = end;
        onProgress(offset);
        if (offset < file.bytes.length) return;
      }
      controller.enqueue(tail);
      controller.close();
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, length: head.length + file.bytes.length + tail.length };
}

const serverOptions = (c: Command) =>
  c
    .option('--server <url>', 'vecron API base URL (default $VECRON_URL or http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default $VECRON_TOKEN)');

export function registerRegistryCommands(program: Command): void {
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

  serverOptions(
    program
      .command('upload')
      .argument('<module>', 'the .wasm file')
      .requiredOption('-n, --name <name>', 'module name')
      .requiredOption('-m, --module-version <version>', 'module version, e.g. 1.0.0')
      .requiredOption('-a, --author <author>', 'author (whose registered key verifies the signature)')
      .option('-d, --description <text>', 'description')
      .option('-k, --key <file>', 'sign with this Ed25519 private key before uploading')
      .option('-s, --signature <hex>', 'a signature made earlier with wasm-cli sign')
      .option('--json', 'print the registry answer as JSON'),
  )
    .description('upload a module to the registry (signed when --key or --signature is given)')
    .action(
      async (
        modulePath: string,
        opts: ServerOptions & { name: string; moduleVersion: string; author: string; description?: string; key?: string; signature?: string; json?: boolean },
      ) => {
        const { base, headers } = serverOf(opts);
        const bytes = readModule(modulePath);
        if (opts.key && opts.signature) throw new CliError('give --key or --signature, not both');
        const signature = opts.key ? signWith(bytes, opts.key) : opts.signature;
        const fields: Record<string, string> = { name: opts.name, version: opts.moduleVersion, author: opts.author };
        if (opts.description) fields.description = opts.description;
        if (signature) fields.signature = signature;
        const bar = progressBar(`uploading ${basename(modulePath)}`, bytes.length);
        const mp = multipartBody(fields, { name: basename(modulePath), bytes }, (n) => bar.update(n));
        const res = await call(
          `${base}/api/v1/wasm/modules`,
          {
            method: 'POST',
            headers: { ...headers, 'content-type': mp.contentType, 'content-length': String(mp.length) },
            body: mp.body,
            duplex: 'half',
          } as RequestInit,
          'upload',
        );
        const m: any = await res.json();
        bar.end('checked and stored');
        if (opts.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
        else process.stdout.write(`${m.name}@${m.version} uploaded: id ${m.id}, sha256 ${m.hash}, ${m.size_bytes} bytes${m.signed ? ', signed' : ''}\n`);
      },
    );

  serverOptions(
    program
      .command('list')
      .option('--search <text>', 'filter by name, description or author')
      .option('--page <n>', 'page', '1')
      .option('--limit <n>', 'modules per page', '20')
      .option('--json', 'print the registry answer as JSON'),
  )
    .description('list the modules in the registry')
    .action(async (opts: ServerOptions & { search?: string; page: string; limit: string; json?: boolean }) => {
      const { base, headers } = serverOf(opts);
      const q = new URLSearchParams({ page: opts.page, limit: opts.limit, ...(opts.search ? { search: opts.search } : {}) });
      const body: any = await (await call(`${base}/api/v1/wasm/modules?${q}`, { headers }, 'list')).json();
      if (opts.json) {
        process.stdout.write(JSON.stringify(body, null, 2) + '\n');
        return;
      }
      const rows = body.items.map((m: any) => [
        `${m.name}@${m.version}`,
        m.id,
        String(m.size_bytes),
        m.signed ? 'signed' : '-',
        m.author,
        m.created_at.slice(0, 19) + 'Z',
      ]);
      const head = ['MODULE', 'ID', 'BYTES', 'SIGNED', 'AUTHOR', 'CREATED'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r: string[]) => r[i].length)));
      const fmt = (r: string[]) =>
        r
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd() + '\n';
      process.stdout.write(fmt(head));
      for (const r of rows) process.stdout.write(fmt(r));
      process.stdout.write(`${body.items.length} of ${body.total} module(s), page ${body.page}\n`);
    });

  serverOptions(
    program
      .command('download')
      .argument('<module>', 'module id, name@version or name@latest')
      .option('-o, --out <file>', 'where to write it (default <name>-<version>.wasm)'),
  )
    .description('download a module; its SHA-256 is checked against the registry')
    .action(async (ref: string, opts: ServerOptions & { out?: string }) => {
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
      const out = resolve(opts.out ?? name);
      writeFileSync(out, bytes);
      bar.end('sha256 verified');
      process.stdout.write(`${out} (${bytes.length} bytes, sha256 ${sha256(bytes)})\n`);
    });
}
