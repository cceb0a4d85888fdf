/**
 * The error codes are documented exactly (as Fastify tests its errors against its docs): the codes
 * vecron throws, the ErrorCode list, the HTTP status map and docs/api.md's error table agree.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../src/errors.ts';
import { STATUS_BY_CODE } from '../../src/api/error-handler.ts';

const root = new URL('../../', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The codes passed to `new VecronError(...)` anywhere in src/, and those the error handler picks. */
function thrownCodes(): Set<string> {
  const codes = new Set<string>();
  for (const file of sources(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    // the first argument: a literal, or a conditional choosing between literals
    for (const m of text.matchAll(/new VecronError\(\s*([^,]+),/g)) {
      // (a literal compared against is a condition, not a code: `x === 'a' ? 'a' : 'b'`)
      const literals = [...m[1].replace(/[!=]==\s*'[a-z_]+'/g, '').matchAll(/'([a-z_]+)'/g)].map((x) => x[1]);
      assert.ok(literals.length > 0 || /^\s*code\s*$/.test(m[1]), `${file}: VecronError with a code that is not a literal: ${m[1]}`);
      for (const c of literals) codes.add(c);
    }
    for (const m of text.matchAll(/const code: ErrorCode = ([^;]+);/g)) for (const x of m[1].matchAll(/'([a-z_]+)'/g)) codes.add(x[1]);
  }
  return codes;
}

/** docs/api.md's error table: code -> status. */
function documented(): Map<string, number> {
  const doc = readFileSync(join(root, 'docs/api.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Errors'), doc.indexOf('## Endpoints'));
  const out = new Map<string, number>();
  for (const line of section.split('\n')) {
    const row = /^\| (\d{3}) \| (.*) \|$/.exec(line);
    if (!row) continue;
    for (const m of row[2].matchAll(/`([a-z_]+)`/g)) {
      assert.ok(!out.has(m[1]), `${m[1]} is documented twice`);
      out.set(m[1], Number(row[1]));
    }
  }
  return out;
}

describe('error codes', () => {
  it('ErrorCode lists exactly the codes thrown in src/', () => {
    assert.deepEqual([...thrownCodes()].sort(), [...ERROR_CODES].sort());
  });

  it("docs/api.md's error table documents every code, with the status the API answers", () => {
    const docs = documented();
    assert.deepEqual([...docs.keys()].sort(), [...ERROR_CODES].sort(), 'the codes in docs/api.md');
    for (const code of ERROR_CODES) assert.equal(docs.get(code), STATUS_BY_CODE[code], `status of ${code}`);
  });
});
