/**
 * `wasm-cli`: the module author's tool (docs/cli.md). One file per command in src/cli/wasm/:
 *   init NAME --lang L · build · test · inspect FILE · upload · list · download · keygen · sign · replay
 * Exit codes: 0 ok; 1 the command ran and the answer is no (a refusal, a failed build or test, a
 * module that breaks the ABI); 2 the command line is wrong (unknown flag, missing value). `replay`
 * has its own: 0 reproduced, 1 diverged, 2 could not replay.
 * The CLI's own version is `wasm-cli --version` (or -V) alone: options of the program are read only
 * before the command (positional options), so `upload --version 1.0.0` is the module's version.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { CliError, UsageError } from './wasm/errors.ts';
import { WasmModuleError } from '../wasm/runtime/types.ts';
import { registerInit } from './wasm/init.ts';
import { registerBuild } from './wasm/build.ts';
import { registerTest } from './wasm/test.ts';
import { registerInspect } from './wasm/inspect.ts';
import { registerUpload } from './wasm/upload.ts';
import { registerList } from './wasm/list.ts';
import { registerDownload } from './wasm/download.ts';
import { registerKeygen } from './wasm/keygen.ts';
import { registerSign } from './wasm/sign.ts';
import { registerReplay } from './wasm/replay.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('wasm-cli')
    .description('create, build, test and publish vecron WebAssembly modules')
    .version(VERSION, '-V, --version', "print wasm-cli's own version (a command's --version is the module's)")
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(wasm-cli <command> --help shows its flags)');
  // Set before the commands are added: they inherit these settings.
  for (const register of [
    registerInit,
    registerBuild,
    registerTest,
    registerInspect,
    registerUpload,
    registerList,
    registerDownload,
    registerKeygen,
    registerSign,
    registerReplay,
  ]) {
    register(program);
  }
  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end with a CommanderError of exit code 0; commander printed the message.
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`wasm-cli: ${(err as Error).message}\n`);
    if (err instanceof CliError || err instanceof WasmModuleError) return 1;
    if (err instanceof UsageError) return 2;
    if (process.env.WASM_CLI_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

// No top-level await: the single-file executable's bundle is CommonJS.
void main(process.argv).then((code) => {
  process.exitCode = code;
});
