#!/usr/bin/env node
// Times docs/quickstart-modules.md as a new user runs it, for one language: a fresh folder,
// `wasm-cli init`, `build`, `test`, a vecron server started from this checkout (`vecron start`,
// as `npm start` does), `upload` with the seed's flags, a job that runs the module every second,
// and its first scheduled run. Prints a Markdown table of the steps (wall-clock seconds).
// Usage: node scripts/time-quickstart.mjs LANG [--home DIR]   (--home: WASM_CLI_HOME, other templates)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer as createHttpServer } from 'node:http';

const root = new URL('..', import.meta.url).pathname;
const lang = process.argv[2];
if (!lang) throw new Error('usage: node scripts/time-quickstart.mjs LANG [--home DIR]');
const hi = process.argv.indexOf('--home');
const home = hi > 0 ? resolve(process.argv[hi + 1]) : undefined;
const dir = mkdtempSync(join(tmpdir(), `quickstart-${lang}-`));
const name = `quick-${lang}`;
const project = join(dir, name);
const rows = [];
const env = { ...process.env, ...(home ? { WASM_CLI_HOME: home } : {}) };

function sh(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}\n${out}`))));
  });
}
async function step(label, fn) {
  const t0 = performance.now();
  const r = await fn();
  rows.push([label, (performance.now() - t0) / 1000]);
  return r;
}
const wasmCli = (args, cwd = project) => sh(process.execPath, [join(root, 'bin/wasm-cli.js'), ...args], cwd);
const port = await new Promise((r) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => r(p));
  });
});
const token = randomBytes(24).toString('hex');
const base = `http://127.0.0.1:${port}`;
const api = async (method, path, body) => {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
};

// A stand-in for the services the route's steps call (vecron refuses its own address as egress).
const service = createHttpServer((_q, s) => s.end('{"ok":true}'));
await new Promise((r) => service.listen(0, '127.0.0.1', r));
const servicePort = service.address().port;
let server;
try {
  await step('wasm-cli init', () => wasmCli(['init', name, '--lang', lang], dir));
  await step('wasm-cli build', () => wasmCli(['build']));
  await step('wasm-cli test', () => wasmCli(['test']));
  await step('vecron start (to /health)', async () => {
    server = spawn(process.execPath, [join(root, 'bin/vecron.js'), 'start'], {
      cwd: dir,
      env: { ...env, PORT: String(port), HOST: '127.0.0.1', VECRON_DATA_DIR: join(dir, 'data'), VECRON_BOOTSTRAP_TOKEN: token, VECRON_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    for (;;) {
      if (
        await fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  const up = await step('wasm-cli upload', () => wasmCli(['upload', '--url', base, '--token', token, '--name', name, '--version', '1.0.0', '--json']));
  const module = JSON.parse(up.slice(up.indexOf('{')));
  const manifest = JSON.parse(readFileSync(join(project, 'vecron.json'), 'utf8'));
  const input = JSON.parse(readFileSync(join(project, 'test-input.json'), 'utf8'));
  const expected = JSON.parse(readFileSync(join(project, 'expected-output.json'), 'utf8'));
  const targets = typeof expected.next_step === 'string' ? [expected.next_step] : Array.isArray(expected.next_steps) ? expected.next_steps : [];
  const job = await step('create the scheduled job', () =>
    api('POST', '/api/v1/jobs', {
      name: `${name}-every-second`,
      schedule: { type: 'cron', expression: '* * * * * ?' },
      steps: [
        {
          id: 'module',
          type: 'wasm',
          config: {
            module_id: `${module.name}@${module.version}`,
            function_name: manifest.entry,
            input,
            ...(manifest.limits?.fuel ? { fuel_limit: manifest.limits.fuel } : {}),
          },
        },
        // The route's targets: plain http steps to the stand-in service.
        ...targets.map((id) => ({ id, type: 'http', config: { method: 'POST', url: `http://127.0.0.1:${servicePort}/${id}` } })),
      ],
    }),
  );
  if (job.status !== 201) throw new Error(JSON.stringify(job.body));
  const exec = await step('first scheduled run finished', async () => {
    for (;;) {
      const r = await api('GET', `/api/v1/executions?job_id=${job.body.id}&limit=5`);
      const e = r.body.items.find((x) => x.trigger_type === 'schedule' && !['queued', 'running'].includes(x.status));
      if (e) return e;
      await new Promise((res) => setTimeout(res, 200));
    }
  });
  await api('POST', `/api/v1/jobs/${job.body.id}/disable`);
  const total = rows.reduce((a, [, s]) => a + s, 0);
  console.log(`| step (${lang}) | seconds |\n| --- | ---: |`);
  for (const [l, s] of rows) console.log(`| ${l} | ${s.toFixed(1)} |`);
  console.log(`| **total** | **${total.toFixed(1)}** |`);
  console.log(`\nscheduled run: ${exec.status}`);
} finally {
  server?.kill('SIGTERM');
  service.close();
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
}
