import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';
import { validateJobDocument } from '../../jobs/validate.ts';
import { validationFailed } from '../../errors.ts';
import { parseCron } from '../../scheduler/cron.ts';
import { fireTimes } from '../../scheduler/next-fire.ts';
import type { Schedule } from '../../jobs/types.ts';

const MAX_COUNT = 100;

/** `2026-12-01T08:30:00+07:00`: the instant as the clock on the wall of `timeZone` shows it. */
export function wallClock(d: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  const local = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  const offsetMin = Math.round((local - Math.floor(d.getTime() / 1000) * 1000) / 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const off = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${off}`;
}

/** Up to `count` fire times of a (valid) schedule strictly after `after`; fixed_delay has none ahead of time. */
export function previewFireTimes(schedule: Schedule, after: Date, count: number): Date[] {
  if (schedule.type === 'cron') return parseCron(schedule.expression, schedule.timezone).nextN(after, count);
  if (schedule.type === 'fixed_delay') return [];
  // fixed_rate counts from now (a saved job counts from when it was scheduled; the spacing is the same).
  const times = fireTimes(schedule, after);
  const out: Date[] = [];
  for (let t = times.next(after); t && out.length < count; t = times.next(t)) out.push(t);
  return out;
}

/**
 * The next fire times of a schedule, for the job page and the builder (which previews a schedule
 * before it is saved). A GET (it changes nothing, so it is not audited), the schedule's fields as
 * query parameters. The schedule is checked by the job validator, so its problems are the ones a save
 * would report, at the parameter they concern.
 */
export async function schedulePreviewRoutes(app: FastifyInstance, _ctx: ApiContext): Promise<void> {
  app.get(
    '/api/v1/schedules/preview',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['jobs'],
        summary: 'Preview the next fire times of a schedule',
        description:
          'Takes a schedule as in a job, its fields as query parameters (`type=cron&expression=0 30 6 ? * MON-FRI&timezone=Asia/Ho_Chi_Minh`; ' +
          '`type=fixed_rate&interval_seconds=`; `type=fixed_delay&delay_seconds=`; `type=once&at=`), and answers its next `count` (default 10) ' +
          "fire times after `after` (default now), each as a UTC instant and as the wall-clock time in the job's time zone (cron: its " +
          '`timezone`; others: UTC). `fixed_delay` has none: its next run is set when an execution ends. Problems are reported at the ' +
          'parameter they concern, with the messages a save of the job would give.',
        querystring: {
          type: 'object',
          required: ['type'],
          additionalProperties: false,
          properties: {
            type: { type: 'string', enum: ['cron', 'fixed_rate', 'fixed_delay', 'once'] },
            expression: { type: 'string', maxLength: 256 },
            timezone: { type: 'string', maxLength: 64 },
            interval_seconds: { type: 'integer' },
            delay_seconds: { type: 'integer' },
            at: { type: 'string', maxLength: 64 },
            count: { type: 'integer', minimum: 1, maximum: MAX_COUNT, default: 10 },
            after: { type: 'string', format: 'date-time' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['timezone', 'times'],
            properties: {
              timezone: { type: 'string' },
              times: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['at', 'local'],
                  properties: { at: { type: 'string', format: 'date-time' }, local: { type: 'string' } },
                },
              },
              note: { type: 'string' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const { count, after: afterParam, ...fields } = req.query as Record<string, unknown> & { count: number; after?: string };
      // A placeholder job around the schedule: the schedule gets exactly the checks a saved job gets.
      const probe = validateJobDocument({ name: 'preview', schedule: fields, steps: [{ id: 'p', type: 'http', config: { url: 'https://preview.invalid/' } }] });
      if (!probe.ok) {
        const own = probe.problems.filter((p) => p.path.startsWith('schedule')).map((p) => ({ path: p.path.replace(/^schedule\.?/, ''), message: p.message }));
        throw validationFailed(own.length ? own : probe.problems, 'schedule');
      }
      const schedule = probe.job.schedule!;
      const after = afterParam ? new Date(afterParam) : new Date();
      const timezone = schedule.type === 'cron' ? schedule.timezone : 'UTC';
      const times = previewFireTimes(schedule, after, count).map((d) => ({ at: d.toISOString(), local: wallClock(d, timezone) }));
      return {
        timezone,
        times,
        ...(schedule.type === 'fixed_delay' ? { note: `fixed_delay: each run starts ${schedule.delay_seconds} s after the previous one ends` } : {}),
      };
    },
  );
}
