const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a syntactically valid UUID; lets lookups answer 404 instead of a cast error. */
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID_RE.test(s);

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
