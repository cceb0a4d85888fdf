/**
 * A ready PGlite data directory for new installs: creating PGlite's database (its initdb) takes
 * about 5 s of CPU, loading this dump of one about 1 s. `npm install` writes it
 * (scripts/build-dist.mjs runs writePgliteTemplate), with every migration applied; a new data
 * directory starts from it, and migrate() then applies whatever the dump lacks, so an old dump is
 * never wrong, only slower. The file is named by the PGlite version and the migrations' text, so a
 * dump of another PGlite or of other migrations is not used. Its folder, dist/, is found relative
 * to this module: the same from src/db/ and from dist/db/.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
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

/** Where the dump for this PGlite and these migrations is (or would be). */
export function pgliteTemplateFile(): string {
  const hash = createHash('sha256')
    .update(pgliteVersion())
    .update(
      listMigrations()
        .map((m) => `${m.name}\n${m.sql}`)
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 16);
  return join(DIR, `pglite-${hash}.tar.gz`);
}

/** The dump to start a new data directory from, or undefined when there is none for this version. */
export function readPgliteTemplate(): Blob | undefined {
  try {
    return new Blob([readFileSync(pgliteTemplateFile())]);
  } catch {
    return undefined;
  }
}

/** Writes the dump (unless it is there already); returns its path. */
export async function writePgliteTemplate(): Promise<string> {
  const file = pgliteTemplateFile();
  if (existsSync(file)) return file;
  const pg = await PGlite.create();
  try {
    await migrate(wrapPglite(pg));
    const dump = await pg.dumpDataDir('gzip');
    mkdirSync(DIR, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
    renameSync(tmp, file);
  } finally {
    await pg.close();
  }
  return file;
}
