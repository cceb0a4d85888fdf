import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.ts';
import type { Config } from '../config/index.ts';
import { secretKeyFor } from '../secrets/crypto.ts';
import { VecronError, notFound } from '../errors.ts';
import { isRole, ROLES, type Principal, type TokenRole } from './roles.ts';

/**
 * API tokens are random 256-bit strings shown once at creation. Only HMAC-SHA256(token) is stored,
 * keyed with a key derived from the server's secret key (VECRON_SECRET_KEY or
 * `$VECRON_DATA_DIR/secret.key`): a copy of the database alone cannot even confirm a guessed token.
 * No part of a token (no prefix) is stored or shown; a token is known by its id and name.
 * A fast MAC is enough: the tokens have full entropy, so there is nothing to brute-force.
 */
export type TokenKey = Buffer;

/** The token-hashing key, derived from the 32-byte secret key (see src/secrets/crypto.ts). */
export function tokenKeyFrom(secretKey: Buffer): TokenKey {
  return Buffer.from(hkdfSync('sha256', secretKey, 'vecron-api-tokens-v1', 'vecron API token HMAC key', 32));
}

const keys = new WeakMap<object, TokenKey>();
/** The token key of a process's configuration (derived once). */
export function tokenKeyFor(config: Config): TokenKey {
  let k = keys.get(config);
  if (!k) keys.set(config, (k = tokenKeyFrom(secretKeyFor(config))));
  return k;
}

export const hashToken = (key: TokenKey, token: string): string => createHmac('sha256', key).update(token).digest('hex');
/** The hash of tokens stored before migration 010 (rewritten as HMAC on their next use). */
const legacyHash = (token: string): string => createHash('sha256').update(token).digest('hex');

export interface TokenInfo {
  id: string;
  name: string;
  role: TokenRole;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

interface TokenRow {
  id: string;
  name: string;
  role: TokenRole;
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
  key: TokenKey,
  opts: { name: string; role: TokenRole; createdBy?: string | null },
): Promise<TokenInfo & { token: string }> {
  const role = checkRole(opts.role);
  const name = opts.name?.trim();
  if (!name) throw new VecronError('validation_failed', 'token name must not be empty');
  const token = `vcr_${randomBytes(32).toString('base64url')}`;
  const { rows } = await db.query<TokenRow>(
    `INSERT INTO api_tokens (name, role, token_hash, hash_scheme, created_by)
     VALUES ($1, $2, $3, 'hmac-sha256', $4) RETURNING *`,
    [name, role, hashToken(key, token), opts.createdBy ?? null],
  );
  return { ...toInfo(rows[0]), token };
}

/** Makes sure an admin token with exactly `token` exists and is not revoked (VECRON_BOOTSTRAP_TOKEN). */
export async function ensureBootstrapToken(db: Queryable, key: TokenKey, token: string): Promise<void> {
  // A row stored before migration 010 (plain SHA-256) is brought to HMAC first, so it is not doubled.
  await db.query(`UPDATE api_tokens SET token_hash = $1, hash_scheme = 'hmac-sha256' WHERE hash_scheme = 'sha256' AND token_hash = $2`, [
    hashToken(key, token),
    legacyHash(token),
  ]);
  await db.query(
    `INSERT INTO api_tokens (name, role, token_hash, hash_scheme, created_by)
     VALUES ('bootstrap', 'admin', $1, 'hmac-sha256', 'VECRON_BOOTSTRAP_TOKEN')
     ON CONFLICT (token_hash) DO UPDATE SET revoked_at = NULL, role = 'admin'`,
    [hashToken(key, token)],
  );
}

/**
 * `last_used_at` is written at most once per this many seconds per token. Before, every request
 * updated its token's row: a write and a commit per request, and every concurrent request with
 * the same token queued on that row's lock, which held the whole API near 200 requests/s
 * (bench/api.ts). Now a request reads; the row is written on first use, then when its time is
 * older than this, so `last_used_at` is exact to this resolution.
 */
export const LAST_USED_RESOLUTION_SECONDS = 60;

/** Returns who holds `token`, or null when it is unknown or revoked (checked on every call). */
export async function authenticate(db: Queryable, key: TokenKey, token: string): Promise<Principal | null> {
  const hmac = hashToken(key, token);
  const { rows } = await db.query<{ id: string; name: string; role: TokenRole; write: boolean }>(
    `SELECT id, name, role,
            hash_scheme = 'sha256' OR last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $3) AS write
       FROM api_tokens
      WHERE revoked_at IS NULL
        AND ((hash_scheme = 'hmac-sha256' AND token_hash = $1) OR (hash_scheme = 'sha256' AND token_hash = $2))`,
    [hmac, legacyHash(token), LAST_USED_RESOLUTION_SECONDS],
  );
  const row = rows[0];
  if (!row) return null;
  if (row.write) {
    // A token stored before migration 010 (plain SHA-256) is rewritten as HMAC on its first use.
    // The conditions again: of concurrent requests at the turn of the interval, one writes.
    await db.query(
      `UPDATE api_tokens SET last_used_at = now(), token_hash = $2, hash_scheme = 'hmac-sha256'
        WHERE id = $1 AND (hash_scheme = 'sha256' OR last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $3))`,
      [row.id, hmac, LAST_USED_RESOLUTION_SECONDS],
    );
  }
  return { id: row.id, name: row.name, role: row.role };
}

export async function listTokens(db: Queryable): Promise<TokenInfo[]> {
  const { rows } = await db.query<TokenRow>('SELECT * FROM api_tokens ORDER BY created_at, id');
  return rows.map(toInfo);
}

export async function revokeToken(db: Queryable, id: string): Promise<TokenInfo> {
  const { rows } = await db.query<TokenRow>(`UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id::text = $1 RETURNING *`, [id]);
  if (!rows[0]) throw notFound('token', id);
  return toInfo(rows[0]);
}
