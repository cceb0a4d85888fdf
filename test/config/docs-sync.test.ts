import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { settingsTable } from '../../src/config/index.ts';

it('docs/configuration.md contains the current settings table (regenerate with `npx vecron config`)', () => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  assert.ok(doc.includes(settingsTable()), 'docs/configuration.md is out of date: paste the output of `npx vecron config`');
});
