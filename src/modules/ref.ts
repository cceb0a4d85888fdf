/**
 * How jobs and API calls name a module: its id (a UUID), `name@version`, `name@latest`, or a bare
 * `name` (= `name@latest`). "latest" is the highest release by semantic-version order (numeric
 * parts compared as numbers), not the newest upload; pre-releases only while there is no release
 * (repository.ts latestOf says why).
 *
 * Versions are semantic versions (semver.org 2.0.0): `MAJOR.MINOR.PATCH`, numbers without leading
 * zeros, an optional pre-release (`-rc.1`). `v1`, `1.0` and `01.0.0` are refused with a message that
 * says what is wrong. Build metadata (`+build.5`) is refused too: semver ignores it for precedence,
 * so `1.0.0+a` and `1.0.0+b` would be two uploads that `name@1.0.0` could not tell apart. With that,
 * two versions are equal in semver order exactly when their strings are equal, so `name@1.0.0`
 * resolves by an exact match.
 */
import { isUuid } from '../ids.ts';

export const MODULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const NUM = '(?:0|[1-9]\\d*)';
const PRE_ID = '(?:0|[1-9]\\d*|\\d*[A-Za-z-][0-9A-Za-z-]*)';
/** MAJOR.MINOR.PATCH[-pre.release], as semver.org's grammar (no build metadata, see above). */
export const MODULE_VERSION = new RegExp(`^${NUM}\\.${NUM}\\.${NUM}(?:-${PRE_ID}(?:\\.${PRE_ID})*)?$`);
export const NAME_RULE = "1-128 characters: letters, digits, '.', '_', '-', starting with a letter or digit";
export const VERSION_RULE = 'a semantic version MAJOR.MINOR.PATCH such as 1.0.0 or 2.1.0-rc.1';

/** Why a string is not an acceptable module version (null when it is one). */
export function versionProblem(v: string): string | null {
  if (MODULE_VERSION.test(v)) return null;
  const got = ` (got '${v.length > 40 ? `${v.slice(0, 37)}...` : v}')`;
  if (v === '') return `must be ${VERSION_RULE}`;
  if (/^[vV]\d/.test(v)) return `must be ${VERSION_RULE}, without a leading 'v'${got}`;
  if (v.includes('+')) return `must be ${VERSION_RULE}; build metadata ('+...') is not accepted, as it does not order versions${got}`;
  const core = v.split('-')[0];
  if (/^\d+(\.\d+)?$/.test(core))
    return `must be ${VERSION_RULE}: all three numbers are required, e.g. '${[...core.split('.'), '0', '0'].slice(0, 3).join('.')}'${got}`;
  if (/^\d+\.\d+\.\d+$/.test(core) && /(^|\.)0\d/.test(core)) return `must be ${VERSION_RULE}: numbers must not have leading zeros${got}`;
  if (/^\d+\.\d+\.\d+$/.test(core))
    return `must be ${VERSION_RULE}: the pre-release after '-' must be dot-separated letters, digits and '-', numbers without leading zeros${got}`;
  return `must be ${VERSION_RULE}${got}`;
}

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
/** Whether a version is a pre-release (`2.1.0-rc.1`), which `latest` passes over while a release exists. */
export function isPreRelease(version: string): boolean {
  return parseVersion(version).pre !== null;
}

export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return x.nums[i] - y.nums[i];
  if (x.pre === null || y.pre === null) return x.pre === y.pre ? 0 : x.pre === null ? 1 : -1;
  return comparePre(x.pre, y.pre);
}
