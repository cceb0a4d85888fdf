/**
 * A HostSession outside the engine, for `wasm-cli test` and tools: the grants given on the command
 * line, datasources and secrets by name, and a directory as the file area, so an author runs
 * locally exactly the checks a job would run.
 *
 * The directory is the job's own area: guest path `reports/out.csv` is `DIR/reports/out.csv`, and
 * the shared area `shared/...` is `DIR/shared/...` (still reachable only through a pattern naming
 * it). Without a directory every file call answers `unavailable`.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Permission } from '../../modules/permissions.ts';
import type { BlobInfo, BlobStore } from '../../storage/blob-store.ts';
import { FsBlobStore } from '../../storage/fs-store.ts';
import { jobArea } from './file-area.ts';
import { HostCallError, type HostLimits, type HostSession } from './types.ts';

/** The defaults of VECRON_WASM_HOST_* (src/config/index.ts). */
export const DEFAULT_HOST_LIMITS: HostLimits = { maxRequestBytes: 1_048_576, maxResponseBytes: 16_777_216, maxRows: 10_000, maxCallMs: 30_000 };

export interface LocalSessionOptions {
  /** What the module may do (`--allow type=pattern`). */
  grants: readonly Permission[];
  /** Datasource name -> connection URL (`--datasource NAME=URL`): what `db_query` resolves. */
  datasources?: Record<string, string>;
  /** Secret name -> value: what `key_secret` (and templated secrets) resolve to. */
  secrets?: Record<string, string>;
  /** The file area (`--files DIR`). */
  filesDir?: string;
  limits?: Partial<HostLimits>;
  /** Epoch ms; default: one hour from now. */
  deadline?: number;
  module?: HostSession['module'];
  jobId?: string;
  /** Each denial, as it happens (the CLI prints them). */
  onDenied?: HostSession['onDenied'];
  logger?: HostSession['logger'];
}

/** The job area of a directory store, mapped to the directory's root. */
class AreaStore implements BlobStore {
  readonly kind = 'fs' as const;
  private readonly fs: FsBlobStore;
  constructor(
    root: string,
    private readonly area: string,
  ) {
    this.fs = new FsBlobStore(root);
  }
  private local = (key: string): string => (key.startsWith(this.area) ? key.slice(this.area.length) : key);
  private back = (info: BlobInfo): BlobInfo => ({ ...info, key: info.key.startsWith('shared/') ? info.key : this.area + info.key });
  async put(key: string, data: Buffer | Uint8Array) {
    return this.back(await this.fs.put(this.local(key), data));
  }
  async putStream(key: string, body: Readable) {
    return this.back(await this.fs.putStream(this.local(key), body));
  }
  get(key: string) {
    return this.fs.get(this.local(key));
  }
  getStream(key: string) {
    return this.fs.getStream(this.local(key));
  }
  async stat(key: string) {
    const i = await this.fs.stat(this.local(key));
    return i && this.back(i);
  }
  delete(key: string) {
    return this.fs.delete(this.local(key));
  }
  async list(prefix: string) {
    const own = prefix.startsWith(this.area);
    // The root of the directory also holds shared/: a listing of the job's area leaves it out.
    return (await this.fs.list(this.local(prefix))).filter((i) => own !== i.key.startsWith('shared/')).map(this.back);
  }
}

const noFiles = (): never => {
  throw new HostCallError('unavailable', 'no file area: give one with --files DIR');
};
const NO_FILES: BlobStore = { kind: 'fs', put: noFiles, putStream: noFiles, get: noFiles, getStream: noFiles, stat: noFiles, delete: noFiles, list: noFiles };

export function createLocalSession(o: LocalSessionOptions): HostSession & { denials: Parameters<HostSession['onDenied']>[0][] } {
  const jobId = o.jobId ?? 'local';
  const denials: Parameters<HostSession['onDenied']>[0][] = [];
  const variables: Record<string, string> = { ...o.datasources, ...o.secrets };
  return {
    jobId,
    executionId: randomUUID(),
    stepId: 'local',
    module: o.module ?? { id: 'local', name: 'local', version: '0.0.0' },
    permissions: o.grants,
    blobs: o.filesDir ? new AreaStore(o.filesDir, jobArea(jobId)) : NO_FILES,
    variable: (name) => (Object.hasOwn(variables, name) ? variables[name] : undefined),
    limits: { ...DEFAULT_HOST_LIMITS, ...o.limits },
    deadline: o.deadline ?? Date.now() + 3_600_000,
    onDenied(d) {
      denials.push(d);
      o.onDenied?.(d);
    },
    logger: o.logger,
    denials,
  };
}
