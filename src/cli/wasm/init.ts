/**
 * `wasm-cli init NAME --lang L`: a new module project from `templates/<L>/` (CONTRACT-16, docs/cli.md):
 * the template's files with `{{name}}`, `{{name_snake}}`, `{{name_camel}}` and `{{version}}`
 * replaced in names and text, the SDK (`sdk/<template.json sdk>/`) copied into `vecron-sdk/` so the
 * project builds without the repository, and the next three commands.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { MODULE_NAME } from '../../modules/ref.ts';
import { CliError, UsageError } from './errors.ts';
import { resources } from './resources.ts';

export const LANGUAGES = ['rust', 'go', 'tinygo', 'assemblyscript', 'c', 'cpp', 'js', 'python'] as const;
export const INITIAL_VERSION = '0.1.0';

export function substitutions(name: string): Record<string, string> {
  const words = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return {
    '{{name}}': name,
    '{{name_snake}}': words.join('_').toLowerCase(),
    '{{name_camel}}': words.map((w, i) => (i === 0 ? w.toLowerCase() : w[0].toUpperCase() + w.slice(1).toLowerCase())).join(''),
    '{{version}}': INITIAL_VERSION,
  };
}

const apply = (s: string, subs: Record<string, string>) => s.replace(/\{\{(name|name_snake|name_camel|version)\}\}/g, (m) => subs[m]);
/** Text is what has no NUL byte in its first 8 KiB (as git decides). */
const isText = (b: Buffer) => !b.subarray(0, 8192).includes(0);

export interface InitResult {
  dir: string;
  files: string[];
  sdk: string | null;
}

export function initProject(name: string, lang: string, target: string, force = false): InitResult {
  if (!MODULE_NAME.test(name) || !/^[A-Za-z]/.test(name)) {
    throw new UsageError(`${JSON.stringify(name)} is not a module name: start with a letter; letters, digits, '.', '_' and '-' after it (e.g. my-module)`);
  }
  if (!(LANGUAGES as readonly string[]).includes(lang)) throw new UsageError(`--lang must be one of ${LANGUAGES.join(', ')}; got ${JSON.stringify(lang)}`);
  const res = resources();
  const present = res.folders('templates');
  const files = res.files(`templates/${lang}`);
  if (files.length === 0) {
    throw new CliError(
      `there is no ${lang} template (templates/${lang}) in ${res.origin}; templates present: ${present.length ? present.join(', ') : 'none'}` +
        (present.length ? ` (wasm-cli init ${name} --lang ${present[0]})` : ''),
    );
  }
  let meta: { sdk?: string } = {};
  const metaFile = files.find((f) => f.path === 'template.json');
  if (metaFile) {
    try {
      meta = JSON.parse(metaFile.read().toString('utf8'));
    } catch (err) {
      throw new CliError(`templates/${lang}/template.json is not valid JSON: ${(err as Error).message}`);
    }
  }
  const dir = resolve(target);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !force)
    throw new CliError(`${dir} exists and is not empty: choose another name or --dir, or pass --force`);
  const subs = substitutions(name);
  const written: string[] = [];
  const put = (rel: string, bytes: Buffer, mode: number) => {
    const out = join(dir, rel);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, bytes);
    chmodSync(out, mode & 0o111 ? 0o755 : 0o644);
    written.push(rel);
  };
  for (const f of files) {
    if (f.path === 'template.json') continue;
    const bytes = f.read();
    put(apply(f.path, subs), isText(bytes) ? Buffer.from(apply(bytes.toString('utf8'), subs)) : bytes, f.mode);
  }
  const sdkName = meta.sdk ?? lang;
  const sdkFiles = res.files(`sdk/${sdkName}`);
  if (sdkFiles.length === 0 && meta.sdk !== undefined) throw new CliError(`the ${lang} template needs sdk/${sdkName}, which is not in ${res.origin}`);
  for (const f of sdkFiles) put(`vecron-sdk/${f.path}`, f.read(), f.mode);
  return { dir, files: written, sdk: sdkFiles.length ? sdkName : null };
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .argument('<name>', 'the module name, e.g. my-module (also the folder)')
    .requiredOption('-l, --lang <language>', `the language: ${LANGUAGES.join(', ')}`)
    .option('--dir <path>', 'the folder to create (default ./NAME)')
    .option('--force', 'write into a folder that is not empty')
    .description('create a module project from a template: manifest, source, SDK, test cases, README')
    .action((name: string, opts: { lang: string; dir?: string; force?: boolean }) => {
      const r = initProject(name, opts.lang, opts.dir ?? name, opts.force);
      const rel = relative(process.cwd(), r.dir) || '.';
      process.stdout.write(
        `created ${rel}/ (${opts.lang}${r.sdk ? `, SDK in ${rel}/vecron-sdk` : ''}): ${r.files.length} files\n\nNext:\n  cd ${rel}\n  wasm-cli build\n  wasm-cli test\n`,
      );
    });
}
