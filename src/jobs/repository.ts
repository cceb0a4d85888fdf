import type { Queryable } from '../db/database.ts';
import { VecronError, notFound } from '../errors.ts';
import { isUuid } from '../ids.ts';
import type { JobDefinition } from './types.ts';

/** A stored job: its canonical definition plus identity and bookkeeping. */
export type JobRecord = JobDefinition & {
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
  created_by: string | null;
  updated_by: string | null;
};

interface JobRow {
  id: string;
  definition: JobDefinition;
  enabled: boolean;
  version: number;
  created_at: Date;
  updated_at: Date;
  created_by: string | null;
  updated_by: string | null;
}

export function toJobRecord(r: JobRow): JobRecord {
  return {
    id: r.id,
    // jobs stored before the limit fields existed (migration 016) have none
    ...({ concurrency_key: null, concurrency_limit: null, rate_limit: null } satisfies Partial<JobDefinition>),
    ...r.definition,
    enabled: r.enabled,
    version: r.version,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    created_by: r.created_by,
    updated_by: r.updated_by,
  };
}

/**
 * Job names are unique (a UNIQUE constraint since 001_init.sql), so a name finds one job. The 409 names
 * the job that holds it; the constraint still guards a race between the check and the write.
 */
function nameTaken(name: string, existingId?: string): VecronError {
  return new VecronError(
    'conflict',
    `a job named '${name}' already exists${existingId ? ` (id ${existingId})` : ''}`,
    existingId ? { existing_job_id: existingId } : undefined,
  );
}

function conflictOnName(err: unknown, name: string): unknown {
  const e = err as { code?: string; constraint?: string; message?: string };
  if (e?.code === '23505' || /jobs_name_key/.test(e?.message ?? '')) return nameTaken(name);
  return err;
}

async function jobIdNamed(db: Queryable, name: string, exceptId?: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM jobs WHERE name = $1 AND id IS DISTINCT FROM $2', [name, exceptId ?? null]);
  return rows[0]?.id;
}

export async function createJob(db: Queryable, def: JobDefinition, actor: string | null): Promise<JobRecord> {
  const existing = await jobIdNamed(db, def.name);
  if (existing) throw nameTaken(def.name, existing);
  try {
    const { rows } = await db.query<JobRow>(
      `INSERT INTO jobs (name, description, definition, enabled, created_by, updated_by)
       VALUES ($1, $2, $3, $4, $5, $5) RETURNING *`,
      [def.name, def.description, JSON.stringify(def), def.enabled, actor],
    );
    return toJobRecord(rows[0]);
  } catch (err) {
    throw conflictOnName(err, def.name);
  }
}

export async function findJob(db: Queryable, id: string): Promise<JobRecord | null> {
  if (!isUuid(id)) return null;
  const { rows } = await db.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
  return rows[0] ? toJobRecord(rows[0]) : null;
}

export async function getJob(db: Queryable, id: string): Promise<JobRecord> {
  const job = await findJob(db, id);
  if (!job) throw notFound('job', id);
  return job;
}

export interface JobListQuery {
  page: number;
  limit: number;
  search?: string;
  /** Exact name: at most one job (names are unique). */
  name?: string;
  enabled?: boolean;
}

export async function listJobs(db: Queryable, q: JobListQuery): Promise<{ items: JobRecord[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.search) {
    params.push(`%${q.search.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
    where.push(`(name ILIKE $${params.length} OR coalesce(description, '') ILIKE $${params.length})`);
  }
  if (q.name !== undefined) {
    params.push(q.name);
    where.push(`name = $${params.length}`);
  }
  if (q.enabled !== undefined) {
    params.push(q.enabled);
    where.push(`enabled = $${params.length}`);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs ${w}`, params)).rows[0].n;
  const { rows } = await db.query<JobRow>(`SELECT * FROM jobs ${w} ORDER BY name LIMIT $${params.length + 1} OFFSET $${params.length + 2}`, [
    ...params,
    q.limit,
    (q.page - 1) * q.limit,
  ]);
  return { items: rows.map(toJobRecord), total };
}

export async function updateJob(db: Queryable, id: string, def: JobDefinition, actor: string | null): Promise<JobRecord> {
  if (!isUuid(id)) throw notFound('job', id);
  const existing = await jobIdNamed(db, def.name, id);
  if (existing) throw nameTaken(def.name, existing);
  try {
    const { rows } = await db.query<JobRow>(
      `UPDATE jobs SET name = $2, description = $3, definition = $4, enabled = $5,
              version = version + 1, updated_at = now(), updated_by = $6
       WHERE id = $1 RETURNING *`,
      [id, def.name, def.description, JSON.stringify(def), def.enabled, actor],
    );
    if (!rows[0]) throw notFound('job', id);
    return toJobRecord(rows[0]);
  } catch (err) {
    throw conflictOnName(err, def.name);
  }
}

export async function setJobEnabled(db: Queryable, id: string, enabled: boolean, actor: string | null): Promise<JobRecord> {
  if (!isUuid(id)) throw notFound('job', id);
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs SET enabled = $2, definition = jsonb_set(definition, '{enabled}', to_jsonb($2::boolean)),
            version = version + 1, updated_at = now(), updated_by = $3
     WHERE id = $1 RETURNING *`,
    [id, enabled, actor],
  );
  if (!rows[0]) throw notFound('job', id);
  return toJobRecord(rows[0]);
}

export async function deleteJob(db: Queryable, id: string): Promise<JobRecord> {
  if (!isUuid(id)) throw notFound('job', id);
  const { rows } = await db.query<JobRow>('DELETE FROM jobs WHERE id = $1 RETURNING *', [id]);
  if (!rows[0]) throw notFound('job', id);
  return toJobRecord(rows[0]);
}
