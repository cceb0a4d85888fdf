/**
 * What `wasm-cli test` grants a module's host calls (issue 15), so an author tests locally exactly
 * what will run in the job: the manifest's permissions plus `--allow TYPE=PATTERN`, datasources
 * (`--datasource NAME=URL`, what a job's secret variable holds), the job's file area (`--files DIR`)
 * and crypto keys (`--secret NAME=VALUE`).
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parsePermissions, type Permission } from '../../modules/permissions.ts';
import { VecronError } from '../../errors.ts';
import { keyValue } from './args.ts';
import { UsageError } from './errors.ts';

export interface Grants {
  permissions: Permission[];
  /** Datasource name -> connection URL. */
  datasources: Record<string, string>;
  /** The folder that stands for the job's file area (`jobs/{job_id}/`), or null: file calls answer `unavailable`. */
  filesDir: string | null;
  /** Secret variables by name (crypto keys). */
  secrets: Record<string, string>;
}

/** `--allow TYPE=PATTERN` (PATTERN `*` or empty: any resource of the type). */
export function parseAllow(v: string): Permission {
  const i = v.indexOf('=');
  const type = i < 0 ? v : v.slice(0, i);
  const pattern = i < 0 ? '' : v.slice(i + 1);
  try {
    return parsePermissions([{ type, resource_pattern: pattern === '' || pattern === '*' ? null : pattern }], '--allow')[0];
  } catch (err) {
    if (err instanceof VecronError) throw new UsageError(`--allow ${v}: ${err.message.replace(/^--allow is invalid: --allow\[0\]\.?/, '')}`);
    throw err;
  }
}

export function parseDatasource(v: string): [string, string] {
  const [name, url] = keyValue('--datasource', v, 'NAME=URL');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new UsageError(`--datasource ${name}: ${JSON.stringify(url)} is not a URL (postgres://..., mysql://...)`);
  return [name, url];
}

export function makeGrants(
  manifestPermissions: readonly Permission[],
  opts: { allow?: string[]; datasource?: string[]; files?: string; secret?: string[] },
): Grants {
  const permissions = [...manifestPermissions, ...(opts.allow ?? []).map(parseAllow)];
  const datasources: Record<string, string> = {};
  for (const d of opts.datasource ?? []) {
    const [n, u] = parseDatasource(d);
    datasources[n] = u;
  }
  const secrets: Record<string, string> = {};
  for (const s of opts.secret ?? []) {
    const [n, v] = keyValue('--secret', s);
    secrets[n] = v;
  }
  let filesDir: string | null = null;
  if (opts.files !== undefined) {
    filesDir = resolve(opts.files);
    if (!existsSync(filesDir) || !statSync(filesDir).isDirectory()) throw new UsageError(`--files ${opts.files}: not a folder`);
  }
  return { permissions, datasources, filesDir, secrets };
}
