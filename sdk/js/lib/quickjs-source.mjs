// QuickJS's C sources: quickjs-ng, as shipped inside the crates.io crate rquickjs-sys (pinned by
// version and SHA-256). Fetched once into the cache (never committed), verified, unpacked.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { run } from './toolchain.mjs';

export const QUICKJS = {
  crate: 'rquickjs-sys',
  version: '0.14.0',
  /** The crate file's SHA-256 (the `cksum` of the crates.io index). */
  sha256: 'cee271d0eeba64f0915b846cb7ae02e16faf3dfdffdca91731101d9d30fe3423',
  /** quickjs-ng's version inside it (quickjs.h QJS_VERSION_*). */
  engine: 'quickjs-ng 0.16.2',
  /** The C files the engine is built from (inside the crate's quickjs/ folder). */
  files: ['quickjs.c', 'libregexp.c', 'libunicode.c', 'dtoa.c'],
};

const crateName = `${QUICKJS.crate}-${QUICKJS.version}.crate`;
const crateUrl = `https://static.crates.io/crates/${QUICKJS.crate}/${crateName}`;

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** A copy of the crate that is already on this machine: $VECRON_QUICKJS_CRATE or cargo's cache. */
function localCrate() {
  if (process.env.VECRON_QUICKJS_CRATE) return process.env.VECRON_QUICKJS_CRATE;
  const cargo = join(process.env.CARGO_HOME || join(homedir(), '.cargo'), 'registry', 'cache');
  if (!existsSync(cargo)) return null;
  for (const index of readdirSync(cargo)) {
    const p = join(cargo, index, crateName);
    if (existsSync(p)) return p;
  }
  return null;
}

async function download() {
  let res;
  try {
    res = await fetch(crateUrl, { signal: AbortSignal.timeout(120_000) });
  } catch (e) {
    throw new Error(
      `cannot download QuickJS's sources (${crateUrl}): ${e.cause?.message ?? e.message}\n` +
        `  offline: put the crate file somewhere and set VECRON_QUICKJS_CRATE=/path/${crateName}` +
        ` (or run \`cargo fetch\` in a project that depends on ${QUICKJS.crate} = "=${QUICKJS.version}")`,
    );
  }
  if (!res.ok) throw new Error(`cannot download QuickJS's sources: ${crateUrl} answered ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** The folder holding quickjs.c etc., fetching and verifying the crate on first use. */
export async function quickjsSources(cache, log) {
  const dir = join(cache, 'sources', `${QUICKJS.crate}-${QUICKJS.version}`);
  const marker = join(dir, '.verified');
  if (existsSync(marker)) return join(dir, 'quickjs');
  const local = localCrate();
  let bytes = local ? readFileSync(local) : null;
  if (bytes && sha256(bytes) !== QUICKJS.sha256) bytes = null;
  if (!bytes) {
    log(`fetching ${QUICKJS.engine} sources (${QUICKJS.crate} ${QUICKJS.version} from crates.io)`);
    bytes = await download();
  }
  const got = sha256(bytes);
  if (got !== QUICKJS.sha256) throw new Error(`${crateName}: SHA-256 ${got}, expected ${QUICKJS.sha256} (a corrupt or substituted download)`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const file = join(tmp, crateName);
  writeFileSync(file, bytes);
  await run('tar', ['-xzf', file, '-C', tmp, '--strip-components=1', `${QUICKJS.crate}-${QUICKJS.version}/quickjs`], { nice: false });
  rmSync(file);
  for (const f of QUICKJS.files) if (!existsSync(join(tmp, 'quickjs', f))) throw new Error(`${crateName} has no quickjs/${f}`);
  writeFileSync(join(tmp, '.verified'), `${QUICKJS.sha256}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return join(dir, 'quickjs');
}
