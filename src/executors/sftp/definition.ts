import type { Problem } from '../../errors.ts';
import { egressHostProblem } from '../../egress/index.ts';
import {
  type JsonSchema,
  type StepDefinition,
  containsTemplate,
  dropNulls,
  enumFromSeed,
  isPlainObject,
  problem,
  relativePathProblem,
  taggedFromSeed,
} from '../definition.ts';

export type SftpAuth = { type: 'password'; password: string } | { type: 'private_key'; private_key: string; passphrase?: string };

export interface SftpStepConfig {
  operation: 'download' | 'upload';
  host: string;
  port: number;
  username: string;
  auth: SftpAuth;
  /** `SHA256:<base64>` as printed by `ssh-keygen -lf`; when set, any other host key is rejected. */
  host_key_fingerprint?: string;
  /** Remote file or directory. */
  remote_path: string;
  /** Glob matched against file names in remote_path (download) or local_path (upload), e.g. `TXN_*.csv`. */
  pattern?: string;
  recursive?: boolean;
  /** Path in the execution folder: destination of a download (default: the folder itself), source of an upload. */
  local_path?: string;
  create_directories?: boolean;
  timeout_seconds?: number;
  max_retries?: number;
}

const nonEmpty = { type: 'string', minLength: 1 };

const configSchema: JsonSchema = {
  type: 'object',
  required: ['operation', 'host', 'username', 'auth', 'remote_path'],
  additionalProperties: false,
  properties: {
    operation: { type: 'string', enum: ['download', 'upload'] },
    host: { type: 'string', minLength: 1, maxLength: 255 },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 22 },
    username: { type: 'string', minLength: 1, maxLength: 255 },
    auth: {
      type: 'object',
      required: ['type'],
      discriminator: { propertyName: 'type' },
      oneOf: [
        {
          properties: { type: { const: 'password' }, password: nonEmpty },
          required: ['type', 'password'],
          additionalProperties: false,
        },
        {
          properties: { type: { const: 'private_key' }, private_key: nonEmpty, passphrase: { type: 'string' } },
          required: ['type', 'private_key'],
          additionalProperties: false,
        },
      ],
    },
    host_key_fingerprint: { type: 'string', minLength: 1 },
    remote_path: { type: 'string', minLength: 1, maxLength: 4096 },
    pattern: { type: 'string', minLength: 1, maxLength: 1024 },
    recursive: { type: 'boolean' },
    local_path: { type: 'string', minLength: 1, maxLength: 1024 },
    create_directories: { type: 'boolean' },
    timeout_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
    max_retries: { type: 'integer', minimum: 0, maximum: 10 },
  },
};

function fromSeed(seed: any): unknown {
  if (!isPlainObject(seed)) return seed;
  const c = dropNulls(seed);
  if ('operation' in c) c.operation = enumFromSeed(c.operation);
  if ('auth' in c) c.auth = taggedFromSeed(c.auth, { Password: 'password', PrivateKey: 'private_key' });
  return c;
}

/** OpenSSH prints SHA256 fingerprints as unpadded base64 (43 characters). */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[?[0-9A-Fa-f:.]+\]?)$/;

function check(c: SftpStepConfig): Problem[] {
  const out: Problem[] = [];
  if (!containsTemplate(c.host)) {
    if (/^[a-z]+:\/\//i.test(c.host)) out.push(problem('host', `must be a host name or IP address, not a URL (got '${c.host}')`));
    else if (!HOST.test(c.host)) out.push(problem('host', `must be a host name or IP address (got '${c.host}')`));
    else if (c.port === undefined || !containsTemplate(String(c.port))) {
      const refused = egressHostProblem(c.host.replace(/^\[(.*)\]$/, '$1'), Number(c.port ?? 22));
      if (refused) out.push(problem('host', refused));
    }
  }
  if (c.host_key_fingerprint !== undefined && !containsTemplate(c.host_key_fingerprint) && !FINGERPRINT.test(c.host_key_fingerprint)) {
    out.push(problem('host_key_fingerprint', "must be 'SHA256:<43 base64 characters>' as printed by 'ssh-keygen -lf <key>'"));
  }
  if (c.auth.type === 'private_key' && !containsTemplate(c.auth.private_key) && !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(c.auth.private_key)) {
    out.push(problem('auth.private_key', "must be a PEM/OpenSSH private key ('-----BEGIN … PRIVATE KEY-----') or a template such as '${SFTP_KEY}'"));
  }
  if (c.operation === 'upload' && c.local_path === undefined) {
    out.push(problem('', "missing required property 'local_path' (the file or folder in the execution folder to upload)"));
  }
  if (c.local_path !== undefined) {
    const p = relativePathProblem(c.local_path);
    if (p) out.push(problem('local_path', p));
  }
  return out;
}

export const sftp: StepDefinition<'sftp', SftpStepConfig> = {
  type: 'sftp',
  seedName: 'Sftp',
  loadExecutor: () => import('./executor.ts'),
  title: 'Download or upload files over SFTP',
  configSchema,
  fromSeed,
  check,
};
