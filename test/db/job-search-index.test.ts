/**
 * Migration 018: trigram indexes for the job search (GET /api/v1/jobs?search=). On PostgreSQL the
 * search query can use them (checked with sequential scans disabled, as a small table would
 * otherwise be scanned anyway); on both databases the search answers what a plain substring
 * match says, wildcards in the search text included (on PGlite, without pg_trgm, the migration
 * applies without the indexes).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDatabase, openTestDb } from '../helpers/db.ts';
import type { Database } from '../../src/db/database.ts';
import { listJobs } from '../../src/jobs/repository.ts';

const NAMES = Array.from({ length: 120 }, (_, i) => ({
  name: `job-${String(i).padStart(3, '0')}${i % 10 === 0 ? '_x' : ''}`,
  description: i % 3 === 0 ? null : `Nightly EXPORT ${i}${i % 7 === 0 ? ' 100% done' : ''}${i % 11 === 0 ? ' a\\b' : ''}`,
}));

/** What the search must answer: a case-insensitive substring match on name or description, by name. */
const expected = (s: string) =>
  NAMES.filter((j) => j.name.toLowerCase().includes(s.toLowerCase()) || (j.description ?? '').toLowerCase().includes(s.toLowerCase()))
    .map((j) => j.name)
    .sort();

forEachDatabase((kind) => {
  describe(`${kind}: job search with migration 018`, () => {
    let db: Database;
    before(async () => {
      db = await openTestDb(kind);
      for (const j of NAMES) {
        await db.query(`INSERT INTO jobs (name, description, definition) VALUES ($1, $2, $3)`, [
          j.name,
          j.description,
          JSON.stringify({ name: j.name, description: j.description, steps: [] }),
        ]);
      }
      await db.exec('ANALYZE jobs');
    });
    after(async () => {
      await db?.close();
    });

    it('answers the substring matches of name or description, wildcards taken literally, paged with the total', async () => {
      for (const s of ['export 1', 'EXPORT 10', '100%', '_x', 'a\\b', 'job-05', 'nothing-like-this', 'ex']) {
        const want = expected(s);
        const all = await listJobs(db, { page: 1, limit: 200, search: s });
        assert.deepEqual(
          all.items.map((j) => j.name),
          want,
          s,
        );
        assert.equal(all.total, want.length, s);
        const p2 = await listJobs(db, { page: 2, limit: 5, search: s });
        assert.deepEqual(
          p2.items.map((j) => j.name),
          want.slice(5, 10),
          `${s}, page 2`,
        );
        assert.equal(p2.total, want.length);
      }
    });

    if (kind === 'postgres') {
      it('has trigram indexes on name and description that the search query uses', async () => {
        const idx = await db.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = 'jobs' AND indexname LIKE '%trgm' ORDER BY 1`);
        assert.deepEqual(
          idx.rows.map((r) => r.indexname),
          ['jobs_description_trgm', 'jobs_name_trgm'],
        );
        const plan = await db.withSession(async (s) => {
          await s.query('SET enable_seqscan = off');
          try {
            const r = await s.query<{ 'QUERY PLAN': string }>(`EXPLAIN SELECT count(*) FROM jobs WHERE (name ILIKE $1 OR coalesce(description, '') ILIKE $1)`, [
              '%export 1%',
            ]);
            return r.rows.map((x) => x['QUERY PLAN']).join('\n');
          } finally {
            await s.query('RESET enable_seqscan');
          }
        });
        assert.match(plan, /jobs_name_trgm/, plan);
        assert.match(plan, /jobs_description_trgm/, plan);
      });
    }
  });
});
