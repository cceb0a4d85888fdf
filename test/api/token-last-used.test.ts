/**
 * Authentication reads; it writes a token's row only when there is something to record
 * (src/auth/tokens.ts authenticate): the first use, a `last_used_at` older than
 * LAST_USED_RESOLUTION_SECONDS, or a token stored before migration 010 (rewritten as HMAC).
 * Every request still sees a revocation at once. The times are set in the database, not waited for.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { hashToken, LAST_USED_RESOLUTION_SECONDS, tokenKeyFor } from '../../src/auth/tokens.ts';
import { API_ONLY } from './support.ts';

describe('API tokens: last use is recorded to a resolution, without a write per request', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('pglite', API_ONLY);
  });
  after(async () => {
    await t?.close();
  });

  const row = async (id: string) =>
    (
      await t.app.db.query<{ last_used_at: Date | null; hash_scheme: string; token_hash: string }>(
        'SELECT last_used_at, hash_scheme, token_hash FROM api_tokens WHERE id = $1',
        [id],
      )
    ).rows[0];
  const idOf = async (name: string) => (await t.app.db.query<{ id: string }>('SELECT id FROM api_tokens WHERE name = $1', [name])).rows[0].id;
  const setLastUsed = (id: string, secondsAgo: number) =>
    t.app.db.query(`UPDATE api_tokens SET last_used_at = now() - make_interval(secs => $2) WHERE id = $1`, [id, secondsAgo]);

  it('the first use records it; uses within the resolution leave it; a use after it records it again', async () => {
    const token = await t.token('viewer', 'last-used-bot');
    const id = await idOf('last-used-bot');
    assert.equal((await row(id)).last_used_at, null);
    assert.equal((await t.api('GET', '/api/v1/jobs', { token })).status, 200);
    assert.ok((await row(id)).last_used_at, 'the first use is recorded');

    await setLastUsed(id, LAST_USED_RESOLUTION_SECONDS / 2);
    const within = (await row(id)).last_used_at!.getTime();
    for (let i = 0; i < 3; i++) assert.equal((await t.api('GET', '/api/v1/jobs', { token })).status, 200);
    assert.equal((await row(id)).last_used_at!.getTime(), within, 'not written again within the resolution');

    await setLastUsed(id, LAST_USED_RESOLUTION_SECONDS * 2);
    const old = (await row(id)).last_used_at!.getTime();
    assert.equal((await t.api('GET', '/api/v1/jobs', { token })).status, 200);
    assert.ok((await row(id)).last_used_at!.getTime() > old, 'written again once older than the resolution');
  });

  it('a revoked token is refused on its next request, right after a successful one', async () => {
    const token = await t.token('viewer', 'revoked-bot');
    const id = await idOf('revoked-bot');
    assert.equal((await t.api('GET', '/api/v1/jobs', { token })).status, 200);
    assert.equal((await t.api('DELETE', `/api/v1/tokens/${id}`)).status, 200);
    const r = await t.api('GET', '/api/v1/jobs', { token });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'unauthorized');
  });

  it('a token stored before migration 010 (plain SHA-256) works and is rewritten as HMAC on first use', async () => {
    const value = `vec_${randomBytes(24).toString('hex')}`;
    const legacy = createHash('sha256').update(value).digest('hex');
    const { rows } = await t.app.db.query<{ id: string }>(
      `INSERT INTO api_tokens (name, role, token_hash, hash_scheme) VALUES ('legacy-bot', 'viewer', $1, 'sha256') RETURNING id`,
      [legacy],
    );
    assert.equal((await t.api('GET', '/api/v1/jobs', { token: value })).status, 200);
    const after = await row(rows[0].id);
    assert.equal(after.hash_scheme, 'hmac-sha256');
    assert.equal(after.token_hash, hashToken(tokenKeyFor(t.app.config), value));
    assert.equal((await t.api('GET', '/api/v1/jobs', { token: value })).status, 200, 'and works as HMAC after');
  });
});
