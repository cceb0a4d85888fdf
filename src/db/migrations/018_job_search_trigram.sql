-- GET /api/v1/jobs?search= matches `name ILIKE '%s%' OR coalesce(description, '') ILIKE '%s%'`
-- (src/jobs/repository.ts listJobs): without an index both the page and its total scan every job
-- (17 ms each at 10,000 jobs, bench/api.ts). Trigram GIN indexes on exactly those two expressions
-- let PostgreSQL answer both from a bitmap of the matching rows (0.5 ms), with the same results.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a database owner may create
-- it. Where it is missing or not allowed (and in the embedded PGlite, which loads no extension),
-- the migration still succeeds without the indexes and search keeps scanning the table.
DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'pg_trgm is not available (%): job search will scan the table', SQLERRM;
END
$$;

DO $$
DECLARE
  ops text;
BEGIN
  SELECT quote_ident(n.nspname) || '.gin_trgm_ops' INTO ops
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_trgm';
  IF ops IS NOT NULL THEN
    EXECUTE format('CREATE INDEX IF NOT EXISTS jobs_name_trgm ON jobs USING gin (name %s)', ops);
    EXECUTE format('CREATE INDEX IF NOT EXISTS jobs_description_trgm ON jobs USING gin ((coalesce(description, %L)) %s)', '', ops);
  END IF;
END
$$;
