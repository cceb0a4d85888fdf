/**
 * `wasm-cli upload`: the seed's `upload --url --token --file --name --version [--description]
 * [--author] [--sign-key]`, beside the short forms (`upload FILE -n -m -a -k -s`). Inside a project
 * the manifest gives the defaults (file = build.output, name, version, author, description), and
 * the manifest's permissions are set on the uploaded module (the module needs them to run).
 * A subcommand's `--version` is the module's version; the CLI's own is `wasm-cli --version`.
 */
import { userInfo } from 'node:os';
import { basename, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, UsageError } from './errors.ts';
import { call, serverOf, type ServerOptions } from './server.ts';
import { serverOptions } from './server-options.ts';
import { progressBar } from './progress.ts';
import { readModule, signWith } from './module-file.ts';
import { multipartBody } from './multipart.ts';
import { findProject } from './project.ts';

interface UploadOptions extends ServerOptions {
  file?: string;
  name?: string;
  version?: string;
  moduleVersion?: string;
  author?: string;
  description?: string;
  signKey?: string;
  key?: string;
  signature?: string;
  permissions: boolean;
  json?: boolean;
}

/** One value given by two spellings of a flag: both may be given only when they agree. */
function oneOf(a: string | undefined, b: string | undefined, names: string): string | undefined {
  if (a !== undefined && b !== undefined && a !== b) throw new UsageError(`${names} disagree (${a} vs ${b}): give one`);
  return a ?? b;
}

function defaultAuthor(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

export function registerUpload(program: Command): void {
  serverOptions(
    program
      .command('upload')
      .argument('[module]', 'the .wasm file (or --file; in a project: its build.output)')
      .option('--file <path>', 'the .wasm file')
      .option('-n, --name <name>', 'module name (in a project: the manifest name)')
      .option('--version <version>', "the module's version, e.g. 1.0.0 (in a project: the manifest version)")
      .option('-m, --module-version <version>', 'the same as --version')
      .option('-a, --author <author>', 'author, whose registered key verifies a signature (default: the manifest author, else your user name)')
      .option('-d, --description <text>', 'description')
      .option('--sign-key <file>', 'sign with this Ed25519 private key (from wasm-cli keygen) before uploading')
      .option('-k, --key <file>', 'the same as --sign-key')
      .option('-s, --signature <hex>', 'a signature made earlier with wasm-cli sign')
      .option('--no-permissions', "do not set the manifest's permissions on the uploaded module")
      .option('--json', 'print the registry answer as JSON'),
  )
    .description("upload a module to the registry (signed when --sign-key or --signature is given); in a project, also sets the manifest's permissions")
    .action(async (arg: string | undefined, opts: UploadOptions) => {
      const project = findProject();
      const m = project?.manifest;
      let file = oneOf(arg, opts.file, 'the module argument and --file');
      if (!file && m?.build) file = resolve(project!.root, m.build.output);
      if (!file) throw new UsageError('which module? wasm-cli upload --file module.wasm --name NAME --version 1.0.0 (or run it in a project)');
      const name = opts.name ?? m?.name;
      const version = oneOf(opts.version, opts.moduleVersion, '--version and --module-version') ?? m?.version;
      const missing = [!name && '--name', !version && '--version'].filter(Boolean);
      if (missing.length) throw new UsageError(`upload needs ${missing.join(' and ')} (outside a project there is no manifest to take them from)`);
      const keyFile = oneOf(opts.signKey, opts.key, '--sign-key and --key');
      if (keyFile && opts.signature) throw new UsageError('give --sign-key or --signature, not both');
      const { base, headers } = serverOf(opts);
      let bytes: Buffer;
      try {
        bytes = readModule(file);
      } catch (err) {
        if (project && !arg && !opts.file) throw new CliError(`${relative(process.cwd(), file) || file} does not exist yet: run \`wasm-cli build\` first`);
        throw err;
      }
      const signature = keyFile ? signWith(bytes, keyFile) : opts.signature;
      const fields: Record<string, string> = { name: name!, version: version!, author: opts.author ?? m?.author ?? defaultAuthor() };
      const description = opts.description ?? m?.description;
      if (description) fields.description = description;
      if (signature) fields.signature = signature;
      const bar = progressBar(`uploading ${basename(file)}`, bytes.length);
      const mp = multipartBody(fields, { name: basename(file), bytes }, (n) => bar.update(n));
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
      const up: any = await res.json();
      bar.end('checked and stored');
      const perms = opts.permissions && m ? m.permissions : [];
      let permissions: unknown[] | undefined;
      if (perms.length > 0) {
        try {
          const r = await call(
            `${base}/api/v1/wasm/modules/${up.id}/permissions`,
            { method: 'PUT', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ permissions: perms }) },
            'setting the permissions',
          );
          permissions = ((await r.json()) as { permissions: unknown[] }).permissions;
        } catch (err) {
          throw new CliError(
            `${up.name}@${up.version} was uploaded (id ${up.id}) but ${(err as Error).message}.\n` +
              `The module cannot use its host functions until an admin grants them: PUT ${base}/api/v1/wasm/modules/${up.id}/permissions ` +
              `with ${JSON.stringify({ permissions: perms })}, or run this upload again with an admin token (a new --version).`,
          );
        }
      }
      if (opts.json) process.stdout.write(JSON.stringify(permissions ? { ...up, permissions } : up, null, 2) + '\n');
      else {
        process.stdout.write(`${up.name}@${up.version} uploaded: id ${up.id}, sha256 ${up.hash}, ${up.size_bytes} bytes${up.signed ? ', signed' : ''}\n`);
        if (permissions) process.stdout.write(`permissions set: ${perms.map((p) => `${p.type}=${p.resource_pattern ?? '*'}`).join(', ')}\n`);
      }
    });
}
