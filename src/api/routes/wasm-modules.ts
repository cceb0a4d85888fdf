import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import type { ApiContext } from '../context.ts';
import { VecronError } from '../../errors.ts';
import { errorResponses, idParams, page, pageQuery } from '../schemas.ts';
import { assertStorableText } from '../input-limits.ts';
import { listModules, listPermissions, moduleStats, toView, writePermissions } from '../../modules/repository.ts';
import { MAX_PERMISSIONS, PERMISSION_TYPES, parsePermissions } from '../../modules/permissions.ts';
import type { UploadInput } from '../../modules/registry.ts';
import { logsOfExecution, logsOfModule } from '../../modules/execution-logs.ts';
import { isUuid } from '../../ids.ts';
import { notFound } from '../../errors.ts';

const UPLOAD_FIELDS = ['name', 'version', 'description', 'author', 'signature'] as const;

const permissionsBody = {
  type: 'object',
  required: ['permissions'],
  additionalProperties: false,
  properties: {
    permissions: {
      type: 'array',
      maxItems: MAX_PERMISSIONS,
      items: {
        type: 'object',
        required: ['type'],
        additionalProperties: false,
        properties: {
          type: { type: 'string', enum: [...PERMISSION_TYPES] },
          resource_pattern: {
            type: ['string', 'null'],
            maxLength: 500,
            description: 'Glob over the resource (`*` within a path segment, `**` across); null or absent: any resource of this type.',
          },
        },
      },
    },
  },
} as const;

/** One recorded privileged host call (HostCallRecord, src/wasm/host/types.ts). */
const hostCallSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['seq', 'function', 'target', 'at', 'duration_us', 'bytes_in', 'bytes_out', 'outcome', 'served'],
  properties: {
    seq: { type: 'integer', description: '0-based position among the run’s host calls' },
    function: { type: 'string', description: 'e.g. http_request' },
    target: { type: ['string', 'null'], description: 'the URL, datasource/table, file path, or crypto/time op' },
    at: { type: 'string', format: 'date-time' },
    duration_us: { type: 'integer' },
    bytes_in: { type: 'integer' },
    bytes_out: { type: 'integer' },
    outcome: { type: 'string', description: '`ok` or the error code the guest got' },
    permission: { type: 'string', description: 'on a denial, the missing permission' },
    served: { type: 'string', enum: ['worker', 'host'] },
    request: { description: 'the request JSON, bounded (`$cut` markers) and masked' },
    response: { description: 'the answer JSON, bounded (`$cut` markers) and masked' },
  },
} as const;

const executionLogsResponse = {
  type: 'object',
  required: ['logs'],
  properties: {
    logs: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: true,
        properties: {
          id: { type: 'string' },
          execution_id: { type: 'string' },
          step_id: { type: 'string' },
          attempt: { type: 'integer' },
          module_id: { type: ['string', 'null'] },
          module_name: { type: 'string' },
          module_version: { type: 'string' },
          function_name: { type: 'string' },
          fuel_consumed: { type: 'number' },
          memory_used_bytes: { type: 'number' },
          duration_ms: { type: 'number' },
          error: { type: ['object', 'null'], additionalProperties: true },
          logs: {
            type: 'array',
            description: 'the module’s log lines (masked)',
            items: {
              type: 'object',
              properties: { level: { type: 'string', enum: ['debug', 'info', 'warn', 'error'] }, message: { type: 'string' }, at: { type: 'string' } },
            },
          },
          host_calls: { type: 'array', items: hostCallSchema },
          host_calls_dropped: { type: 'integer', description: 'host calls past the record’s cap (1,000 a run), counted, not kept' },
          created_at: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
} as const;

const uploadDoc = {
  type: 'object',
  required: ['file', 'name', 'version', 'author'],
  properties: {
    file: { type: 'string', format: 'binary', description: 'The .wasm file' },
    name: { type: 'string', description: "Letters, digits, '.', '_', '-'" },
    version: { type: 'string', description: 'Semantic version, e.g. 1.0.0; immutable once uploaded' },
    description: { type: 'string' },
    author: { type: 'string', description: 'Whose registered Ed25519 key verifies the signature' },
    signature: { type: 'string', description: 'Ed25519 signature of the file bytes, 128 hex digits (wasm-cli sign)' },
  },
} as const;

/**
 * The module registry API (the seed's paths): upload, list, details, permissions, delete, download.
 * Uploads are multipart/form-data; everything else is JSON.
 */
export async function wasmModuleRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { db } = ctx;
  const actor = (req: FastifyRequest) => req.principal?.name ?? null;

  await app.register(async (scope) => {
    await scope.register(multipart, {
      limits: { fileSize: ctx.config.wasmMaxModuleBytes, files: 1, fields: 10, fieldSize: 64 * 1024, parts: 12 },
    });

    scope.post(
      '/api/v1/wasm/modules',
      {
        config: { role: 'operator', audit: { action: 'wasm.module.upload', resource: 'wasm_module' }, bodyLimitSetting: 'VECRON_MAX_BODY_BYTES' },
        bodyLimit: ctx.config.maxBodyBytes,
        // The multipart body is read and checked by the handler; the schema documents it.
        validatorCompiler: () => () => true,
        schema: {
          tags: ['wasm modules'],
          summary: 'Upload a module version',
          description:
            'Validates the binary, checks its imports, memory and table sizes and entry functions, verifies the Ed25519 signature ' +
            "against the author's registered keys (always when VECRON_REQUIRE_SIGNED_MODULES=true), instruments and compiles it once, " +
            'and stores the original bytes at `wasm-modules/{id}.wasm`. A name and version that exist already: 409.',
          consumes: ['multipart/form-data'],
          body: uploadDoc,
        },
      },
      async (req, reply) => {
        if (!req.isMultipart()) {
          throw new VecronError(
            'unsupported_media_type',
            "upload a module as multipart/form-data with a 'file' part (e.g. curl -F file=@module.wasm -F name=... -F version=... -F author=...)",
          );
        }
        const fields: Record<string, string> = {};
        let file: Buffer | null = null;
        try {
          for await (const part of req.parts()) {
            if (part.type === 'file') {
              if (part.fieldname !== 'file') throw new VecronError('validation_failed', `unexpected file part '${part.fieldname}': the module goes in 'file'`);
              file = await part.toBuffer();
            } else {
              if (!(UPLOAD_FIELDS as readonly string[]).includes(part.fieldname)) {
                throw new VecronError('validation_failed', `unknown field '${part.fieldname}'; the fields are file, ${UPLOAD_FIELDS.join(', ')}`);
              }
              fields[part.fieldname] = String(part.value);
              assertStorableText(fields[part.fieldname], part.fieldname);
            }
          }
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'FST_REQ_FILE_TOO_LARGE') {
            throw new VecronError('payload_too_large', `the module is larger than ${ctx.config.wasmMaxModuleBytes} bytes (VECRON_WASM_MAX_MODULE_BYTES)`);
          }
          if (err instanceof VecronError) throw err;
          // Anything else the multipart reader throws (no boundary, a truncated or malformed body) is
          // the request's fault, not ours.
          throw new VecronError('validation_failed', `the multipart body could not be read: ${(err as Error).message}`);
        }
        req.auditDetails = { name: fields.name, version: fields.version, author: fields.author, signed: Boolean(fields.signature) };
        if (!file)
          throw new VecronError('validation_failed', "missing the 'file' part with the .wasm module", { problems: [{ path: 'file', message: 'is required' }] });
        const input: UploadInput = { bytes: file, ...fields } as UploadInput;
        const m = await ctx.modules.upload(input, actor(req));
        req.auditResourceId = m.id;
        req.auditDetails = { name: m.name, version: m.version, hash: m.hash, size_bytes: Number(m.size_bytes), signed_by_key: m.signed_by_key };
        return reply.status(201).send(toView(m));
      },
    );
  });

  app.get(
    '/api/v1/wasm/modules',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['wasm modules'],
        summary: 'List modules',
        querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery, search: { type: 'string', maxLength: 200 } } },
      },
    },
    async (req) => {
      const q = req.query as { page: number; limit: number; search?: string };
      const { items, total } = await listModules(db, q);
      return page(items, total, q);
    },
  );

  app.get(
    '/api/v1/wasm/modules/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['wasm modules'],
        summary: 'Module details',
        description:
          'Metadata, permissions, execution statistics, the jobs that use it, and what the binary imports and exports. `:id` may also be `name@version` or `name@latest`.',
        params: idParams,
      },
    },
    async (req) => {
      const m = await ctx.modules.resolve((req.params as { id: string }).id);
      const [permissions, stats, usedBy] = await Promise.all([listPermissions(db, m.id), moduleStats(db, m.id), ctx.modules.referencingJobs(m)]);
      return {
        ...toView(m),
        permissions,
        stats,
        used_by: usedBy,
        imports: m.info.imports,
        exports: m.info.exports,
        entries: m.info.entries,
        function_count: m.info.function_count,
        memory: m.info.memory,
        tables: m.info.tables,
        wasi: m.info.wasi,
      };
    },
  );

  for (const method of ['PUT', 'POST'] as const) {
    const replace = method === 'PUT';
    app.route({
      method,
      url: '/api/v1/wasm/modules/:id/permissions',
      config: { role: 'admin', audit: { action: replace ? 'wasm.module.permissions.replace' : 'wasm.module.permissions.add', resource: 'wasm_module' } },
      schema: {
        tags: ['wasm modules'],
        summary: replace ? "Replace a module's permissions" : 'Add permissions to a module',
        description: 'Deny by default: a module may use a privileged host function only for resources its permissions match.',
        params: idParams,
        body: permissionsBody,
      },
      handler: async (req) => {
        const m = await ctx.modules.resolve((req.params as { id: string }).id);
        req.auditResourceId = m.id;
        const perms = parsePermissions((req.body as { permissions: unknown }).permissions);
        await writePermissions(db, m.id, perms, actor(req), replace);
        const permissions = await listPermissions(db, m.id);
        req.auditDetails = { name: m.name, version: m.version, permissions: permissions.map((p) => ({ type: p.type, resource_pattern: p.resource_pattern })) };
        return { module_id: m.id, permissions };
      },
    });
  }

  app.delete(
    '/api/v1/wasm/modules/:id',
    {
      config: { role: 'operator', audit: { action: 'wasm.module.delete', resource: 'wasm_module' } },
      schema: { tags: ['wasm modules'], summary: 'Delete a module (refused while a job uses it)', params: idParams },
    },
    async (req, reply) => {
      const target = await ctx.modules.resolve((req.params as { id: string }).id);
      req.auditResourceId = target.id;
      req.auditDetails = { name: target.name, version: target.version, hash: target.hash };
      await ctx.modules.delete(target);
      return reply.status(204).send();
    },
  );

  app.get(
    '/api/v1/wasm/modules/:id/download',
    {
      config: { role: 'viewer' },
      schema: { tags: ['wasm modules'], summary: 'Download the original bytes (integrity-checked; the hash is in X-Vecron-Module-Sha256)', params: idParams },
    },
    async (req, reply) => {
      const { module, bytes } = await ctx.modules.download((req.params as { id: string }).id);
      return reply
        .header('content-type', 'application/wasm')
        .header('content-disposition', `attachment; filename="${module.name}-${module.version}.wasm"`)
        .header('x-vecron-module-sha256', module.hash)
        .header('repr-digest', `sha-256=:${Buffer.from(module.hash, 'hex').toString('base64')}:`)
        .send(bytes);
    },
  );

  app.get(
    '/api/v1/wasm/executions/:execution_id/logs',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['wasm modules'],
        summary: "An execution's WASM runs",
        description:
          'One entry per module run: step, attempt, module, fuel consumed, peak memory, duration, the error (code, message, wasm stack) of a failed run, ' +
          "the module's log lines, and its privileged host calls in order (`host_calls`: function, target, duration, bytes, outcome, bounded and masked request and response; docs/abi.md).",
        params: { type: 'object', properties: { execution_id: { type: 'string' } }, required: ['execution_id'] },
        querystring: { type: 'object', additionalProperties: false, properties: { module_id: { type: 'string' } } },
        response: { 200: executionLogsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const { execution_id } = req.params as { execution_id: string };
      const { module_id } = req.query as { module_id?: string };
      if (!isUuid(execution_id)) throw notFound('execution', execution_id);
      const exists = await db.query('SELECT 1 FROM executions WHERE id = $1', [execution_id]);
      if (!exists.rows.length) throw notFound('execution', execution_id);
      const moduleId = module_id === undefined ? undefined : (await ctx.modules.resolve(module_id)).id;
      return { logs: await logsOfExecution(db, execution_id, moduleId) };
    },
  );

  app.get(
    '/api/v1/wasm/modules/:id/logs',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['wasm modules'],
        summary: "A module's runs, newest first",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } },
      },
    },
    async (req) => {
      const m = await ctx.modules.resolve((req.params as { id: string }).id);
      const q = req.query as { page: number; limit: number };
      const { items, total } = await logsOfModule(db, m.id, q);
      return page(items, total, q);
    },
  );
}
