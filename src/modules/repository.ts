/** SQL for the module registry's tables (src/db/migrations/007_wasm_modules.sql). */
import type { Queryable } from '../db/database.ts';
import { VecronError, notFound } from '../errors.ts';
import { iso } from '../ids.ts';
import type { Permission } from './permissions.ts';
import { compareVersions, formatRef, isPreRelease, type ModuleRef } from './ref.ts';

/** What the upload checks found in the binary (stored with the module). */
export interface ModuleInfo {
  imports: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string; params?: string[]; results?: string[] }[];
  entries: { name: string; form: string }[];
  function_count: number;
  memory: { min_pages: number; max_pages: number | null; imported: boolean } | null;
  tables: { min: number; max: number | null }[];
  wasi: boolean;
  command: boolean;
}

export interface ModuleRow {
  id: string;
  name: string;
  version: string;
  description: string | null;
  author: string;
  minio_path: string;
  hash: string;
  size_bytes: string | number;
  signed_by_key: string | null;
  info: ModuleInfo;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
  created_by: string | null;
  /** Its own recording setting (migration 017; issue 20): null, the server's. */
  record_mode?: 'all' | 'failed' | 'off' | null;
}

/** The module as the API shows it (the seed's fields first). */
export interface ModuleView {
  id: string;
  name: string;
  version: string;
  minio_path: string;
  hash: string;
  size_bytes: number;
  created_at: string;
  updated_at: string;
  description: string | null;
  author: string;
  signed: boolean;
  signed_by_key: string | null;
  enabled: boolean;
  created_by: string | null;
}

export function toView(r: ModuleRow): ModuleView {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    minio_path: r.minio_path,
    hash: r.hash,
    size_bytes: Number(r.size_bytes),
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at)!,
    description: r.description,
    author: r.author,
    signed: r.signed_by_key !== null,
    signed_by_key: r.signed_by_key,
    enabled: r.enabled,
    created_by: r.created_by,
  };
}

export async function insertModule(db: Queryable, m: Omit<ModuleRow, 'created_at' | 'updated_at' | 'enabled'>): Promise<ModuleRow> {
  try {
    const { rows } = await db.query<ModuleRow>(
      `INSERT INTO wasm_modules (id, name, version, description, author, minio_path, hash, size_bytes, signed_by_key, info, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
      [m.id, m.name, m.version, m.description, m.author, m.minio_path, m.hash, m.size_bytes, m.signed_by_key, JSON.stringify(m.info), m.created_by],
    );
    return rows[0];
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw duplicateVersion(m.name, m.version);
    throw err;
  }
}

export const duplicateVersion = (name: string, version: string): VecronError =>
  new VecronError('conflict', `module '${name}' already has a version '${version}'; versions are immutable, upload a new version`, {
    name,
    version,
  });

export async function findModuleById(db: Queryable, id: string): Promise<ModuleRow | null> {
  const { rows } = await db.query<ModuleRow>('SELECT * FROM wasm_modules WHERE id = $1', [id]);
  return rows[0] ?? null;
}

/** Resolves a reference to a module row; a missing module is `not_found`, naming the reference. */
export async function findModuleByRef(db: Queryable, ref: ModuleRef): Promise<ModuleRow> {
  let row: ModuleRow | undefined;
  if (ref.kind === 'id') row = (await db.query<ModuleRow>('SELECT * FROM wasm_modules WHERE id = $1', [ref.id])).rows[0];
  else if (ref.kind === 'version') {
    row = (await db.query<ModuleRow>('SELECT * FROM wasm_modules WHERE name = $1 AND version = $2', [ref.name, ref.version])).rows[0];
  } else {
    const { rows } = await db.query<ModuleRow>('SELECT * FROM wasm_modules WHERE name = $1', [ref.name]);
    row = latestOf(rows);
  }
  if (!row) throw notFound('module', formatRef(ref));
  return row;
}

/**
 * What `name@latest` (and a bare `name`) runs: the highest release version, in semantic-version
 * order; the highest pre-release only while the name has no release. A pre-release (`3.0.0-rc.1`)
 * is uploaded to be tried by its exact version: were it "latest", every job naming the module
 * would run the candidate from its next fire time on (npm's `latest` and Cargo's `*` skip
 * pre-releases for the same reason). The newest upload breaks ties.
 */
export function latestOf<R extends { version: string; created_at: Date }>(rows: R[]): R | undefined {
  const releases = rows.filter((r) => !isPreRelease(r.version));
  const pool = releases.length ? releases : rows;
  return [...pool].sort((a, b) => compareVersions(b.version, a.version) || b.created_at.getTime() - a.created_at.getTime())[0];
}

export async function listModuleVersions(db: Queryable, name: string): Promise<ModuleRow[]> {
  return (await db.query<ModuleRow>('SELECT * FROM wasm_modules WHERE name = $1', [name])).rows;
}

export interface ModuleListQuery {
  page: number;
  limit: number;
  search?: string;
}

export async function listModules(db: Queryable, q: ModuleListQuery): Promise<{ items: ModuleView[]; total: number }> {
  const params: unknown[] = [];
  let where = '';
  if (q.search) {
    // % and _ in the search text are literal characters, not wildcards.
    params.push(`%${q.search.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
    where = `WHERE name ILIKE $1 OR description ILIKE $1 OR author ILIKE $1`;
  }
  const total = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM wasm_modules ${where}`, params)).rows[0].n);
  const { rows } = await db.query<ModuleRow>(
    `SELECT * FROM wasm_modules ${where} ORDER BY name, created_at DESC, id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, q.limit, (q.page - 1) * q.limit],
  );
  return { items: rows.map(toView), total };
}

export async function listPermissions(
  db: Queryable,
  moduleId: string,
): Promise<(Permission & { id: string; created_at: string; created_by: string | null })[]> {
  const { rows } = await db.query<any>(
    'SELECT id, permission_type, resource_pattern, created_at, created_by FROM wasm_module_permissions WHERE module_id = $1 ORDER BY seq',
    [moduleId],
  );
  return rows.map((r) => ({
    id: r.id,
    type: r.permission_type,
    resource_pattern: r.resource_pattern,
    created_at: iso(r.created_at)!,
    created_by: r.created_by,
  }));
}

/** Replaces (`replace`) or extends a module's permissions; an added permission it already has is not added twice. */
export async function writePermissions(db: Queryable, moduleId: string, perms: Permission[], actor: string | null, replace: boolean): Promise<void> {
  await db.query(
    `WITH gone AS (DELETE FROM wasm_module_permissions WHERE module_id = $1 AND $5::boolean RETURNING id)
     INSERT INTO wasm_module_permissions (module_id, permission_type, resource_pattern, created_by)
     SELECT $1, t, p, $4 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(t, p, n)
     WHERE $5::boolean OR NOT EXISTS (
       SELECT 1 FROM wasm_module_permissions x
       WHERE x.module_id = $1 AND x.permission_type = u.t AND x.resource_pattern IS NOT DISTINCT FROM u.p)
     ORDER BY u.n`,
    [moduleId, perms.map((p) => p.type), perms.map((p) => p.resource_pattern), actor, replace],
  );
  await db.query('UPDATE wasm_modules SET updated_at = now() WHERE id = $1', [moduleId]);
}

export interface ModuleStats {
  runs: number;
  failures: number;
  avg_duration_ms: number | null;
  avg_fuel_consumed: number | null;
  max_memory_used_bytes: number | null;
  last_run_at: string | null;
}

export async function moduleStats(db: Queryable, moduleId: string): Promise<ModuleStats> {
  const { rows } = await db.query<any>(
    `SELECT count(*) AS runs, count(*) FILTER (WHERE error IS NOT NULL) AS failures, avg(duration_ms) AS avg_duration_ms,
            avg(fuel_consumed) AS avg_fuel, max(memory_used_bytes) AS max_memory, max(created_at) AS last_run_at
     FROM wasm_execution_logs WHERE module_id = $1`,
    [moduleId],
  );
  const r = rows[0];
  const num = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000);
  return {
    runs: Number(r.runs),
    failures: Number(r.failures),
    avg_duration_ms: num(r.avg_duration_ms),
    avg_fuel_consumed: num(r.avg_fuel),
    max_memory_used_bytes: num(r.max_memory),
    last_run_at: iso(r.last_run_at),
  };
}

export async function deleteModuleRow(db: Queryable, id: string): Promise<boolean> {
  return (await db.query('DELETE FROM wasm_modules WHERE id = $1', [id])).rowCount > 0;
}
