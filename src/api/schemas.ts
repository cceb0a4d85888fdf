import type { ExecutionStatus } from '../executions/history.ts';

/** JSON schemas shared by routes (validation and the OpenAPI document). */
export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: {},
      },
      required: ['code', 'message'],
    },
  },
} as const;

export const pageQuery = {
  // Bounded: an unbounded page (1e20) overflowed the OFFSET computation into a 500.
  page: { type: 'integer', minimum: 1, maximum: 100_000, default: 1 },
  limit: { type: 'integer', minimum: 1, maximum: 200, default: 20 },
} as const;

export const idParams = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id'],
} as const;

export const errorResponses = {
  400: errorSchema,
  401: errorSchema,
  403: errorSchema,
  404: errorSchema,
  409: errorSchema,
} as const;

export function page<T>(items: T[], total: number, q: { page: number; limit: number }) {
  return { items, total, page: q.page, limit: q.limit };
}

/** `?status=failed,dead_lettered` -> ['failed', 'dead_lettered'] (checked by the repository). */
export function splitStatuses(s: string | undefined): ExecutionStatus[] | undefined {
  return s
    ? (s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean) as ExecutionStatus[])
    : undefined;
}
