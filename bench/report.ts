/**
 * Writes a suite's results into docs/benchmarks.md: each suite owns one `## ` section, which a new
 * run replaces; the other sections (other suites) are kept as they are.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

export const BENCHMARKS_DOC = new URL('../docs/benchmarks.md', import.meta.url).pathname;

const INTRO = `# Benchmarks

Reproduce with \`npm run bench\`: it runs every suite listed in \`bench/run.ts\`, one after the
other (one suite alone: \`node --import tsx bench/<suite>.ts\`). Suites that need PostgreSQL use
\`BENCH_DATABASE_URL\` or \`TEST_DATABASE_URL\` (a superuser URL: each run creates its own database
and drops it at the end); when neither is set they start the local test servers with
\`bash scripts/services.sh start\`. Every suite prints its tables to stdout and replaces its own
section below (the others are kept), so each section is one run, on the machine it names.
Numbers from a shared or virtual machine move by ±10-20 % from run to run; compare rows of the
same run rather than runs with each other.
`;

/** Replaces (or appends) the section that starts with `heading` (a `## ` line). */
export function writeSection(heading: string, body: string, file = BENCHMARKS_DOC): void {
  if (!heading.startsWith('## ')) throw new Error(`section heading must start with '## ': ${heading}`);
  const section = `${heading}\n\n${body.trim()}\n`;
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : INTRO;
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trimEnd() === heading);
  if (start < 0) {
    doc = `${doc.trimEnd()}\n\n${section}`;
  } else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end < 0) end = lines.length;
    const before = lines.slice(0, start).join('\n').trimEnd();
    const after = lines.slice(end).join('\n').trim();
    doc = `${before}\n\n${section}${after ? `\n${after}\n` : ''}`;
  }
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, doc.endsWith('\n') ? doc : doc + '\n');
  renameSync(tmp, file);
}

export interface MachineInfo {
  date: string;
  nproc: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    /* keep os.cpus() */
  }
  return {
    date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    nproc,
    cpu: cpus()[0]?.model?.trim() || 'unknown CPU',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** The command line to show in reports (bench/run.ts passes its own through BENCH_COMMAND). */
export function benchCommand(suiteFile: string): string {
  return process.env.BENCH_COMMAND || `node --import tsx ${suiteFile}`;
}

/** A whole-number setting from the environment (BENCH_*), with a default and a lower bound. */
export function envInt(name: string, def: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}
