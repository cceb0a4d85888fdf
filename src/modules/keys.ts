/** Trusted Ed25519 public keys of module authors (admin-managed; revoked keys are kept for the record). */
import type { Queryable } from '../db/database.ts';
import { VecronError, notFound } from '../errors.ts';
import { iso, isUuid } from '../ids.ts';
import { parsePublicKey } from './signatures.ts';

export interface AuthorKey {
  id: string;
  author: string;
  public_key: string;
  description: string | null;
  created_at: string;
  created_by: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
}

const AUTHOR = /^[^\u0000-\u001f]{1,255}$/;

function toKey(r: any): AuthorKey {
  return {
    id: r.id,
    author: r.author,
    public_key: r.public_key,
    description: r.description,
    created_at: iso(r.created_at)!,
    created_by: r.created_by,
    revoked_at: iso(r.revoked_at),
    revoked_by: r.revoked_by,
  };
}

export function checkAuthor(author: unknown, path = 'author'): string {
  if (typeof author !== 'string' || !AUTHOR.test(author.trim())) {
    throw new VecronError('validation_failed', `${path} must be 1-255 printable characters`, {
      problems: [{ path, message: 'must be 1-255 printable characters' }],
    });
  }
  return author.trim();
}

export async function addAuthorKey(
  db: Queryable,
  input: { author: string; public_key: string; description?: string | null },
  actor: string | null,
): Promise<AuthorKey> {
  const author = checkAuthor(input.author);
  const key = parsePublicKey(input.public_key);
  try {
    const { rows } = await db.query(`INSERT INTO wasm_author_keys (author, public_key, description, created_by) VALUES ($1, $2, $3, $4) RETURNING *`, [
      author,
      key,
      input.description ?? null,
      actor,
    ]);
    return toKey(rows[0]);
  } catch (err) {
    if ((err as { code?: string }).code === '23505') {
      const { rows } = await db.query<any>('SELECT author, revoked_at FROM wasm_author_keys WHERE public_key = $1', [key]);
      const other = rows[0];
      throw new VecronError(
        'conflict',
        other?.revoked_at
          ? `this public key was registered for '${other.author}' and revoked; a revoked key cannot be registered again`
          : `this public key is already registered for '${other?.author ?? 'another author'}'`,
      );
    }
    throw err;
  }
}

export async function listAuthorKeys(db: Queryable, q: { author?: string; includeRevoked?: boolean }): Promise<AuthorKey[]> {
  const { rows } = await db.query(
    `SELECT * FROM wasm_author_keys
     WHERE ($1::text IS NULL OR author = $1) AND ($2::boolean OR revoked_at IS NULL)
     ORDER BY author, created_at, id`,
    [q.author ?? null, q.includeRevoked ?? false],
  );
  return rows.map(toKey);
}

/** Keys that may verify an upload by `author` now. */
export async function activeKeysOf(db: Queryable, author: string): Promise<AuthorKey[]> {
  return listAuthorKeys(db, { author });
}

export async function revokeAuthorKey(db: Queryable, id: string, actor: string | null): Promise<AuthorKey> {
  if (!isUuid(id)) throw notFound('key', id);
  const { rows } = await db.query(
    `UPDATE wasm_author_keys SET revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, $2)
     WHERE id = $1 RETURNING *`,
    [id, actor],
  );
  if (!rows[0]) throw notFound('key', id);
  return toKey(rows[0]);
}
