/**
 * A project's test cases (`tests/*.json`, docs/cli.md): each is
 * `{name, input, expected_output | expected_error | expected_route, function?, context?, fuel?}`
 * (a file may hold one case or an array of them). Read and checked here; judged against a run.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import { UsageError } from './errors.ts';
import { jsonDiff } from './json-diff.ts';
import type { LocalRun } from './test-run.ts';

export interface TestCase {
  name: string;
  file: string;
  input: unknown;
  context?: unknown;
  function?: string;
  fuel?: number;
  expectedOutput?: unknown;
  expectedError?: string;
  expectedRoute?: string[];
}

const CASE_KEYS = new Set(['name', 'input', 'context', 'function', 'fuel', 'expected_output', 'expected_error', 'expected_route', 'description']);

function walk(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** The files the manifest's `tests` glob matches, relative to the project root, in name order. */
export function caseFiles(root: string, pattern: string): string[] {
  const parts = pattern.split('/');
  const staticParts: string[] = [];
  for (const p of parts) {
    if (/[*?[\]{}]/.test(p)) break;
    staticParts.push(p);
  }
  const base = join(root, ...staticParts.slice(0, staticParts.length === parts.length ? -1 : undefined));
  const match = picomatch(pattern);
  return walk(base)
    .map((f) => relative(root, f).split(sep).join('/'))
    .filter((f) => match(f));
}

export function loadCases(root: string, pattern: string): TestCase[] {
  const cases: TestCase[] = [];
  for (const file of caseFiles(root, pattern)) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(join(root, file), 'utf8'));
    } catch (err) {
      throw new UsageError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
    const list = Array.isArray(raw) ? raw : [raw];
    list.forEach((c, i) => cases.push(checkCase(c, list.length > 1 ? `${file}[${i}]` : file)));
  }
  return cases;
}

function checkCase(c: unknown, where: string): TestCase {
  if (c === null || typeof c !== 'object' || Array.isArray(c))
    throw new UsageError(`${where}: a test case is an object {name, input, expected_output | expected_error}`);
  const o = c as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(o)) if (!CASE_KEYS.has(k)) problems.push(`${k} is not a test case key (${[...CASE_KEYS].join(', ')})`);
  if (o.name !== undefined && typeof o.name !== 'string') problems.push('name must be a string');
  if (o.function !== undefined && typeof o.function !== 'string') problems.push('function must be a string');
  if (o.fuel !== undefined && !(typeof o.fuel === 'number' && Number.isInteger(o.fuel) && o.fuel > 0)) problems.push('fuel must be a positive whole number');
  if (o.expected_error !== undefined && typeof o.expected_error !== 'string') problems.push('expected_error must be an error code such as "validation_failed"');
  if (o.expected_route !== undefined && !(Array.isArray(o.expected_route) && o.expected_route.every((s) => typeof s === 'string'))) {
    problems.push('expected_route must be an array of step ids ([] for the end of the execution)');
  }
  if (o.expected_output === undefined && o.expected_error === undefined && o.expected_route === undefined) {
    problems.push('give expected_output, expected_error or expected_route');
  }
  if (o.expected_output !== undefined && o.expected_error !== undefined) problems.push('give expected_output or expected_error, not both');
  if (problems.length) throw new UsageError(`${where}: ${problems.join('; ')}`);
  return {
    name: (o.name as string | undefined) ?? where,
    file: where,
    input: o.input ?? {},
    context: o.context,
    function: o.function as string | undefined,
    fuel: o.fuel as number | undefined,
    expectedOutput: o.expected_output,
    expectedError: o.expected_error as string | undefined,
    expectedRoute: o.expected_route as string[] | undefined,
  };
}

/** Why a run does not match its case: readable lines, empty when it matches. */
export function judgeCase(c: TestCase, run: LocalRun): string[] {
  const r = run.result;
  const problems: string[] = [];
  if (c.expectedError !== undefined) {
    if (run.errorCode !== c.expectedError) {
      problems.push(
        `expected the error ${c.expectedError}, got ${run.errorCode ? `${run.errorCode}: ${run.verdict.error?.message ?? run.route.error}` : 'success'}`,
      );
      if (r.ok) problems.push(`output: ${JSON.stringify(r.output)}`);
    }
  }
  if (c.expectedOutput !== undefined) {
    if (!r.ok) problems.push(`expected an output, the run failed: ${r.error.code}: ${r.error.message}`);
    else problems.push(...jsonDiff(c.expectedOutput, r.output));
  }
  if (c.expectedRoute !== undefined && r.ok) {
    const route = run.route.route;
    const got = route === null ? null : route.kind === 'goto' ? route.ids : route.kind === 'end' ? [] : null;
    if (JSON.stringify(got) !== JSON.stringify(c.expectedRoute)) {
      problems.push(
        `expected the route ${JSON.stringify(c.expectedRoute)}, got ${got === null ? (run.route.error ?? 'no route (the next step in order)') : JSON.stringify(got)}`,
      );
    }
  } else if (c.expectedRoute !== undefined) problems.push(`expected the route ${JSON.stringify(c.expectedRoute)}, the run failed: ${run.errorCode}`);
  return problems;
}
