import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { ApiContext } from '../context.ts';

/** Where `npm install` (scripts/build-web.mjs) writes the built dashboard. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

// The dashboard talks only to this origin; React sets inline style attributes, hence style-src-attr.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  type: string;
  body: Buffer;
  /** Worth compressing (text over 1 KB). */
  compressible: boolean;
  /** Its gzip copy, made on the first request that accepts it (not at start: issue 19's cold start). */
  gzip: Buffer | null;
  /** Vite puts content-hashed files under assets/: they never change, so they may be cached for ever. */
  immutable: boolean;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const body = readFileSync(p);
        const type = TYPES[extname(name)] ?? 'application/octet-stream';
        const compressible = /^(text\/|application\/json|image\/svg)/.test(type) && body.length > 1024;
        const url = '/' + relative(dir, p).split(sep).join('/');
        assets.set(url, { type, body, compressible, gzip: null, immutable: url.startsWith('/assets/') });
      }
    }
  };
  walk(dir);
  return assets;
}

/** Client-side routes of the dashboard (keep in step with web/src/app.tsx). */
export const APP_ROUTES = [
  '/',
  '/sign-in',
  '/jobs',
  '/jobs/*',
  '/executions',
  '/executions/*',
  '/modules',
  '/modules/*',
  '/audit',
  '/variables',
  '/tokens',
  '/maintenance',
];

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>vecron</title>
<h1>The vecron dashboard is not built</h1><p>Run <code>npm install</code> (or <code>npm run build:web</code>) and restart; the API is at <a href="/docs">/docs</a>.</p></html>`;

/**
 * The dashboard (web/, a single-page app) at `/`. Files are read once at start and kept in memory
 * (with a gzip copy from their first compressed answer); the app's own routes (`/jobs/<id>`) answer index.html, so they survive a reload.
 */
export async function dashboardRoutes(app: FastifyInstance, _ctx: ApiContext): Promise<void> {
  const built = existsSync(join(DASHBOARD_DIR, 'index.html'));
  const assets = built ? loadAssets(DASHBOARD_DIR) : new Map<string, Asset>();

  const send = (req: FastifyRequest, reply: FastifyReply, a: Asset) => {
    reply
      .header('content-type', a.type)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (a.type.startsWith('text/html')) reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    if (a.compressible) {
      reply.header('vary', 'accept-encoding');
      if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        a.gzip ??= gzipSync(a.body, { level: 9 });
        return reply.header('content-encoding', 'gzip').send(a.gzip);
      }
    }
    return reply.send(a.body);
  };

  /** The single-page app's own routes (web/src/app.tsx): each answers index.html, so a reload works. */
  const appPage = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!built) return reply.status(503).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-cache').send(NOT_BUILT);
    return send(req, reply, assets.get('/index.html')!);
  };
  /** Built files; an unknown one is the API's JSON 404. */
  const file = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0];
    const a = assets.get(path);
    if (a && path !== '/index.html') return send(req, reply, a);
    return reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
  };

  // Only these paths: anything else keeps the API's 404 (and /api/... its deny-by-default auth).
  const opts = { config: { role: 'public' as const }, schema: { hide: true } };
  for (const path of APP_ROUTES) app.get(path, opts, appPage);
  app.get('/assets/*', opts, file);
  app.get('/favicon.svg', opts, file);
}
