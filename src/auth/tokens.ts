import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.ts';
import { VecronError, notFound } from '../errors.ts';
import { isRole, ROLES, type Principal, type TokenRole } from './roles.ts';

/**
 * API tokens are random 256-bit strings shown once at creation; only their SHA-256 is stored.
 * A fast hash is enough here: the tokens have full entropy, so there is nothing to brute-force.
 */
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export interface TokenInfo {
  id: string;
  name: string;
  role: TokenRole;
  prefix: string;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

interface TokenRow {
  id: string;
  name: string;
  role: TokenRole;
  prefix: string;
  created_at: Date;
  created_by: string | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
const toInfo = (r: TokenRow): TokenInfo => ({
  id: r.id,
  name: r.name,
  role: r.role,
  prefix: r.prefix,
  created_at: r.created_at.toISOString(),
  created_by: r.created_by,
  last_used_at: iso(r.last_used_at),
  revoked_at: iso(r.revoked_at),
});

function checkRole(role: unknown): TokenRole {
  if (!isRole(role)) {
    throw new VecronError('validation_failed', `role must be one of ${ROLES.join(', ')}; got '${String(role)}'`);
  }
  return role;
}

export async function createToken(
  db: Queryable,
  opts: { name: string; role: TokenRole; createdBy?: string | null },
): Promise<TokenInfo & { token: string }> {
  const role = checkRole(opts.role);
  const name = opts.name?.trim();
  if (!name) throw new VecronError('validation_failed', 'token name must not be empty');
  const token = `vcr_${randomBytes(32).toString('base64url')}`;
  const { rows } = await db.query<TokenRow>(
    `INSERT INTO api_tokens (name, role, token_hash, prefix, created_by)
     VALUES ($1, $2, $3, $4, $5) RETURNING *`,
    [name, role, hashToken(token), token.slice(0, 10), opts.createdBy ?? null],
  );
  return { ...toInfo(rows[0]), token };
}

/** Makes sure an admin token with exactly `token` exists and is not revoked (VECRON_BOOTSTRAP_TOKEN). */
export async function ensureBootstrapToken(db: Queryable, token: string): Promise<void> {
  await db.query(
    `INSERT INTO api_tokens (name, role, token_hash, prefix, created_by)
     VALUES ('bootstrap', 'admin', $1, $2, 'VECRON_BOOTSTRAP_TOKEN')
     ON CONFLICT (token_hash) DO UPDATE SET revoked_at = NULL, role = 'admin'`,
    [hashToken(token), token.slice(0, 10)],
  );
}

/** Returns who holds `token`, or null when it is unknown or revoked. */
export async function authenticate(db: Queryable, token: string): Promise<Principal | null> {
  const { rows } = await db.query<{ id: string; name: string; role: TokenRole }>(
    `UPDATE api_tokens SET last_used_at = now()
     WHERE token_hash = $1 AND revoked_at IS NULL
     RETURNING id, name, role`,
    [hashToken(token)],
  );
  return rows[0] ?? null;
}

export async function listTokens(db: Queryable): Promise<TokenInfo[]> {
  const { rows } = await db.query<TokenRow>('SELECT * FROM api_tokens ORDER BY created_at, id');
  return rows.map(toInfo);
}

export async function revokeToken(db: Queryable, id: string): Promise<TokenInfo> {
  const { rows } = await db.query<TokenRow>(
    `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id::text = $1 RETURNING *`,
    [id],
  );
  if (!rows[0]) throw notFound('token', id);
  return toInfo(rows[0]);
}
