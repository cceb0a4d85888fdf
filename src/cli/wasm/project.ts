/**
 * The module project: its manifest (`vecron.json` or `vecron.toml`, docs/cli.md and
 * /work/wt/CONTRACT-16.md), found from the working directory upwards, read and checked once here so
 * that every command sees the same, checked values.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parsePermissions, type Permission } from '../../modules/permissions.ts';
import { VecronError } from '../../errors.ts';
import { UsageError } from './errors.ts';

export const MANIFEST_NAMES = ['vecron.json', 'vecron.toml'] as const;

export interface Requirement {
  tool: string;
  /** A shell command: exit 0 = present. */
  check: string;
  /** What installs it here (printed when the check fails). */
  install: string;
}

export interface Manifest {
  name: string;
  version: string;
  language?: string;
  entry?: string;
  author?: string;
  description?: string;
  build?: { command: string[]; output: string; requires: Requirement[]; optimize: boolean };
  limits: { fuel?: number; memory_mb?: number; timeout_seconds?: number };
  permissions: Permission[];
  tests: string;
}

export interface Project {
  root: string;
  manifestPath: string;
  manifest: Manifest;
}

/** The manifest in `from` or the nearest folder above it, or null when there is none. */
export function findManifest(from: string = process.cwd()): string | null {
  let dir = resolve(from);
  for (;;) {
    for (const n of MANIFEST_NAMES) if (existsSync(join(dir, n))) return join(dir, n);
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

export function findProject(from: string = process.cwd()): Project | null {
  const manifestPath = findManifest(from);
  return manifestPath ? loadProject(manifestPath) : null;
}

/** Like findProject, for the commands that need one: a clear error when there is none. */
export function requireProject(command: string, from: string = process.cwd()): Project {
  const p = findProject(from);
  if (!p) {
    throw new UsageError(
      `no vecron.json or vecron.toml in ${resolve(from)} or any folder above it: run \`wasm-cli ${command}\` inside a project (wasm-cli init NAME --lang LANG makes one)`,
    );
  }
  return p;
}

export function loadProject(manifestPath: string): Project {
  const text = readFileSync(manifestPath, 'utf8');
  let raw: unknown;
  try {
    raw = manifestPath.endsWith('.toml') ? parseToml(text) : JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${manifestPath} is not valid ${manifestPath.endsWith('.toml') ? 'TOML' : 'JSON'}: ${(err as Error).message}`);
  }
  return { root: dirname(manifestPath), manifestPath, manifest: checkManifest(raw, manifestPath) };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks a parsed manifest; every problem is reported with its key, all at once. */
export function checkManifest(raw: unknown, where: string): Manifest {
  const problems: string[] = [];
  const bad = (key: string, msg: string) => problems.push(`${key}: ${msg}`);
  if (!isObject(raw)) throw new UsageError(`${where}: the manifest must be an object`);
  const str = (key: string, required: boolean): string | undefined => {
    const v = raw[key];
    if (v === undefined) {
      if (required) bad(key, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || v.trim() === '') {
      bad(key, 'must be a non-empty string');
      return undefined;
    }
    return v;
  };
  const name = str('name', true) ?? '';
  const version = str('version', true) ?? '';
  const m: Manifest = {
    name,
    version,
    language: str('language', false),
    entry: str('entry', false),
    author: str('author', false),
    description: str('description', false),
    limits: {},
    permissions: [],
    tests: str('tests', false) ?? 'tests/*.json',
  };
  if (raw.build !== undefined) {
    const b = raw.build;
    if (!isObject(b)) bad('build', 'must be an object {command, output, requires?, optimize?}');
    else {
      const command = typeof b.command === 'string' ? [b.command] : b.command;
      if (!Array.isArray(command) || command.length === 0 || command.some((c) => typeof c !== 'string' || c.trim() === '')) {
        bad('build.command', 'must be a shell command or an array of them');
      }
      if (typeof b.output !== 'string' || !b.output.endsWith('.wasm')) bad('build.output', 'must be the path of the .wasm the build writes');
      const requires: Requirement[] = [];
      if (b.requires !== undefined) {
        if (!Array.isArray(b.requires)) bad('build.requires', 'must be an array of {tool, check, install}');
        else
          b.requires.forEach((r, i) => {
            if (!isObject(r) || typeof r.tool !== 'string' || typeof r.check !== 'string' || typeof r.install !== 'string') {
              bad(`build.requires[${i}]`, 'must be {tool, check, install}, all strings');
            } else requires.push({ tool: r.tool, check: r.check, install: r.install });
          });
      }
      if (b.optimize !== undefined && typeof b.optimize !== 'boolean') bad('build.optimize', 'must be true or false');
      m.build = { command: Array.isArray(command) ? (command as string[]) : [], output: String(b.output), requires, optimize: b.optimize !== false };
    }
  }
  if (raw.limits !== undefined) {
    if (!isObject(raw.limits)) bad('limits', 'must be an object {fuel, memory_mb, timeout_seconds}');
    else {
      for (const [k, v] of Object.entries(raw.limits)) {
        if (k !== 'fuel' && k !== 'memory_mb' && k !== 'timeout_seconds') bad(`limits.${k}`, 'is not a limit (fuel, memory_mb, timeout_seconds)');
        else if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad(`limits.${k}`, 'must be a positive number');
        else m.limits[k] = v;
      }
    }
  }
  if (raw.permissions !== undefined) {
    try {
      m.permissions = parsePermissions(raw.permissions);
    } catch (err) {
      if (!(err instanceof VecronError)) throw err;
      const list = (err.details as { problems?: { path: string; message: string }[] } | undefined)?.problems;
      if (list?.length) for (const p of list) bad(p.path, p.message);
      else bad('permissions', err.message);
    }
  }
  if (problems.length) throw new UsageError(`${where}: ${problems.join('; ')}`);
  return m;
}
