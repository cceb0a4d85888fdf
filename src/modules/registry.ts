/**
 * The module registry: modules are stored once, verified every time they are loaded, and governed
 * by permissions. Upload = validate, check, sign-check, prepare (instrument + compile once, cached
 * by hash), store the original bytes in the blob store and the metadata in the database.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Config } from '../config/index.ts';
import type { Database, Queryable } from '../db/database.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { VecronError, validationFailed, notFound, type Problem } from '../errors.ts';
import { writeAudit } from '../audit/audit-log.ts';
import { parseModule, WasmFormatError } from '../wasm/binary/index.ts';
import { WasmModuleError, DEFAULT_LIMITS, type PreparedModule, type WasmRuntime } from '../wasm/runtime/index.ts';
import { checkAuthor, activeKeysOf } from './keys.ts';
import { findSigningKey, parseSignature } from './signatures.ts';
import { MODULE_NAME, NAME_RULE, VERSION_RULE, parseModuleRef, versionProblem, type ModuleRef } from './ref.ts';
import {
  deleteModuleRow,
  duplicateVersion,
  findModuleByRef,
  insertModule,
  latestOf,
  listModuleVersions,
  type ModuleInfo,
  type ModuleRow,
} from './repository.ts';

export interface RegistryDeps {
  db: Database;
  blobs: BlobStore;
  config: Config;
  /** Prepares modules at upload; created on first use (the API process may never need it). */
  runtime: () => WasmRuntime;
  logger: Logger;
  metrics?: Metrics;
}

export interface UploadInput {
  bytes: Buffer;
  name: unknown;
  version: unknown;
  description?: unknown;
  author: unknown;
  /** Ed25519 signature of the bytes, 128 hex digits. */
  signature?: unknown;
}

/** A module ready to run: its row, and bytes that were just hashed and found intact. */
export interface LoadedModule {
  module: ModuleRow;
  bytes: Buffer;
}

export const modulePath = (id: string): string => `wasm-modules/${id}.wasm`;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export class ModuleRegistry {
  constructor(private readonly deps: RegistryDeps) {}

  /** Validates and stores a new module version. Every refusal says why (VecronError). */
  async upload(input: UploadInput, actor: string | null): Promise<ModuleRow> {
    const { db, blobs, config } = this.deps;
    const problems: Problem[] = [];
    const str = (v: unknown) => (typeof v === 'string' ? v.trim() : undefined);
    const name = str(input.name);
    const version = str(input.version);
    if (!name || !MODULE_NAME.test(name)) problems.push({ path: 'name', message: `must be ${NAME_RULE}` });
    if (version === 'latest') problems.push({ path: 'version', message: "'latest' is reserved for references" });
    else if (!version || versionProblem(version)) problems.push({ path: 'version', message: versionProblem(version ?? '') ?? `must be ${VERSION_RULE}` });
    let author = '';
    try {
      author = checkAuthor(input.author);
    } catch {
      problems.push({ path: 'author', message: 'is required: 1-255 printable characters (whose registered key verifies the signature)' });
    }
    const description = input.description === undefined || input.description === null ? null : String(input.description);
    if (description !== null && description.length > 10_000) problems.push({ path: 'description', message: 'must be at most 10,000 characters' });
    if (problems.length) throw validationFailed(problems, 'module upload');

    const bytes = input.bytes;
    if (bytes.length === 0) throw new VecronError('invalid_module', "the 'file' part is empty");
    if (bytes.length > config.wasmMaxModuleBytes) {
      throw new VecronError(
        'payload_too_large',
        `the module is ${bytes.length} bytes; the limit is ${config.wasmMaxModuleBytes} (VECRON_WASM_MAX_MODULE_BYTES)`,
      );
    }
    if ((await db.query('SELECT 1 FROM wasm_modules WHERE name = $1 AND version = $2', [name, version])).rows.length) {
      throw duplicateVersion(name!, version!);
    }

    const signedBy = await this.verifySignature(bytes, author, input.signature);
    const info = await this.check(bytes);
    const hash = sha256(bytes);
    const id = randomUUID();
    const path = modulePath(id);
    await blobs.put(path, bytes);
    try {
      return await insertModule(db, {
        id,
        name: name!,
        version: version!,
        description,
        author,
        minio_path: path,
        hash,
        size_bytes: bytes.length,
        signed_by_key: signedBy,
        info,
        created_by: actor,
      });
    } catch (err) {
      await blobs.delete(path).catch(() => {});
      throw err;
    }
  }

  /** Returns the id of the key that verified the signature, null for an unsigned upload (when allowed). */
  private async verifySignature(bytes: Buffer, author: string, signature: unknown): Promise<string | null> {
    const given = typeof signature === 'string' && signature.trim() !== '' ? signature : null;
    if (given === null) {
      if (this.deps.config.requireSignedModules) {
        throw new VecronError(
          'invalid_signature',
          "this server accepts only signed modules (VECRON_REQUIRE_SIGNED_MODULES=true): send 'signature', the Ed25519 signature of the file as hex (wasm-cli sign)",
        );
      }
      return null;
    }
    const sig = parseSignature(given);
    const keys = await activeKeysOf(this.deps.db, author);
    if (keys.length === 0) {
      throw new VecronError(
        'invalid_signature',
        `no trusted public key is registered for author '${author}'; an admin registers one with POST /api/v1/wasm/keys`,
      );
    }
    const key = findSigningKey(bytes, sig, keys);
    if (!key) {
      throw new VecronError(
        'invalid_signature',
        `the signature does not verify with any of the ${keys.length} registered key(s) of author '${author}': the file was altered, or signed with another key`,
      );
    }
    return key.id;
  }

  /** Upload checks, then preparation (instrument + compile, cached by hash): throws on anything we would not run. */
  private async check(bytes: Buffer): Promise<ModuleInfo> {
    const { config } = this.deps;
    let parsed;
    try {
      parsed = parseModule(bytes, { walkCode: false });
    } catch (err) {
      if (err instanceof WasmFormatError) throw new VecronError('invalid_module', `not a valid WebAssembly module: ${err.message}`);
      throw err;
    }
    const maxPages = config.wasmMaxMemoryMb * 16;
    const mem = parsed.memories[0];
    if (mem && mem.min > maxPages) {
      throw new VecronError(
        'invalid_module',
        `the module declares an initial memory of ${mem.min} pages (${(mem.min * 64) / 1024} MiB); the limit is ${config.wasmMaxMemoryMb} MiB (VECRON_WASM_MAX_MEMORY_MB)`,
      );
    }
    // All tables together: a module cannot get past the bound by declaring many tables.
    let tableEntries = 0;
    for (const t of parsed.tables) tableEntries += t.min;
    if (tableEntries > config.wasmMaxTableElements) {
      const big = parsed.tables.reduce((a, t, i) => (t.min > parsed.tables[a].min ? i : a), 0);
      throw new VecronError(
        'invalid_module',
        `the module's ${parsed.tables.length === 1 ? 'table declares' : `${parsed.tables.length} tables declare`} ${tableEntries} initial entries` +
          `${parsed.tables.length > 1 ? ` together (table ${big}: ${parsed.tables[big].min})` : ''}; the limit is ${config.wasmMaxTableElements} (VECRON_WASM_MAX_TABLE_ELEMENTS)` +
          ` (table ${big}'s limits at byte offset ${parsed.tables[big].limitsStart})`,
      );
    }
    // Prepared at the default step limits when it fits, so the usual first run hits the cache.
    const memoryMb = mem && mem.min > DEFAULT_LIMITS.memoryMb * 16 ? config.wasmMaxMemoryMb : DEFAULT_LIMITS.memoryMb;
    const tableLimit = tableEntries > DEFAULT_LIMITS.tableLimit ? config.wasmMaxTableElements : DEFAULT_LIMITS.tableLimit;
    let prepared: PreparedModule;
    try {
      prepared = await this.deps.runtime().prepare(bytes, { memoryMb, tableLimit });
    } catch (err) {
      if (err instanceof WasmModuleError) {
        throw new VecronError(err.code === 'import_not_allowed' ? 'import_not_allowed' : 'invalid_module', err.message, { reason: err.code });
      }
      throw err;
    }
    const exported = (n: string, kind: string) => prepared.exports.some((e) => e.name === n && e.kind === kind);
    const abi = exported('memory', 'memory') && exported('alloc', 'function');
    const entries = prepared.entries.filter((e) => e.form === 'C' || (abi && e.name !== 'alloc'));
    if (entries.length === 0) {
      throw new VecronError(
        'invalid_module',
        'the module has no usable entry function: export `memory`, `alloc(size: i32) -> i32` and a function `(ptr: i32, len: i32) -> i64` ' +
          '(or `-> i32` returning a NUL-terminated string), or build a WASI command with `_start` (see docs/abi.md)' +
          (prepared.exports.length ? `; exports found: ${prepared.exports.map((e) => `${e.name} (${e.kind})`).join(', ')}` : '; it exports nothing'),
      );
    }
    return {
      imports: prepared.imports.map((i) => ({ module: i.module, name: i.name, kind: i.kind })),
      exports: prepared.exports,
      entries,
      function_count: prepared.functionCount,
      memory: mem ? { min_pages: mem.min, max_pages: mem.max ?? null, imported: mem.imported } : null,
      tables: parsed.tables.map((t) => ({ min: t.min, max: t.max ?? null })),
      wasi: prepared.usesWasi,
      command: prepared.command,
    };
  }

  /** Resolves `module_id` / `name@version` / `name@latest` / `name`; `not_found` names the reference. */
  async resolve(ref: string, db: Queryable = this.deps.db): Promise<ModuleRow> {
    const parsed = parseModuleRef(ref);
    if (!parsed) throw notFound('module', ref);
    return findModuleByRef(db, parsed);
  }

  /**
   * Loads a module for a run: reads its bytes from the blob store and hashes them again. A mismatch
   * refuses the run, writes a security alert to the audit log and counts in a metric.
   */
  async loadForRun(ref: string | ModuleRow, context: Record<string, string> = {}): Promise<LoadedModule> {
    const { blobs, logger, metrics } = this.deps;
    const module = typeof ref === 'string' ? await this.resolve(ref) : ref;
    let bytes: Buffer;
    try {
      bytes = await blobs.get(module.minio_path);
    } catch (err) {
      if ((err as { code?: string }).code === 'not_found') {
        await this.integrityAlert(module, 'missing', null, context);
        throw new VecronError(
          'integrity_check_failed',
          `the bytes of module ${module.name}@${module.version} (${module.id}) are missing from the blob store at ${module.minio_path}`,
        );
      }
      throw err;
    }
    const actual = sha256(bytes);
    if (actual !== module.hash) {
      await this.integrityAlert(module, 'hash_mismatch', actual, context);
      logger.error({ module: module.id, expected: module.hash, actual }, 'module integrity check failed: refusing to run it');
      throw new VecronError(
        'integrity_check_failed',
        `module ${module.name}@${module.version} (${module.id}) failed its integrity check: the stored bytes hash to ${actual}, not ${module.hash} as uploaded; it will not run (see the audit log)`,
      );
    }
    metrics?.moduleLoads.inc({ result: 'ok' });
    return { module, bytes };
  }

  private async integrityAlert(module: ModuleRow, reason: string, actual: string | null, context: Record<string, unknown>): Promise<void> {
    this.deps.metrics?.securityAlerts.inc({ kind: 'module_integrity' });
    this.deps.metrics?.moduleLoads.inc({ result: 'refused' });
    await writeAudit(this.deps.db, {
      actorName: 'vecron',
      action: 'wasm.module.integrity_failure',
      resourceType: 'wasm_module',
      resourceId: module.id,
      outcome: 'alert',
      details: { name: module.name, version: module.version, path: module.minio_path, reason, expected: module.hash, actual, ...context },
    }).catch((err) => this.deps.logger.error({ err }, 'could not write the integrity alert to the audit log'));
  }

  /** The original bytes for download, checked like a load (a tampered module is not handed out). */
  async download(id: string): Promise<{ module: ModuleRow; bytes: Buffer }> {
    const module = await this.resolve(id);
    const { bytes } = await this.loadForRun(module, { purpose: 'download' });
    return { module, bytes };
  }

  /** Jobs whose wasm steps would run this module (by id, by name@version, or by name@latest while it is the latest). */
  async referencingJobs(module: ModuleRow): Promise<{ id: string; name: string; steps: string[] }[]> {
    const { db } = this.deps;
    const { rows } = await db.query<{ id: string; name: string; definition: any }>(
      `SELECT id, name, definition FROM jobs WHERE definition->'steps' @> '[{"type": "wasm"}]'::jsonb ORDER BY name`,
    );
    let isLatest: boolean | null = null;
    const out: { id: string; name: string; steps: string[] }[] = [];
    for (const job of rows) {
      const steps: string[] = [];
      for (const step of job.definition.steps ?? []) {
        if (step.type !== 'wasm' || typeof step.config?.module_id !== 'string') continue;
        const ref: ModuleRef | null = parseModuleRef(step.config.module_id);
        if (!ref) continue;
        let hit = false;
        if (ref.kind === 'id') hit = ref.id === module.id;
        else if (ref.name !== module.name) hit = false;
        else if (ref.kind === 'version') hit = ref.version === module.version;
        else {
          isLatest ??= latestOf(await listModuleVersions(db, module.name))?.id === module.id;
          hit = isLatest;
        }
        if (hit) steps.push(step.id);
      }
      if (steps.length) out.push({ id: job.id, name: job.name, steps });
    }
    return out;
  }

  /** Deletes a module's rows and bytes; refused (409) while a job still references it, naming the jobs. */
  async delete(module: ModuleRow): Promise<void> {
    const jobs = await this.referencingJobs(module);
    if (jobs.length) {
      throw new VecronError(
        'conflict',
        `module ${module.name}@${module.version} is still used by ${jobs.length} job(s): ` +
          jobs.map((j) => `'${j.name}' (steps ${j.steps.join(', ')})`).join('; ') +
          '; change or delete those jobs first',
        { jobs },
      );
    }
    await deleteModuleRow(this.deps.db, module.id);
    await this.deps.blobs.delete(module.minio_path).catch((err) => {
      // The rows are gone; an orphaned blob is harmless and is reported for cleanup.
      this.deps.logger.warn({ err, path: module.minio_path }, 'module deleted, but its blob could not be removed');
    });
  }
}
