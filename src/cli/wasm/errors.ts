/**
 * The two ways a wasm-cli command fails, by exit code:
 * - CliError (exit 1): the command ran and the answer is no (a refusal by the server, a failed
 *   build, a test case that does not match, a module that breaks the ABI);
 * - UsageError (exit 2): the command line or the project is wrong (unknown flag, missing value,
 *   a manifest that does not parse), so nothing was tried.
 */
export class CliError extends Error {}
export class UsageError extends Error {}
