import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, sharedFiles } from './support.ts';

// What every template of the guest SDKs shares (CONTRACT-16): one behaviour in every language, the
// same cases, a manifest with the contract's keys, a README with the next three commands.
const LANGS = ['c', 'cpp', 'rust', 'go', 'tinygo', 'assemblyscript', 'python'];

test('every SDK template has the same sample, expected output and cases', () => {
  const reference = sharedFiles('c');
  assert.equal(Object.keys(reference).filter((f) => f.startsWith('tests/')).length, 6);
  for (const lang of LANGS) assert.deepEqual(sharedFiles(lang), reference, lang);
});

test('every SDK template has template.json, a manifest of the contract and a README with the next commands', () => {
  for (const lang of LANGS) {
    const dir = join(ROOT, 'templates', lang);
    const meta = JSON.parse(readFileSync(join(dir, 'template.json'), 'utf8'));
    assert.equal(meta.language, lang);
    assert.ok(existsSync(join(ROOT, 'sdk', meta.sdk ?? lang)), `${lang}: its sdk folder exists`);
    const m = JSON.parse(readFileSync(join(dir, 'vecron.json'), 'utf8'));
    assert.equal(m.name, '{{name}}');
    assert.equal(m.version, '{{version}}');
    assert.equal(m.language, lang);
    assert.equal(m.entry, 'process');
    assert.ok(m.build.output.startsWith('build/') && m.build.output.endsWith('.wasm'), lang);
    assert.ok(m.build.requires.length >= 1 && m.build.requires.every((r: any) => r.tool && r.check && r.install), lang);
    assert.ok(m.limits.fuel > 0 && m.limits.memory_mb > 0 && m.limits.timeout_seconds > 0, lang);
    assert.deepEqual(m.permissions, []);
    assert.equal(m.tests, 'tests/*.json');
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const cmd of ['cd {{name}}', 'wasm-cli build', 'wasm-cli test']) assert.ok(readme.includes(cmd), `${lang} README: ${cmd}`);
    assert.ok(existsSync(join(ROOT, 'docs', 'sdk', `${lang}.md`)), `docs/sdk/${lang}.md`);
  }
  assert.deepEqual(
    readdirSync(join(ROOT, 'templates'))
      .filter((d) => LANGS.includes(d))
      .sort(),
    [...LANGS].sort(),
  );
});
