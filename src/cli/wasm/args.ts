/** Parsers of option values; a bad value is commander's InvalidArgumentError, so it exits 2. */
import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.ts';

export const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number`);
  return Number(v);
};

export const positiveNumber = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

/** A repeatable option: every value, in order. */
export const collect = (v: string, all: string[] = []): string[] => [...all, v];

/** `NAME=VALUE` split at the first `=`; both parts non-empty. */
export function keyValue(flag: string, v: string, what = 'NAME=VALUE'): [string, string] {
  const i = v.indexOf('=');
  if (i <= 0 || i === v.length - 1) throw new UsageError(`${flag} takes ${what}, got ${JSON.stringify(v)}`);
  return [v.slice(0, i), v.slice(i + 1)];
}
