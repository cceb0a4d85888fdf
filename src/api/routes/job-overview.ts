import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { page, pageQuery } from '../schemas.ts';
import { EXECUTION_STATUSES } from '../../executions/history.ts';
import { SCHEDULE_TYPES, type Schedule } from '../../jobs/types.ts';
import { firstFireTime } from '../../scheduler/next-fire.ts';

interface OverviewRow {
  id: string;
  name: string;
  description: string | null;
  enabled: boolean;
  version: number;
  schedule: Schedule | null;
  step_types: string[];
  updated_at: Date;
  next_fire_at: Date | null;
  last_status: string | null;
  last_run_at: Date | null;
}

/**
 * One row per job with what a list needs beside the definition: the next fire time the scheduler
 * planned, the last execution's status. Filters: search (name, description), enabled, schedule
 * type (`none` = no schedule), last status (`never` = never run).
 */
export async function jobOverviewRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/api/v1/overview/jobs',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['jobs'],
        summary: 'Jobs with their next fire time and last execution status',
        description:
          "`next_fire_at` is the scheduler's plan; for an enabled job the scheduler has not planned yet it is computed from the schedule " +
          '(`next_fire_source`: scheduler | computed). Filters: `search`, `enabled`, `schedule_type` (cron, fixed_rate, fixed_delay, once, none), ' +
          '`last_status` (an execution status or never).',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            search: { type: 'string', maxLength: 200 },
            enabled: { type: 'boolean' },
            schedule_type: { type: 'string', enum: [...SCHEDULE_TYPES, 'none'] },
            last_status: { type: 'string', enum: [...EXECUTION_STATUSES, 'never'] },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { page: number; limit: number; search?: string; enabled?: boolean; schedule_type?: string; last_status?: string };
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: (n: string) => string, v: unknown) => {
        params.push(v);
        where.push(sql(`$${params.length}`));
      };
      if (q.search) add((n) => `(j.name ILIKE ${n} OR coalesce(j.description, '') ILIKE ${n})`, `%${q.search.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
      if (q.enabled !== undefined) add((n) => `j.enabled = ${n}`, q.enabled);
      if (q.schedule_type) add((n) => `coalesce(j.definition->'schedule'->>'type', 'none') = ${n}`, q.schedule_type);
      if (q.last_status) add((n) => `coalesce(l.status, 'never') = ${n}`, q.last_status);
      const from = `FROM jobs j
      LEFT JOIN schedules s ON s.job_id = j.id
      LEFT JOIN LATERAL (SELECT e.status, e.created_at FROM executions e WHERE e.job_id = j.id ORDER BY e.created_at DESC LIMIT 1) l ON true
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`;
      const total = (await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n ${from}`, params)).rows[0].n;
      const { rows } = await ctx.db.query<OverviewRow & { planned: boolean }>(
        `SELECT j.id, j.name, j.description, j.enabled, j.version, j.updated_at,
              CASE WHEN jsonb_typeof(j.definition->'schedule') = 'object' THEN j.definition->'schedule' END AS schedule,
              ARRAY(SELECT jsonb_array_elements(j.definition->'steps')->>'type') AS step_types,
              s.next_fire_at, s.job_id IS NOT NULL AND s.job_version = j.version AS planned,
              l.status AS last_status, l.created_at AS last_run_at
       ${from} ORDER BY j.name LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, q.limit, (q.page - 1) * q.limit],
      );
      const now = new Date();
      const items = rows.map((r) => {
        let next = r.next_fire_at;
        let source: 'scheduler' | 'computed' | null = r.planned ? 'scheduler' : null;
        if (!r.planned && r.enabled && r.schedule && r.schedule.type !== 'fixed_delay') {
          next = firstFireTime(r.schedule, now);
          source = 'computed';
        }
        if (!r.enabled) next = null;
        return {
          id: r.id,
          name: r.name,
          description: r.description,
          enabled: r.enabled,
          version: r.version,
          schedule: r.schedule,
          step_types: r.step_types,
          updated_at: r.updated_at.toISOString(),
          next_fire_at: next ? next.toISOString() : null,
          next_fire_source: next ? source : null,
          last_status: r.last_status,
          last_run_at: r.last_run_at ? r.last_run_at.toISOString() : null,
        };
      });
      return page(items, total, q);
    },
  );
}
