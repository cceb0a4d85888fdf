import type { FastifyInstance } from 'fastify';
import { authenticate, tokenKeyFor } from '../auth/tokens.ts';
import { roleAllows } from '../auth/roles.ts';
import { writeAggregatedAudit, writeAudit, type AuditOutcome } from '../audit/audit-log.ts';
import { VecronError } from '../errors.ts';
import type { ApiContext } from './context.ts';

/**
 * Bearer-token authentication and role checks for every route, plus the audit trail of every
 * mutating call (who, what, when, outcome), including refused ones.
 */
export function installAuth(app: FastifyInstance, ctx: ApiContext): void {
  app.decorateRequest('principal', null);

  app.addHook('onRequest', async (req, reply) => {
    // Routes under /api/ that forgot to declare a role are admin-only: deny by default.
    const declared = req.routeOptions.config?.role;
    const need = declared ?? (req.url.startsWith('/api/') ? 'admin' : 'public');
    if (need === 'public') return;
    let header = req.headers.authorization;
    // Routes flagged queryToken (the SSE stream: EventSource cannot send headers) also accept ?access_token=.
    if (!header && req.routeOptions.config?.queryToken) {
      const t = (req.query as Record<string, unknown> | undefined)?.access_token;
      if (typeof t === 'string' && t !== '') header = `Bearer ${t}`;
    }
    if (!header) {
      reply.header('WWW-Authenticate', 'Bearer realm="vecron"');
      throw new VecronError('unauthorized', 'missing API token: send the header "Authorization: Bearer <token>"');
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      reply.header('WWW-Authenticate', 'Bearer realm="vecron", error="invalid_request"');
      throw new VecronError('unauthorized', 'the Authorization header must have the form "Bearer <token>"');
    }
    const principal = await authenticate(ctx.db, tokenKeyFor(ctx.config), m[1]);
    if (!principal) {
      reply.header('WWW-Authenticate', 'Bearer realm="vecron", error="invalid_token"');
      throw new VecronError('unauthorized', 'the API token is unknown or has been revoked');
    }
    req.principal = principal;
    if (!roleAllows(principal.role, need)) {
      throw new VecronError('forbidden', `this action needs the ${need} role; the token '${principal.name}' has the ${principal.role} role`);
    }
  });

  // onSend, not onResponse: the audit row is committed before the client gets its answer, so a
  // caller never sees a success whose audit entry is missing (nor loses it if the process dies).
  app.addHook('onSend', async (req, reply, payload) => {
    const audit = req.routeOptions.config?.audit;
    if (!audit) return payload;
    const status = reply.statusCode;
    const outcome: AuditOutcome = status < 400 ? 'success' : status === 401 || status === 403 ? 'denied' : 'failure';
    const params = req.params as Record<string, string> | undefined;
    // Refused anonymous calls (no or bad token, bad webhook signature, unknown id, throttled) are
    // counted in one row per source and minute: a flood of them must not flood the audit log.
    const write = !req.principal && status >= 400 ? writeAggregatedAudit : writeAudit;
    try {
      await write(ctx.db, {
        actor: req.principal,
        actorName: req.principal ? undefined : 'anonymous',
        action: audit.action,
        resourceType: audit.resource,
        resourceId: req.auditResourceId ?? params?.id ?? null,
        outcome,
        statusCode: status,
        details: req.auditDetails,
        ip: req.ip,
        requestId: String(req.id),
      });
    } catch (err) {
      req.log.error({ err }, 'could not write the audit log entry');
    }
    return payload;
  });
}
