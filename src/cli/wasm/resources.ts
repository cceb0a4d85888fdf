/**
 * Where wasm-cli finds what it ships: the templates (`templates/<lang>/`) and the guest SDKs
 * (`sdk/<dir>/`). From a checkout or an npm install they are files in the package; in the
 * single-file executable (scripts/build-wasm-cli-sea.mjs) they are one SEA asset, `resources.json`
 * (`{"files": {"templates/c/vecron.json": [mode, base64], ...}}`). `WASM_CLI_HOME` names another
 * folder holding templates/ and sdk/ (a company's own templates; the tests' one).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ResourceFile {
  /** Path relative to the folder that was listed, with `/`. */
  path: string;
  mode: number;
  read(): Buffer;
}

export interface Resources {
  /** Where they come from, for messages. */
  origin: string;
  /** The direct sub-folders of `dir` (e.g. the template languages). */
  folders(dir: string): string[];
  /** Every file under `dir`, recursively; [] when there is no such folder. */
  files(dir: string): ResourceFile[];
}

/** Set by the single-file executable's bundle banner: node:sea when running as one. */
declare global {
  // eslint-disable-next-line no-var
  var __vecronSea: { getAsset(key: string, encoding: 'utf8'): string } | null | undefined;
}

function fromFolder(root: string): Resources {
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
  return {
    origin: root,
    folders(dir) {
      const d = join(root, dir);
      if (!existsSync(d)) return [];
      return readdirSync(d)
        .filter((n) => statSync(join(d, n)).isDirectory())
        .sort();
    },
    files(dir) {
      const d = join(root, dir);
      if (!existsSync(d) || !statSync(d).isDirectory()) return [];
      return walk(d).map((f) => ({ path: relative(d, f).split(sep).join('/'), mode: statSync(f).mode & 0o777, read: () => readFileSync(f) }));
    },
  };
}

function fromAsset(json: string): Resources {
  const files = (JSON.parse(json) as { files: Record<string, [number, string]> }).files;
  const paths = Object.keys(files).sort();
  return {
    origin: 'this executable (its embedded templates/ and sdk/)',
    folders(dir) {
      const prefix = `${dir}/`;
      return [...new Set(paths.filter((p) => p.startsWith(prefix) && p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length).split('/')[0]))];
    },
    files(dir) {
      const prefix = `${dir}/`;
      return paths
        .filter((p) => p.startsWith(prefix))
        .map((p) => ({ path: p.slice(prefix.length), mode: files[p][0], read: () => Buffer.from(files[p][1], 'base64') }));
    },
  };
}

let cached: Resources | undefined;

export function resources(): Resources {
  if (cached) return cached;
  if (process.env.WASM_CLI_HOME) cached = fromFolder(resolve(process.env.WASM_CLI_HOME));
  else if (globalThis.__vecronSea) cached = fromAsset(globalThis.__vecronSea.getAsset('resources.json', 'utf8'));
  else cached = fromFolder(fileURLToPath(new URL('../../../', import.meta.url)));
  return cached;
}

/** The folders the resources come from in a checkout, relative to the package root. */
export const RESOURCE_DIRS = ['templates', 'sdk'] as const;
