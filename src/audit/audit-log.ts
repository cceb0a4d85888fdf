import type { Queryable } from '../db/database.ts';
import type { Principal } from '../auth/roles.ts';

export type AuditOutcome = 'success' | 'failure' | 'denied' | 'alert';

export interface AuditEntry {
  actor?: Principal | null;
  /** Who acted when there is no token, e.g. 'scheduler', 'webhook', 'cli'. */
  actorName?: string;
  action: string;
  resourceType?: string | null;
  resourceId?: string | null;
  outcome: AuditOutcome;
  statusCode?: number | null;
  details?: unknown;
  ip?: string | null;
  requestId?: string | null;
  /** writeAggregatedAudit: what rows are counted together besides the action (default: the source address `ip`). */
  aggregateBy?: string;
}

export async function writeAudit(db: Queryable, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log
       (actor_id, actor_name, actor_role, action, resource_type, resource_id, outcome, status_code, details, ip, request_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      e.actor?.id ?? null,
      e.actor?.name ?? e.actorName ?? null,
      e.actor?.role ?? null,
      e.action,
      e.resourceType ?? null,
      e.resourceId ?? null,
      e.outcome,
      e.statusCode ?? null,
      e.details === undefined ? null : JSON.stringify(e.details),
      e.ip ?? null,
      e.requestId ?? null,
    ],
  );
}

/**
 * One audit row per action, source address, outcome and minute, with a count in `details.count`:
 * for anonymous calls that were refused (bad webhook signatures, missing tokens), so a flood of
 * them costs one row a minute instead of one per call. Cluster-wide (a unique key in the table).
 * `aggregateBy` counts by something else than the address (a module's denied host calls: its id).
 */
export async function writeAggregatedAudit(db: Queryable, e: AuditEntry): Promise<void> {
  const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
  const key = [e.action, e.aggregateBy ?? e.ip ?? '', e.outcome, e.statusCode ?? '', minute].join('|');
  await db.query(
    `INSERT INTO audit_log
       (actor_name, action, resource_type, resource_id, outcome, status_code, details, ip, request_id, aggregate_key)
     VALUES ($1, $2, $3, $4, $5, $6,
             jsonb_build_object('aggregated', true, 'count', 1, 'minute', $7::text, 'last_resource_id', $4::text, 'last', $8::jsonb),
             $9, $10, $11)
     ON CONFLICT (aggregate_key) WHERE aggregate_key IS NOT NULL DO UPDATE
       SET details = audit_log.details
             || jsonb_build_object('count', (audit_log.details ->> 'count')::int + 1, 'last_resource_id', $4::text, 'last', $8::jsonb)`,
    [
      e.actorName ?? 'anonymous',
      e.action,
      e.resourceType ?? null,
      e.resourceId ?? null,
      e.outcome,
      e.statusCode ?? null,
      minute,
      e.details === undefined ? null : JSON.stringify(e.details),
      e.ip ?? null,
      e.requestId ?? null,
      key,
    ],
  );
}

export interface AuditQuery {
  page: number;
  limit: number;
  action?: string;
  actor?: string;
  resourceType?: string;
  resourceId?: string;
  outcome?: AuditOutcome;
  /** Entries at or after this instant. */
  since?: Date;
  /** Entries before this instant. */
  until?: Date;
}

export interface AuditRecord {
  id: number;
  at: string;
  actor: { id: string | null; name: string | null; role: string | null };
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  outcome: AuditOutcome;
  status_code: number | null;
  details: unknown;
  ip: string | null;
  request_id: string | null;
}

export async function queryAudit(db: Queryable, q: AuditQuery): Promise<{ items: AuditRecord[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (q.action) add('action = ?', q.action);
  if (q.actor) add('actor_name = ?', q.actor);
  if (q.resourceType) add('resource_type = ?', q.resourceType);
  if (q.resourceId) add('resource_id = ?', q.resourceId);
  if (q.outcome) add('outcome = ?', q.outcome);
  if (q.since) add('at >= ?', q.since);
  if (q.until) add('at < ?', q.until);
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log ${w}`, params)).rows[0].n;
  const { rows } = await db.query<any>(`SELECT * FROM audit_log ${w} ORDER BY id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`, [
    ...params,
    q.limit,
    (q.page - 1) * q.limit,
  ]);
  return {
    total,
    items: rows.map((r) => ({
      id: Number(r.id),
      at: r.at.toISOString(),
      actor: { id: r.actor_id, name: r.actor_name, role: r.actor_role },
      action: r.action,
      resource_type: r.resource_type,
      resource_id: r.resource_id,
      outcome: r.outcome,
      status_code: r.status_code,
      details: r.details,
      ip: r.ip,
      request_id: r.request_id,
    })),
  };
}
