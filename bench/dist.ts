/**
 * The compiled tree (dist/, what `npm install` builds and `vecron start` runs). A benchmark that
 * measures the service's own code loads it from here, so that no figure includes tsx (which wraps
 * every function it compiles, and registers itself again in each worker thread).
 */
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { distProblem } from '../bin/entry.js';

const ROOT = new URL('..', import.meta.url).pathname;

/** Builds dist/ when it is missing or older than src/ (else a "dist" figure would silently be stale code). */
export function ensureDist(log: (s: string) => void): void {
  const problem = distProblem();
  if (problem === null) return;
  log(`dist/ is ${problem}: building it (node scripts/build-dist.mjs)`);
  execFileSync(process.execPath, ['scripts/build-dist.mjs'], { cwd: ROOT, stdio: 'inherit' });
}

/** src/<path>.ts as compiled into dist/<path>.js, typed as the source module: `fromDist<typeof import('../src/app.ts')>('app')`. */
export async function fromDist<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(`${ROOT}dist/${path}.js`).href)) as T;
}
