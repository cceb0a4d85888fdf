#!/usr/bin/env node
// Builds the dashboard (web/) into web/dist with Vite. Run by `npm install` (prepare) and by
// `npm start` with --if-missing (builds only when web/dist/index.html is absent).
// Without Vite installed (npm install --omit=dev) it says so and exits 0: the API runs without a dashboard.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const webDir = fileURLToPath(new URL('../web/', import.meta.url));
const ifMissing = process.argv.includes('--if-missing');

if (ifMissing && existsSync(`${webDir}dist/index.html`)) process.exit(0);

// A production build whatever the caller's NODE_ENV (the test runner sets 'test', which would make
// Vite bundle React's development build: 60 % larger and slower).
process.env.NODE_ENV = 'production';

let vite;
try {
  vite = await import('vite');
} catch {
  console.warn('[vecron] vite is not installed (dev dependencies omitted?): the dashboard is not built; the API still runs.');
  process.exit(0);
}
const started = Date.now();
await vite.build({ root: webDir, configFile: `${webDir}vite.config.ts`, logLevel: process.env.VECRON_WEB_BUILD_LOG ?? 'warn' });
console.log(`[vecron] dashboard built into web/dist in ${((Date.now() - started) / 1000).toFixed(1)} s`);
