/**
 * Stored variables: global ones and per-job ones. Secret values are encrypted at rest
 * (src/secrets/crypto.ts) and never leave this module except through loadRunVariables, which
 * decrypts them for an execution (and lists them so that the engine can mask them).
 */
import type { Queryable } from '../db/database.ts';
import { VecronError, validationFailed } from '../errors.ts';
import { decryptSecret, encryptSecret } from '../secrets/crypto.ts';
import { MASK, MIN_MASKED_LENGTH } from '../engine/masking.ts';

export const VARIABLE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export type VariableScope = 'global' | 'job';

/** A variable as the API shows it: secret values are always `***`. */
export interface VariableRecord {
  name: string;
  scope: VariableScope;
  job_id: string | null;
  secret: boolean;
  value: unknown;
  description: string | null;
  created_at: string;
  updated_at: string;
  updated_by: string | null;
}

interface VariableRow {
  name: string;
  scope: VariableScope;
  job_id: string | null;
  secret: boolean;
  value: unknown;
  encrypted_value: string | null;
  description: string | null;
  created_at: Date;
  updated_at: Date;
  updated_by: string | null;
}

const COLUMNS = 'name, scope, job_id, secret, value, description, created_at, updated_at, updated_by';

function toRecord(r: Omit<VariableRow, 'encrypted_value'>): VariableRecord {
  return {
    name: r.name,
    scope: r.scope,
    job_id: r.job_id,
    secret: r.secret,
    value: r.secret ? MASK : r.value,
    description: r.description,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    updated_by: r.updated_by,
  };
}

/** Throws validation_failed unless `name` is a valid variable name. */
export function checkVariableName(name: string): void {
  if (!VARIABLE_NAME_PATTERN.test(name)) {
    throw validationFailed(
      [{ path: 'name', message: 'must start with a letter or _ and contain only letters, digits and _ (at most 128 characters)' }],
      'variable name',
    );
  }
}

const scopeWhere = (jobId: string | null, first: number): string => (jobId === null ? 'job_id IS NULL' : `job_id = $${first}`);

/** Global variables (jobId null) or the variables of one job, by name. */
export async function listVariables(db: Queryable, jobId: string | null): Promise<VariableRecord[]> {
  const { rows } = await db.query<VariableRow>(`SELECT ${COLUMNS} FROM variables WHERE ${scopeWhere(jobId, 1)} ORDER BY name`, jobId === null ? [] : [jobId]);
  return rows.map(toRecord);
}

export async function getVariable(db: Queryable, jobId: string | null, name: string): Promise<VariableRecord | null> {
  const { rows } = await db.query<VariableRow>(
    `SELECT ${COLUMNS} FROM variables WHERE ${scopeWhere(jobId, 2)} AND name = $1`,
    jobId === null ? [name] : [name, jobId],
  );
  return rows[0] ? toRecord(rows[0]) : null;
}

export interface SetVariableInput {
  /** null: a global variable. */
  jobId: string | null;
  name: string;
  value: unknown;
  /** Omitted: keeps the flag of an existing variable (false for a new one). */
  secret?: boolean;
  /** Omitted: keeps the description of an existing variable. */
  description?: string | null;
  actor: string | null;
}

/**
 * Creates or replaces a variable. A secret value must be a string of at least 4 characters (shorter
 * ones could not be masked); it is stored encrypted with `key`.
 */
export async function setVariable(db: Queryable, key: Buffer, input: SetVariableInput): Promise<{ variable: VariableRecord; created: boolean }> {
  checkVariableName(input.name);
  const existing = await getVariable(db, input.jobId, input.name);
  const secret = input.secret ?? existing?.secret ?? false;
  if (input.value === undefined) throw validationFailed([{ path: 'value', message: 'is required' }], 'variable');
  if (secret) {
    if (typeof input.value !== 'string') {
      throw validationFailed([{ path: 'value', message: 'the value of a secret variable must be a string' }], 'variable');
    }
    if (input.value.length < MIN_MASKED_LENGTH) {
      throw validationFailed(
        [
          {
            path: 'value',
            message: `the value of a secret variable must be at least ${MIN_MASKED_LENGTH} characters long (shorter ones cannot be masked in outputs)`,
          },
        ],
        'variable',
      );
    }
  }
  const description = input.description === undefined ? (existing?.description ?? null) : input.description;
  const plain = secret ? null : JSON.stringify(input.value);
  const encrypted = secret ? encryptSecret(key, input.value as string) : null;
  const { rows } = await db.query<VariableRow & { inserted: boolean }>(
    `INSERT INTO variables (scope, job_id, name, value, secret, encrypted_value, description, updated_by)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
     ON CONFLICT ((coalesce(job_id, '00000000-0000-0000-0000-000000000000'::uuid)), name) DO UPDATE
       SET value = EXCLUDED.value, secret = EXCLUDED.secret, encrypted_value = EXCLUDED.encrypted_value,
           description = EXCLUDED.description, updated_by = EXCLUDED.updated_by, updated_at = now()
     RETURNING ${COLUMNS}, (xmax = 0) AS inserted`,
    [input.jobId === null ? 'global' : 'job', input.jobId, input.name, plain, secret, encrypted, description, input.actor],
  );
  const { inserted, ...row } = rows[0];
  return { variable: toRecord(row), created: inserted };
}

/** Deletes a variable; false when it did not exist. */
export async function deleteVariable(db: Queryable, jobId: string | null, name: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM variables WHERE ${scopeWhere(jobId, 2)} AND name = $1`, jobId === null ? [name] : [name, jobId]);
  return rowCount > 0;
}

/** Defines an own property even for the name "__proto__" (plain assignment would set the prototype). */
function put(target: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * The variables of one execution: global variables, overridden by the job document's `variables`,
 * overridden by the job's stored variables. Secret values are decrypted; `secrets` lists every
 * decrypted secret value (including overridden ones) for masking.
 */
export async function loadRunVariables(
  db: Queryable,
  key: Buffer,
  jobId: string,
  jobDocumentVariables: Record<string, unknown> | null | undefined,
): Promise<{ values: Record<string, unknown>; secrets: string[] }> {
  const { rows } = await db.query<RunVariableRow>(
    `SELECT name, job_id, secret, value, encrypted_value FROM variables
     WHERE job_id IS NULL OR job_id = $1
     ORDER BY (job_id IS NOT NULL), name`,
    [jobId],
  );
  return mergeRunVariables(rows, key, jobDocumentVariables);
}

/** The columns an execution needs (the queue's claim fetches them with the execution). */
export type RunVariableRow = Pick<VariableRow, 'name' | 'job_id' | 'secret' | 'value' | 'encrypted_value'>;

/** Merges fetched variable rows (global and the job's) with the job document's variables. */
export function mergeRunVariables(
  rows: RunVariableRow[],
  key: Buffer,
  jobDocumentVariables: Record<string, unknown> | null | undefined,
): { values: Record<string, unknown>; secrets: string[] } {
  const values: Record<string, unknown> = {};
  const secrets: string[] = [];
  const decrypt = (r: RunVariableRow): string => {
    try {
      return decryptSecret(key, r.encrypted_value ?? '');
    } catch (err) {
      const where = r.job_id ? `job variable '${r.name}'` : `global variable '${r.name}'`;
      throw new VecronError('internal', `${where}: ${(err as Error).message}`);
    }
  };
  const globals = rows.filter((r) => r.job_id === null);
  const jobScoped = rows.filter((r) => r.job_id !== null);
  for (const r of globals) {
    if (r.secret) {
      const v = decrypt(r);
      secrets.push(v);
      put(values, r.name, v);
    } else put(values, r.name, r.value);
  }
  for (const [name, value] of Object.entries(jobDocumentVariables ?? {})) put(values, name, value);
  for (const r of jobScoped) {
    if (r.secret) {
      const v = decrypt(r);
      secrets.push(v);
      put(values, r.name, v);
    } else put(values, r.name, r.value);
  }
  return { values, secrets };
}
