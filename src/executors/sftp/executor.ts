/**
 * The sftp step (ssh2): downloads files into the execution's folder of the blob store, or uploads
 * files from it, streaming both ways.
 *
 * - download: `remote_path` is a file, or a directory whose files (optionally `recursive`, optionally
 *   only those matching `pattern`, e.g. `TXN_*.csv`) are fetched to `local_path` (default: the
 *   execution folder itself), keeping their relative paths.
 * - upload: `local_path` is a file or a folder of the execution folder; files go to `remote_path`
 *   (a directory, or the target file name for a single file), remote directories created as needed.
 *   Each file is written to `.<name>.vecron-<random>.part` beside its target and renamed onto it
 *   when complete (see putAtomically), so a failed upload never leaves a partial file under the name.
 * - Host key: with `host_key_fingerprint` any other key is refused (sftp_host_key_mismatch); the key
 *   seen is always in the output, so it can be pinned.
 * - Connection errors (refused, reset, handshake timeout) are retried inside the step with
 *   exponential backoff (`max_retries`, default 2); bad credentials, a wrong host key and missing files
 *   fail at once.
 *
 * Output: `{ operation, files: [{ name, path, remote_path, size }], count, total_bytes, host_key_fingerprint }`
 * where `path` is relative to the execution folder (what a later file step's `path` takes).
 * Failure codes: sftp_connection_failed, sftp_auth_failed, sftp_host_key_mismatch, sftp_invalid_key,
 * sftp_file_not_found, sftp_permission_denied, sftp_timeout, sftp_transfer_failed, sftp_invalid_path, aborted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, type ConnectConfig, type SFTPWrapper, type Stats } from 'ssh2';
import picomatch from 'picomatch';
import type { StepExecute, StepRunContext } from '../executor.ts';
import type { SftpStepConfig } from './definition.ts';
import { relativePathProblem } from '../definition.ts';
import { StepError } from '../../engine/step-error.ts';
import { egressConnect, egressDeniedIn, resolveEgress } from '../../egress/index.ts';
import { sleep } from '../../engine/sleep.ts';
import { checkKey } from '../../storage/blob-store.ts';
import { withBlobRetry } from '../../storage/retry.ts';

const DEFAULT_RETRIES = 2;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 20_000;
/** Most files one step transfers (a guard against listing a whole server by mistake). */
const MAX_FILES = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long an aborted step waits for its transfer to clean up (remove a temporary upload) before closing. */
const ABORT_CLEANUP_MS = 2_000;

// SFTP status codes (draft-ietf-secsh-filexfer-02).
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

export interface SftpFile {
  name: string;
  /** Path in the execution folder. */
  path: string;
  remote_path: string;
  size: number;
}

export interface SftpStepOutput {
  operation: 'download' | 'upload';
  files: SftpFile[];
  count: number;
  total_bytes: number;
  host_key_fingerprint: string | null;
  server: { host: string; port: number; username: string };
}

export const execute: StepExecute<SftpStepConfig> = async (config, ctx) => {
  const folder = `jobs/${ctx.jobId}/executions/${ctx.executionId}/`;
  const localBase = normalizeLocal(config.local_path);
  const timeoutMs = Math.min(
    config.timeout_seconds !== undefined ? config.timeout_seconds * 1000 : Infinity,
    Math.max(0, ctx.deadline - Date.now()),
    MAX_TIMER_MS,
  );
  const retries = config.max_retries ?? DEFAULT_RETRIES;

  // One signal for the step's own timeout and the engine's abort.
  const ac = new AbortController();
  const onAbort = () => ac.abort(ctx.signal.reason);
  if (ctx.signal.aborted) ac.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const timer = Number.isFinite(timeoutMs)
    ? setTimeout(
        () =>
          ac.abort(new StepError('sftp_timeout', `the SFTP ${config.operation} did not finish within ${+(timeoutMs / 1000).toFixed(3)}s`, { retryable: true })),
        timeoutMs,
      )
    : null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        return await withSession(config, ac.signal, async (sftp, fingerprint) => {
          if (!config.host_key_fingerprint) {
            ctx.logger.warn(
              { host: config.host, host_key_fingerprint: fingerprint },
              'sftp step: host key not pinned (set host_key_fingerprint); accepted the key seen',
            );
          }
          const files =
            config.operation === 'download'
              ? await download(sftp, config, ctx, folder, localBase, ac.signal)
              : await upload(sftp, config, ctx, folder, localBase, ac.signal);
          const shown = (ctx.shownConfig?.() as SftpStepConfig | undefined) ?? config;
          const out: SftpStepOutput = {
            operation: config.operation,
            // What the step connected to, from the config before secret substitution.
            server: { host: String(shown.host), port: Number(shown.port ?? 22), username: String(shown.username) },
            files,
            count: files.length,
            total_bytes: files.reduce((n, f) => n + f.size, 0),
            host_key_fingerprint: fingerprint,
          };
          return out;
        });
      } catch (err) {
        const e = toStepError(err, ac.signal, config);
        const left = ctx.deadline - Date.now();
        if (e.code !== 'sftp_connection_failed' || attempt >= retries || ac.signal.aborted) throw e;
        const wait = Math.min(BACKOFF_BASE_MS * 2 ** attempt, BACKOFF_MAX_MS, Math.max(0, left - 1));
        ctx.logger.warn({ host: config.host, attempt: attempt + 1, retryInMs: wait, err: e.message }, 'sftp step: connection failed; retrying');
        await sleep(wait, ac.signal).catch(() => {
          throw toStepError(ac.signal.reason, ac.signal, config);
        });
      }
    }
  } finally {
    if (timer) clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onAbort);
  }
};

/* ------------------------------------------------------------------------------------------------
 * Session
 * ---------------------------------------------------------------------------------------------- */

/** A connection refused because of its host key: not retried. */
class HostKeyMismatch extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`the host key of the server is ${actual}, not the configured ${expected}`);
  }
}

export function fingerprintOf(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

async function withSession<T>(config: SftpStepConfig, signal: AbortSignal, fn: (sftp: SFTPWrapper, fingerprint: string | null) => Promise<T>): Promise<T> {
  if (signal.aborted) throw signal.reason;
  const client = new Client();
  let seen: string | null = null;
  let mismatch: HostKeyMismatch | null = null;
  const expected = config.host_key_fingerprint?.replace(/=+$/, '');
  const options: ConnectConfig = {
    host: config.host.replace(/^\[(.*)\]$/, '$1'),
    port: config.port ?? 22,
    username: config.username,
    readyTimeout: HANDSHAKE_TIMEOUT_MS,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 4,
    hostVerifier: (key: Buffer) => {
      seen = fingerprintOf(key);
      if (expected && seen !== expected) {
        mismatch = new HostKeyMismatch(expected, seen);
        return false;
      }
      return true;
    },
  };
  if (config.auth.type === 'password') {
    options.password = config.auth.password;
    options.tryKeyboard = false;
  } else {
    options.privateKey = config.auth.private_key;
    if (config.auth.passphrase) options.passphrase = config.auth.passphrase;
  }

  // The egress policy first: resolved and checked here, and the socket connects to that address.
  const target = await resolveEgress(options.host!, options.port!);
  options.sock = egressConnect(target.address, target.port);

  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', (err) => reject(mismatch ?? err));
    client.once('close', () => reject(mismatch ?? Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' })));
  });
  ready.catch(() => {});
  // A lost connection during the transfer rejects this, so a hanging stream cannot hang the step.
  let connectionLost = false;
  let failed: (e: unknown) => void = () => {};
  const lost = new Promise<never>((_, reject) => (failed = reject));
  lost.catch(() => {});
  const onAbort = () => failed(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    try {
      client.connect(options);
    } catch (err) {
      // ssh2 throws at once for a private key it cannot parse (or a wrong passphrase).
      throw new StepError('sftp_invalid_key', `the private key cannot be used: ${(err as Error).message}`, { retryable: false });
    }
    await Promise.race([ready, lost]);
    // SFTP sends many small packets and waits for their answers: with Nagle's algorithm on, a 48 MB
    // upload took 28 s on loopback, without it 0.5 s.
    client.setNoDelay(true);
    client.on('error', (err) => ((connectionLost = true), failed(err)));
    client.on(
      'close',
      () => ((connectionLost = true), failed(Object.assign(new Error('the connection was closed during the transfer'), { code: 'ECONNRESET' }))),
    );
    const sftp = await Promise.race([new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s)))), lost]);
    const work = fn(sftp, seen);
    try {
      return await Promise.race([work, lost]);
    } catch (err) {
      // Aborted (timeout, cancel, shutdown) with the connection still up: the work sees the same
      // signal and stops; give it a moment to clean up (an upload removes its temporary file).
      if (signal.aborted && !connectionLost) await Promise.race([work.catch(() => {}), delay(ABORT_CLEANUP_MS, undefined, { ref: false })]);
      throw err;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    client.removeAllListeners('close');
    client.on('error', () => {});
    client.end();
  }
}

/* ------------------------------------------------------------------------------------------------
 * Download
 * ---------------------------------------------------------------------------------------------- */

function normalizeLocal(p: string | undefined): string {
  if (p === undefined) return '';
  const trimmed = p.replace(/\/+$/, '').replace(/^\.\/?/, '');
  const problem = relativePathProblem(trimmed);
  if (problem) throw new StepError('sftp_invalid_path', `local_path ${problem}`, { retryable: false });
  return trimmed;
}

function localKey(folder: string, rel: string): string {
  try {
    return checkKey(folder + rel);
  } catch {
    throw new StepError('sftp_invalid_path', `'${rel}' is not a valid file name in the execution folder`, { retryable: false });
  }
}

function matcher(pattern: string | undefined): (rel: string) => boolean {
  if (!pattern) return () => true;
  const m = picomatch(pattern, { dot: false });
  return pattern.includes('/') ? (rel) => m(rel) : (rel) => m(posix.basename(rel));
}

const stat = (sftp: SFTPWrapper, p: string) => new Promise<Stats>((resolve, reject) => sftp.stat(p, (err, s) => (err ? reject(err) : resolve(s))));
const readdir = (sftp: SFTPWrapper, p: string) =>
  new Promise<{ filename: string; attrs: Stats }[]>((resolve, reject) => sftp.readdir(p, (err, list) => (err ? reject(err) : resolve(list as any))));

async function download(
  sftp: SFTPWrapper,
  config: SftpStepConfig,
  ctx: StepRunContext,
  folder: string,
  localBase: string,
  signal: AbortSignal,
): Promise<SftpFile[]> {
  const remote = config.remote_path;
  const st = await stat(sftp, remote).catch((err) => {
    throw remoteError(err, remote);
  });
  const match = matcher(config.pattern);
  const todo: { remote: string; rel: string; size: number }[] = [];
  if (st.isDirectory()) {
    const walk = async (dir: string, relDir: string): Promise<void> => {
      const entries = (
        await readdir(sftp, dir).catch((err) => {
          throw remoteError(err, dir);
        })
      ).sort((a, b) => (a.filename < b.filename ? -1 : 1));
      for (const e of entries) {
        if (e.filename === '.' || e.filename === '..') continue;
        const rel = relDir ? `${relDir}/${e.filename}` : e.filename;
        const full = posix.join(dir, e.filename);
        if (e.attrs.isDirectory()) {
          if (config.recursive) await walk(full, rel);
        } else if (e.attrs.isFile() && match(rel)) {
          todo.push({ remote: full, rel, size: e.attrs.size });
          if (todo.length > MAX_FILES)
            throw new StepError('sftp_too_many_files', `more than ${MAX_FILES} files match in ${remote}; narrow the pattern`, { retryable: false });
        }
      }
    };
    await walk(remote, '');
    if (todo.length === 0) {
      throw new StepError(
        'sftp_file_not_found',
        `no file in '${remote}'${config.recursive ? ' (recursively)' : ''} matches ${config.pattern ? `'${config.pattern}'` : 'anything'}`,
        {
          retryable: false,
          details: { remote_path: remote, pattern: config.pattern ?? null },
        },
      );
    }
  } else {
    const name = posix.basename(remote);
    if (!match(name)) {
      throw new StepError('sftp_file_not_found', `'${remote}' does not match '${config.pattern}'`, { retryable: false, details: { remote_path: remote } });
    }
    todo.push({ remote, rel: name, size: st.size });
  }

  const out: SftpFile[] = [];
  for (const f of todo) {
    if (signal.aborted) throw signal.reason;
    const path = localBase ? `${localBase}/${f.rel}` : f.rel;
    const key = localKey(folder, path);
    // A fresh read of the remote file for each try: a blob store that fails for a moment is retried.
    const info = await withBlobRetry(ctx.services.blobs, { signal, deadline: ctx.deadline, logger: ctx.logger })
      .putStreamFrom(key, () => sftp.createReadStream(f.remote) as unknown as Readable)
      .catch((err) => {
        throw remoteError(err, f.remote);
      });
    out.push({ name: posix.basename(f.rel), path, remote_path: f.remote, size: info.size });
    ctx.logger.debug({ remote: f.remote, path, size: info.size }, 'sftp step: downloaded');
  }
  return out;
}

/* ------------------------------------------------------------------------------------------------
 * Upload
 * ---------------------------------------------------------------------------------------------- */

async function mkdirp(sftp: SFTPWrapper, dir: string, known: Set<string>): Promise<void> {
  if (dir === '/' || dir === '.' || dir === '' || known.has(dir)) return;
  const st = await stat(sftp, dir).catch(() => null);
  if (st) {
    if (!st.isDirectory()) throw new StepError('sftp_transfer_failed', `remote '${dir}' exists and is not a directory`, { retryable: false });
    known.add(dir);
    return;
  }
  await mkdirp(sftp, posix.dirname(dir), known);
  await new Promise<void>((resolve, reject) => sftp.mkdir(dir, (err) => (err ? reject(err) : resolve()))).catch(async (err) => {
    if (!(await stat(sftp, dir).catch(() => null))?.isDirectory()) throw remoteError(err, dir);
  });
  known.add(dir);
}

async function upload(
  sftp: SFTPWrapper,
  config: SftpStepConfig,
  ctx: StepRunContext,
  folder: string,
  localBase: string,
  signal: AbortSignal,
): Promise<SftpFile[]> {
  const blobs = withBlobRetry(ctx.services.blobs, { signal, deadline: ctx.deadline, logger: ctx.logger });
  const match = matcher(config.pattern);
  let todo: { path: string; rel: string; size: number }[];
  const single = localBase ? await blobs.stat(localKey(folder, localBase)) : null;
  if (single) {
    todo = [{ path: localBase, rel: posix.basename(localBase), size: single.size }];
  } else {
    const prefix = folder + (localBase ? `${localBase}/` : '');
    todo = (await blobs.list(prefix))
      .map((b) => ({ path: b.key.slice(folder.length), rel: b.key.slice(prefix.length), size: b.size }))
      .filter((f) => (config.recursive || !f.rel.includes('/')) && match(f.rel));
  }
  if (todo.length === 0) {
    throw new StepError(
      'sftp_file_not_found',
      `no file to upload: '${localBase || '.'}' in the execution folder ${config.pattern ? `has no file matching '${config.pattern}'` : 'is empty or missing'}`,
      {
        retryable: false,
        details: { local_path: localBase || '.', pattern: config.pattern ?? null },
      },
    );
  }

  // remote_path is the target file for one file (unless it ends with '/' or is an existing directory).
  const remote = config.remote_path;
  const remoteSt = await stat(sftp, remote).catch(() => null);
  const asFile = todo.length === 1 && single !== null && !remote.endsWith('/') && !remoteSt?.isDirectory();
  const createDirs = config.create_directories ?? true;
  const known = new Set<string>();
  const out: SftpFile[] = [];
  for (const f of todo) {
    if (signal.aborted) throw signal.reason;
    const target = asFile ? remote : posix.join(remote, f.rel);
    if (createDirs) await mkdirp(sftp, posix.dirname(target), known);
    await putAtomically(sftp, () => blobs.getStream(folder + f.path), target, signal, ctx);
    out.push({ name: posix.basename(target), path: f.path, remote_path: target, size: f.size });
    ctx.logger.debug({ remote: target, path: f.path, size: f.size }, 'sftp step: uploaded');
  }
  return out;
}

/** The temporary name an upload of `target` is written under: hidden, in the same directory (so the
 * rename stays on one file system), recognisable, unique per upload. */
function partName(target: string): string {
  return posix.join(posix.dirname(target), `.${posix.basename(target)}.vecron-${randomBytes(6).toString('hex')}.part`);
}

const unlink = (sftp: SFTPWrapper, p: string) => new Promise<void>((resolve, reject) => sftp.unlink(p, (err) => (err ? reject(err) : resolve())));
const rename = (sftp: SFTPWrapper, from: string, to: string) =>
  new Promise<void>((resolve, reject) => sftp.rename(from, to, (err) => (err ? reject(err) : resolve())));

/** Renames `from` onto `to`, replacing `to` if it exists. */
async function renameOnto(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  let posixRename: Promise<void> | null = null;
  try {
    // OpenSSH's extension is rename(2): an existing target is replaced atomically, so a reader of
    // `to` sees the old file or the new one, never neither. ssh2 throws at once if the server did
    // not announce the extension.
    posixRename = new Promise<void>((resolve, reject) => sftp.ext_openssh_rename(from, to, (err) => (err ? reject(err) : resolve())));
  } catch {
    /* not offered: below */
  }
  if (posixRename) return posixRename;
  // Plain SFTP rename (draft-02 SSH_FXP_RENAME) fails when the target exists, so the old file is
  // removed first: NOT atomic — for a moment there is no file under the final name (a reader may
  // see it missing, never half-written), and if the rename then fails the old file is gone.
  await unlink(sftp, to).catch((err) => {
    if ((err as { code?: unknown }).code !== NO_SUCH_FILE) throw err;
  });
  await rename(sftp, from, to);
}

/**
 * Uploads to a temporary name next to `target`, then renames it onto `target`: the final name never
 * holds a half-written file, and a failed upload leaves an existing target as it was. On failure
 * (the source blob cannot be read, the server refuses a write, the step is aborted) the temporary
 * file is removed — unless the connection itself is gone, when nothing can be removed and a
 * `.<name>.vecron-<random>.part` file stays on the server.
 */
async function putAtomically(sftp: SFTPWrapper, source: () => Promise<Readable>, target: string, signal: AbortSignal, ctx: StepRunContext): Promise<void> {
  const tmp = partName(target);
  let written = false;
  let opened = false;
  try {
    const rs = await source();
    const ws = sftp.createWriteStream(tmp) as unknown as Writable;
    written = true;
    ws.once('open', () => (opened = true));
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    await pipeline(rs, ws, { signal });
    await closed; // the remote handle is closed: every byte is in the file
    await renameOnto(sftp, tmp, target);
  } catch (err) {
    if (written) {
      await unlink(sftp, tmp).catch((e) => {
        // Not opened: the server refused to create it (no such directory, permission denied).
        if (opened && (e as { code?: unknown }).code !== NO_SUCH_FILE)
          ctx.logger.warn({ remote: tmp, err: (e as Error).message }, 'sftp step: could not remove the temporary file of a failed upload');
      });
    }
    throw signal.aborted ? signal.reason : remoteError(err, target);
  }
}

/* ------------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------------- */

function remoteError(err: unknown, path: string): unknown {
  const e = err as { code?: unknown; message?: string };
  if (e?.code === NO_SUCH_FILE) {
    return new StepError('sftp_file_not_found', `remote '${path}' does not exist`, { retryable: false, details: { remote_path: path } });
  }
  if (e?.code === PERMISSION_DENIED) {
    return new StepError('sftp_permission_denied', `permission denied on remote '${path}'`, { retryable: false, details: { remote_path: path } });
  }
  if (typeof e?.code === 'number') {
    return new StepError('sftp_transfer_failed', `remote '${path}': ${e.message}`, { retryable: false, details: { remote_path: path, status: e.code } });
  }
  return err;
}

const NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

function toStepError(err: unknown, signal: AbortSignal, config: SftpStepConfig): StepError {
  if (signal.aborted) {
    const reason = signal.reason;
    if (reason instanceof StepError) return reason;
    return new StepError('aborted', `the SFTP ${config.operation} was aborted`, { retryable: true, cause: err });
  }
  if (err instanceof StepError) return err;
  const denied = egressDeniedIn(err);
  if (denied) return denied;
  const where = `${config.host}:${config.port ?? 22}`;
  if (err instanceof HostKeyMismatch) {
    return new StepError('sftp_host_key_mismatch', `refusing ${where}: ${err.message}`, {
      retryable: false,
      details: { expected: err.expected, actual: err.actual },
    });
  }
  const e = err as { level?: string; code?: string; message?: string };
  if (e?.level === 'client-authentication') {
    return new StepError(
      'sftp_auth_failed',
      `${where} refused the ${config.auth.type === 'password' ? 'password' : 'private key'} of user '${config.username}'`,
      { retryable: false },
    );
  }
  if (e?.level === 'client-socket' || e?.level === 'client-timeout' || (typeof e?.code === 'string' && NET.has(e.code))) {
    return new StepError('sftp_connection_failed', `cannot connect to ${where}: ${e.message ?? e.code}`, {
      retryable: true,
      cause: err,
      details: { host: where, cause: e.code ?? e.level },
    });
  }
  return new StepError('sftp_transfer_failed', `SFTP ${config.operation} with ${where} failed: ${e?.message ?? String(err)}`, { retryable: true, cause: err });
}
