/** `wasm-cli list --url --token [--search]`: the modules in the registry, as a table. */
import type { Command } from 'commander';
import { call, serverOf, type ServerOptions } from './server.ts';
import { serverOptions } from './server-options.ts';
import { positiveInt } from './args.ts';

export function registerList(program: Command): void {
  serverOptions(
    program
      .command('list')
      .option('--search <text>', 'filter by name, description or author')
      .option('--page <n>', 'page', positiveInt('--page'), 1)
      .option('--limit <n>', 'modules per page', positiveInt('--limit'), 20)
      .option('--json', 'print the registry answer as JSON'),
  )
    .description('list the modules in the registry')
    .action(async (opts: ServerOptions & { search?: string; page: number; limit: number; json?: boolean }) => {
      const { base, headers } = serverOf(opts);
      const q = new URLSearchParams({ page: String(opts.page), limit: String(opts.limit), ...(opts.search ? { search: opts.search } : {}) });
      const body: any = await (await call(`${base}/api/v1/wasm/modules?${q}`, { headers }, 'list')).json();
      if (opts.json) {
        process.stdout.write(JSON.stringify(body, null, 2) + '\n');
        return;
      }
      const rows = body.items.map((m: any) => [
        `${m.name}@${m.version}`,
        m.id,
        String(m.size_bytes),
        m.signed ? 'signed' : '-',
        m.author,
        m.created_at.slice(0, 19) + 'Z',
      ]);
      const head = ['MODULE', 'ID', 'BYTES', 'SIGNED', 'AUTHOR', 'CREATED'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r: string[]) => r[i].length)));
      const fmt = (r: string[]) =>
        r
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd() + '\n';
      process.stdout.write(fmt(head));
      for (const r of rows) process.stdout.write(fmt(r));
      process.stdout.write(`${body.items.length} of ${body.total} module(s), page ${body.page}\n`);
    });
}
