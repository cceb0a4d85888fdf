import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { VecronError, type ErrorCode, type Problem } from '../errors.ts';
import { isTransientDbError } from '../db/transient.ts';

/** The one place where error codes become HTTP statuses. */
export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  validation_failed: 400,
  invalid_json: 400,
  invalid_signature: 400,
  invalid_module: 400,
  import_not_allowed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  // the Idempotency-Key was first used with another request (as Stripe answers it)
  idempotency_key_reused: 422,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  // the server's own settings or key file are wrong: nothing the caller sent
  invalid_config: 500,
  // the stored bytes are not what was uploaded: tampering or corruption on the server side
  integrity_check_failed: 500,
  internal: 500,
  unavailable: 503,
};

/** Fastify's schema errors carry an instancePath like `/limit`; we report `limit` or `query.limit`. */
function schemaProblems(err: FastifyError): Problem[] {
  const ctx = (err as any).validationContext as string | undefined;
  return (err.validation ?? []).map((v: any) => {
    let path = String(v.instancePath ?? '')
      .replace(/^\//, '')
      .replace(/\/(\d+)(?=\/|$)/g, '[$1]')
      .replace(/\//g, '.');
    let message = String(v.message ?? 'is invalid');
    if (v.keyword === 'required') {
      message = `missing required property '${v.params.missingProperty}'`;
    } else if (v.keyword === 'additionalProperties') {
      path = path ? `${path}.${v.params.additionalProperty}` : v.params.additionalProperty;
      message = 'unknown property';
    } else if (v.keyword === 'enum') {
      message = `must be one of ${(v.params.allowedValues ?? []).join(', ')}`;
    }
    return { path: ctx && ctx !== 'body' ? `${ctx}.${path}`.replace(/\.$/, '') : path, message };
  });
}

function toVecronError(err: FastifyError, req: FastifyRequest): VecronError | null {
  if (err instanceof VecronError) return err;
  if (err.validation) {
    const problems = schemaProblems(err);
    return new VecronError('validation_failed', 'request is invalid: ' + problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '), {
      problems,
    });
  }
  // The database is away (restart, failover): the request may succeed in a moment.
  if (isTransientDbError(err)) return new VecronError('unavailable', 'the database is unavailable right now; retry in a moment');
  const status = err.statusCode ?? 500;
  if (status === 400 && (err instanceof SyntaxError || err.code?.startsWith('FST_ERR_CTP'))) {
    return new VecronError('invalid_json', `request body is not valid JSON: ${err.message}`);
  }
  if (status === 413) {
    // Each route has its limit (JSON, uploads, webhooks); name it and the setting behind it.
    const limit = req.routeOptions?.bodyLimit;
    const setting = req.routeOptions?.config?.bodyLimitSetting ?? 'VECRON_MAX_JSON_BYTES';
    return new VecronError('payload_too_large', limit ? `request body is larger than the limit of ${limit} bytes (${setting})` : err.message);
  }
  if (status === 415) return new VecronError('unsupported_media_type', `${err.message}; send Content-Type: application/json`);
  if (status >= 400 && status < 500) {
    const code: ErrorCode =
      status === 404 ? 'not_found' : status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 429 ? 'rate_limited' : 'validation_failed';
    return new VecronError(code, err.message);
  }
  return null;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const known = toVecronError(err, req);
    if (known) {
      const status = STATUS_BY_CODE[known.code] ?? 500;
      if (status >= 500) req.log.error({ err }, known.message);
      return reply.status(status).send({ error: known.toJSON() });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send({
      error: { code: 'internal', message: `internal error; quote request id ${req.id} when reporting it` },
    });
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } }));
}
