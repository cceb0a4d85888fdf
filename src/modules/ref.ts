/**
 * How jobs and API calls name a module: its id (a UUID), `name@version`, `name@latest`, or a bare
 * `name` (= `name@latest`). "latest" is the highest version by semantic-version order (numeric
 * parts compared as numbers, a pre-release below its release), not the newest upload.
 */
import { isUuid } from '../ids.ts';

export const MODULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const MODULE_VERSION = /^v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
export const NAME_RULE = "1-128 characters: letters, digits, '.', '_', '-', starting with a letter or digit";
export const VERSION_RULE = "a semantic version such as 1.0.0, 2.1 or 1.0.0-rc.1 (optionally with a leading 'v')";

export type ModuleRef = { kind: 'id'; id: string } | { kind: 'version'; name: string; version: string } | { kind: 'latest'; name: string };

/** Parses a reference; null when it is not one (the caller reports it in its own terms). */
export function parseModuleRef(ref: string): ModuleRef | null {
  if (isUuid(ref as unknown)) return { kind: 'id', id: ref.toLowerCase() };
  const at = ref.lastIndexOf('@');
  const name = at === -1 ? ref : ref.slice(0, at);
  const version = at === -1 ? 'latest' : ref.slice(at + 1);
  if (!MODULE_NAME.test(name)) return null;
  if (version === 'latest') return { kind: 'latest', name };
  if (!MODULE_VERSION.test(version)) return null;
  return { kind: 'version', name, version };
}

export function formatRef(r: ModuleRef): string {
  return r.kind === 'id' ? r.id : r.kind === 'latest' ? `${r.name}@latest` : `${r.name}@${r.version}`;
}

interface Parsed {
  nums: number[];
  pre: string | null;
}
function parseVersion(v: string): Parsed {
  const core = v.replace(/^v/, '').split('+')[0];
  const dash = core.indexOf('-');
  const main = dash === -1 ? core : core.slice(0, dash);
  const nums = main.split('.').map((x) => Number(x));
  while (nums.length < 3) nums.push(0);
  return { nums, pre: dash === -1 ? null : core.slice(dash + 1) };
}

function comparePre(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (pa[i] === undefined) return -1;
    if (pb[i] === undefined) return 1;
    const na = /^\d+$/.test(pa[i]) ? Number(pa[i]) : null;
    const nb = /^\d+$/.test(pb[i]) ? Number(pb[i]) : null;
    if (na !== null && nb !== null) {
      if (na !== nb) return na - nb;
    } else if (na !== null) return -1;
    else if (nb !== null) return 1;
    else if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return 0;
}

/** Semantic-version order: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i] - y.nums[i];
  if (x.pre === null || y.pre === null) return x.pre === y.pre ? 0 : x.pre === null ? 1 : -1;
  return comparePre(x.pre, y.pre);
}
