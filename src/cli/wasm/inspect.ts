/**
 * `wasm-cli inspect FILE`: what a module imports and exports, its entry functions and their forms,
 * its memory and table limits, and whether the server would take it (the same checks as upload).
 * Exit 0 when it would, 1 when it would not (so a script can gate on it), 2 when FILE is unreadable.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { checkAbi, exportLines, importLines } from './abi-check.ts';
import { sha256 } from './module-file.ts';

const FORM_TEXT = {
  A: 'form A: (ptr, len) -> i64 packed (ptr << 32 | len)',
  B: 'form B: (ptr, len) -> i32 NUL-terminated',
  C: 'form C: WASI command, stdin -> stdout',
};

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .argument('<file>', 'the .wasm file')
    .option('-f, --function <name>', 'check this entry function (default: the only entry)')
    .option('--json', 'print one machine-readable JSON object')
    .description('print imports, exports, entry forms, memory and table limits, and whether the server would run it')
    .action(async (path: string, opts: { function?: string; json?: boolean }) => {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(readFileSync(resolve(path)));
      } catch (err) {
        throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
      }
      const report = await checkAbi(bytes, opts.function);
      const { info, prepared } = report;
      const memories = info.memories.map((m) => ({ min_pages: m.min, max_pages: m.max ?? null, imported: m.imported }));
      const tables = info.tables.map((t) => ({ element: t.element, min: t.min, max: t.max ?? null, imported: t.imported }));
      const entries = prepared?.entries.filter((e) => e.name !== 'alloc') ?? [];
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({
            file: resolve(path),
            size_bytes: bytes.length,
            sha256: sha256(bytes),
            imports: importLines(info),
            exports: exportLines(info),
            entries,
            memories,
            tables,
            wasi: info.imports.some((i) => i.module === 'wasi_snapshot_preview1'),
            ok: report.problem === null,
            entry: report.entry,
            problem: report.problem,
          }) + '\n',
        );
      } else {
        const out: string[] = [`${resolve(path)}: ${bytes.length.toLocaleString('en')} bytes, sha256 ${sha256(bytes)}`];
        out.push(`imports (${info.imports.length}):`, ...importLines(info).map((l) => `  ${l}`));
        out.push(`exports (${info.exports.length}):`, ...exportLines(info).map((l) => `  ${l}`));
        out.push(`entries: ${entries.length ? entries.map((e) => `${e.name} (${FORM_TEXT[e.form]})`).join('; ') : 'none'}`);
        for (const [i, m] of memories.entries()) {
          out.push(
            `memory ${i}: min ${m.min_pages} pages (${((m.min_pages * 64) / 1024).toFixed(2)} MiB), max ${m.max_pages === null ? 'none (the step memory limit clamps it)' : `${m.max_pages} pages`}${m.imported ? ', imported' : ''}`,
          );
        }
        if (memories.length === 0) out.push('memory: none');
        for (const [i, t] of tables.entries())
          out.push(`table ${i}: ${t.element}, min ${t.min}, max ${t.max ?? 'none (the step table_limit clamps it)'}${t.imported ? ', imported' : ''}`);
        if (tables.length === 0) out.push('tables: none');
        out.push(
          report.problem
            ? `ABI: refused: ${report.problem.code}: ${report.problem.message}`
            : report.entry
              ? `ABI: ok, the server would run ${report.entry.name} (form ${report.entry.form})`
              : `ABI: ok; ${report.ambiguous}`,
        );
        process.stdout.write(out.join('\n') + '\n');
      }
      if (report.problem) process.exitCode = 1;
    });
}
