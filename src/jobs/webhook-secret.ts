/**
 * Webhook HMAC secrets live encrypted in `job_webhook_secrets`, never in the job definition (which
 * GET returns and executions snapshot). The definition only says `webhook.has_secret: true`.
 */
import type { Queryable } from '../db/database.ts';
import { decryptSecret, encryptSecret } from '../secrets/crypto.ts';
import { toJobRecord, type JobRecord } from './repository.ts';
import type { JobDefinition, WebhookSettings } from './types.ts';

/** The webhook settings as stored: the secret replaced by a flag. */
export type StoredWebhookSettings = Omit<WebhookSettings, 'secret'> & { has_secret?: boolean };

/**
 * Takes `webhook.secret` out of a validated job document. The returned definition has
 * `webhook.has_secret: true` when a secret was given; an incoming `has_secret` (from a GET result
 * sent back) is dropped, since the server keeps that flag itself (see applyWebhookSecret).
 */
export function extractWebhookSecret(def: JobDefinition): { def: JobDefinition; secret: string | null } {
  if (!def.webhook || typeof def.webhook !== 'object') return { def, secret: null };
  const { secret, has_secret: _ignored, ...rest } = def.webhook as WebhookSettings & { has_secret?: unknown };
  const webhook: StoredWebhookSettings = typeof secret === 'string' ? { ...rest, has_secret: true } : { ...rest };
  return { def: { ...def, webhook: webhook as WebhookSettings }, secret: typeof secret === 'string' ? secret : null };
}

/** Stores (or replaces) a job's webhook secret, encrypted with `key`. */
export async function storeWebhookSecret(tx: Queryable, key: Buffer, jobId: string, secret: string): Promise<void> {
  await tx.query(
    `INSERT INTO job_webhook_secrets (job_id, encrypted_secret) VALUES ($1, $2)
     ON CONFLICT (job_id) DO UPDATE SET encrypted_secret = EXCLUDED.encrypted_secret, created_at = now()`,
    [jobId, encryptSecret(key, secret)],
  );
}

/** A job's webhook secret in clear, or null when it has none. */
export async function loadWebhookSecret(db: Queryable, key: Buffer, jobId: string): Promise<string | null> {
  const { rows } = await db.query<{ encrypted_secret: string }>('SELECT encrypted_secret FROM job_webhook_secrets WHERE job_id = $1', [jobId]);
  return rows[0] ? decryptSecret(key, rows[0].encrypted_secret) : null;
}

/**
 * Makes the stored definition's `webhook.has_secret` tell whether the job has a stored secret
 * (`webhook` becomes `{has_secret: true}` when it was null but a secret exists). Does not change
 * the job's version: the flag is derived state. Returns the job as now stored.
 */
export async function syncWebhookSecretFlag(tx: Queryable, jobId: string): Promise<JobRecord | null> {
  const { rows } = await tx.query<any>(
    `WITH s AS (SELECT EXISTS (SELECT 1 FROM job_webhook_secrets WHERE job_id = $1) AS has)
     UPDATE jobs SET definition = jsonb_set(
         definition, '{webhook}',
         coalesce(CASE WHEN jsonb_typeof(definition -> 'webhook') = 'object' THEN definition -> 'webhook' END, '{}'::jsonb)
           || jsonb_build_object('has_secret', s.has))
     FROM s
     WHERE id = $1 AND (s.has OR jsonb_typeof(definition -> 'webhook') = 'object')
     RETURNING jobs.*`,
    [jobId],
  );
  return rows[0] ? toJobRecord(rows[0]) : null;
}

/**
 * For the job create/update routes, inside the transaction that wrote `job`: stores the secret
 * taken out by extractWebhookSecret (when one was given; otherwise an earlier secret stays) and
 * returns the job with an accurate `webhook.has_secret`.
 */
export async function applyWebhookSecret(tx: Queryable, key: Buffer, job: JobRecord, secret: string | null): Promise<JobRecord> {
  if (secret !== null) await storeWebhookSecret(tx, key, job.id, secret);
  return (await syncWebhookSecretFlag(tx, job.id)) ?? job;
}
