/**
 * `wasm-cli build`: builds the project's module (docs/cli.md):
 *   1. the manifest's `build.requires` are checked: a missing tool prints what installs it (exit 1);
 *   2. `build.command` runs with `sh -c` in the project folder (a spinner on a terminal, one line per
 *      step otherwise; the output is shown when a step fails, or always with --verbose);
 *   3. wasm-opt -Oz when one is found (unless `"optimize": false` or --no-optimize);
 *   4. the result is checked with the server's own checks (abi-check.ts) before it says OK;
 *   5. size, sha256, exports, entry and path are printed.
 */
import { renameSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, UsageError } from './errors.ts';
import { requireProject } from './project.ts';
import { buildEnv, findWasmOpt, missingTools, runShell, WASM_OPT_FEATURES } from './toolchain.ts';
import { spinner } from './progress.ts';
import { checkAbi, exportLines } from './abi-check.ts';
import { sha256 } from './module-file.ts';

const tail = (s: string, lines = 40) => s.trimEnd().split('\n').slice(-lines).join('\n');

export function registerBuild(program: Command): void {
  program
    .command('build')
    .option('--no-optimize', 'skip wasm-opt')
    .option('--verbose', "show the toolchain's output as it runs")
    .option('--json', 'print the result as one JSON object')
    .description("build the project's module, optimise it with wasm-opt and check it against the ABI")
    .action(async (opts: { optimize: boolean; verbose?: boolean; json?: boolean }) => {
      const project = requireProject('build');
      const { root, manifest } = project;
      if (!manifest.build) throw new UsageError(`${project.manifestPath} has no "build" section ({"command": ..., "output": "build/x.wasm"})`);
      const { build } = manifest;
      const env = buildEnv(root);
      const missing = missingTools(build.requires, root, env);
      if (missing.length) {
        throw new CliError(
          `missing toolchain for this ${manifest.language ?? ''} project:\n` +
            missing.map((r) => `  ${r.tool}: not found (check: ${r.check})\n    install it with: ${r.install}`).join('\n'),
        );
      }
      const output = resolve(root, build.output);
      rmSync(output, { force: true }); // so a build that writes nothing is not mistaken for one that did
      for (const [i, command] of build.command.entries()) {
        const label = `build${build.command.length > 1 ? ` [${i + 1}/${build.command.length}]` : ''}: ${command.length > 70 ? `${command.slice(0, 67)}...` : command}`;
        const s = spinner(label);
        const r = await runShell(command, root, env, Boolean(opts.verbose));
        if (r.code !== 0) {
          s.fail(r.signal ? `killed by ${r.signal}` : `exit ${r.code}`);
          if (!opts.verbose && r.output.trim()) process.stderr.write(`${tail(r.output)}\n`);
          throw new CliError(`the build command failed (${r.signal ?? `exit ${r.code}`}): ${command}`);
        }
        s.done('done');
      }
      if (!existsSync(output))
        throw new CliError(`the build finished but wrote no ${build.output}: check build.output in ${relative(process.cwd(), project.manifestPath)}`);
      const before = readFileSync(output).length;
      let optimizer: string | null = null;
      if (opts.optimize && build.optimize) {
        optimizer = findWasmOpt(env);
        if (optimizer) {
          const s = spinner('wasm-opt -Oz');
          const tmp = `${output}.opt.tmp`;
          const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;
          const r = await runShell(
            `${q(optimizer)} -Oz --strip-debug ${WASM_OPT_FEATURES.join(' ')} ${q(output)} -o ${q(tmp)}`,
            root,
            env,
            Boolean(opts.verbose),
          );
          if (r.code !== 0) {
            s.fail(`exit ${r.code}`);
            process.stderr.write(`${tail(r.output)}\n`);
            rmSync(tmp, { force: true });
            throw new CliError(`wasm-opt failed on ${build.output}; build without it with --no-optimize or "optimize": false`);
          }
          renameSync(tmp, output);
          s.done(`${before.toLocaleString('en')} -> ${readFileSync(output).length.toLocaleString('en')} bytes`);
        } else if (!opts.json) process.stderr.write('wasm-opt not found: not optimised (apt-get install binaryen, or npm install binaryen)\n');
      }
      const bytes = new Uint8Array(readFileSync(output));
      const report = await checkAbi(bytes, manifest.entry);
      if (report.ambiguous) throw new CliError(`${build.output}: ${report.ambiguous}`);
      if (report.problem) {
        throw new CliError(
          `${build.output} breaks the ABI: ${report.problem.code}: ${report.problem.message}\n` +
            '  the module must import only WASI preview 1 and the vecron host functions, and export memory, alloc and the entry (docs/abi.md); `wasm-cli inspect` shows what it has',
        );
      }
      const hash = sha256(bytes);
      const exportsList = exportLines(report.info);
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({
            ok: true,
            path: output,
            size_bytes: bytes.length,
            unoptimized_bytes: before,
            sha256: hash,
            optimizer,
            entry: report.entry,
            exports: exportsList,
          }) + '\n',
        );
        return;
      }
      process.stdout.write(
        `OK ${manifest.name}@${manifest.version}\n` +
          `  path     ${output}\n` +
          `  size     ${bytes.length.toLocaleString('en')} bytes${optimizer ? ` (before wasm-opt: ${before.toLocaleString('en')})` : ''}\n` +
          `  sha256   ${hash}\n` +
          `  entry    ${report.entry!.name} (form ${report.entry!.form})\n` +
          `  exports  ${exportsList.join(', ')}\n`,
      );
    });
}
