/**
 * A ready PGlite data directory for new installs: creating PGlite's database (its initdb) takes
 * about 5 s of CPU. `npm install` makes one (scripts/build-dist.mjs runs writePgliteTemplate), with
 * every migration applied; a new data directory starts as a copy of it, and migrate() then applies
 * whatever it lacks, so an old template is never wrong, only slower. It is named by the PGlite
 * version and the migrations' text, so a template of another PGlite or of other migrations is not
 * used. Its folder, dist/, is found relative to this module: the same from src/db/ and from dist/db/.
 *
 * It is kept as a plain directory, not as PGlite's dump (a .tar.gz that `loadDataDir` unpacks):
 * unpacking writes its ~1,100 files through PGlite's file system, one synchronous open/write/close
 * each on the main thread (about 1 s of the first start, issue 19), while a copy runs in libuv's
 * threads, beside the loading of the app's modules. About 40 MB on disk (the dump: 5 MB).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { listMigrations, migrate } from './migrate.ts';
import { wrapPglite } from './pglite.ts';

const DIR = fileURLToPath(new URL('../../dist/pglite-template/', import.meta.url));

function pgliteVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
}

/** Where the template for this PGlite and these migrations is (or would be): a data directory. */
export function pgliteTemplateDir(): string {
  const hash = createHash('sha256')
    .update(pgliteVersion())
    .update(
      listMigrations()
        .map((m) => `${m.name}\n${m.sql}`)
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 16);
  return join(DIR, `pglite-${hash}`);
}

/** Every file under `dir`, relative to it, and its subdirectories (parents first). */
function tree(dir: string, rel = '', out = { dirs: [] as string[], files: [] as string[] }) {
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      out.dirs.push(p);
      tree(dir, p, out);
    } else {
      out.files.push(p);
    }
  }
  return out;
}

/**
 * Copies the template into `to` (which must not exist) when there is one for this version; false
 * when there is none. The copy goes to a sibling first and is renamed into place, so a start that
 * stops halfway leaves no half-made data directory behind.
 */
export async function copyPgliteTemplate(to: string): Promise<boolean> {
  const from = pgliteTemplateDir();
  if (!existsSync(join(from, 'PG_VERSION'))) return false;
  const tmp = `${to}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const { dirs, files } = tree(from);
    mkdirSync(tmp, { recursive: true });
    for (const d of dirs) mkdirSync(join(tmp, d));
    // A few copies at a time: they run in libuv's thread pool (4 threads by default).
    let next = 0;
    const copier = async () => {
      while (next < files.length) {
        const f = files[next++];
        await copyFile(join(from, f), join(tmp, f));
      }
    };
    await Promise.all(Array.from({ length: 8 }, copier));
    renameSync(tmp, to);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return true;
}

/** Writes the template (unless it is there already); returns its path. */
export async function writePgliteTemplate(): Promise<string> {
  const dir = pgliteTemplateDir();
  if (existsSync(join(dir, 'PG_VERSION'))) return dir;
  mkdirSync(DIR, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const pg = await PGlite.create(tmp);
    try {
      await migrate(wrapPglite(pg));
    } finally {
      await pg.close();
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  // Templates of other versions (older builds) are of no use any more.
  for (const name of readdirSync(DIR)) {
    if (name.startsWith('pglite-') && join(DIR, name) !== dir && !name.includes('.tmp-')) rmSync(join(DIR, name), { recursive: true, force: true });
  }
  return dir;
}
