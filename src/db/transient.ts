/**
 * Which database errors are worth retrying: the connection is gone or not yet back (a restart,
 * a failover, a network cut), the server is refusing connections for a moment, or the statement
 * lost a serialization race. Anything else (a constraint, a syntax error) fails the same way again.
 */
const TRANSIENT_SQLSTATE_CLASSES = ['08', '57P', '53']; // connection exception, operator intervention, insufficient resources
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03']); // serialization failure, deadlock, lock not available
const TRANSIENT_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /client has encountered a connection error/i,
  /connection (?:is )?(?:closed|ended)/i,
  /the database system is (?:starting up|shutting down|in recovery mode)/i,
  /terminating connection/i,
  /query read timeout/i,
];

export function isTransientDbError(err: unknown): boolean {
  for (let e: any = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_ERRNOS.has(code)) return true;
    if (code.length === 5 && TRANSIENT_SQLSTATE_CLASSES.some((c) => code.startsWith(c))) return true;
    const msg = typeof e.message === 'string' ? e.message : '';
    if (/cannot use a pool after calling end/i.test(msg)) return false; // this process closed it
    if (TRANSIENT_MESSAGES.some((re) => re.test(msg))) return true;
    if (Array.isArray(e.errors) && e.errors.some((x: unknown) => isTransientDbError(x))) return true; // AggregateError (dual-stack connect)
  }
  return false;
}

/** A short text for logs and /health: the SQLSTATE or errno, and the message. */
export function describeDbError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] };
  const msg =
    typeof e?.message === 'string' && e.message ? e.message : Array.isArray(e?.errors) && e.errors.length ? describeDbError(e.errors[0]) : String(err);
  return typeof e?.code === 'string' && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}
