/**
 * Opening the embedded database on a new data directory (src/db/open.ts): it starts as a copy of
 * the template data directory (src/db/pglite-template.ts) when the build made one, else PGlite
 * creates it; a directory that holds files but no database is never replaced.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { listMigrations } from '../../src/db/migrate.ts';
import { openDatabase } from '../../src/db/open.ts';
import { copyPgliteTemplate, pgliteTemplateDir, writePgliteTemplate } from '../../src/db/pglite-template.ts';

describe('openDatabase: a new embedded data directory', () => {
  let tmp = '';
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'vecron-open-'));
    await writePgliteTemplate(); // there already after a build: returns at once
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const config = (dataDir: string) => loadConfig({ VECRON_DATA_DIR: dataDir });
  const migrations = async (dataDir: string) => {
    const db = await openDatabase(config(dataDir));
    try {
      const { rows } = await db.query<{ name: string }>('SELECT name FROM vecron_migrations ORDER BY id');
      return rows.map((r) => r.name);
    } finally {
      await db.close();
    }
  };

  it('is a copy of the template, with every migration, and opens again as an existing one', { timeout: 120_000 }, async () => {
    const dataDir = join(tmp, 'fresh');
    assert.deepEqual(
      await migrations(dataDir),
      listMigrations().map((m) => m.name),
    );
    assert.ok(existsSync(join(dataDir, 'pglite', 'PG_VERSION')));
    assert.deepEqual(
      readdirSync(dataDir).filter((n) => n.includes('.tmp-')),
      [],
      'no copy left beside it',
    );
    assert.equal((await migrations(dataDir)).length, listMigrations().length);
  });

  it('copies into a new directory only, and says when there is no template', async () => {
    const to = join(tmp, 'copy', 'pglite');
    mkdirSync(join(tmp, 'copy'));
    assert.equal(await copyPgliteTemplate(to), true);
    assert.deepEqual(readdirSync(to).sort(), readdirSync(pgliteTemplateDir()).sort());
    await assert.rejects(copyPgliteTemplate(to)); // the rename onto an existing, non-empty directory fails
  });

  it('leaves a directory that holds files but no database as it is', { timeout: 120_000 }, async () => {
    const dataDir = join(tmp, 'odd');
    mkdirSync(join(dataDir, 'pglite'), { recursive: true });
    writeFileSync(join(dataDir, 'pglite', 'keep-me'), 'x');
    const db = await openDatabase(config(dataDir)).catch(() => null);
    await db?.close();
    assert.ok(existsSync(join(dataDir, 'pglite', 'keep-me')));
  });
});
