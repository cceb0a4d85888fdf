import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from '../../src/engine/masking.ts';

describe('createMasker', () => {
  it('replaces every occurrence of a secret inside strings, deep, without touching the input', () => {
    const mask = createMasker(['s3cr3t-token', 'pass1234']);
    const input = {
      url: 'https://api/x?key=s3cr3t-token&again=s3cr3t-token',
      list: ['pass1234', 'no secret', 7, null, true, { deep: 'Bearer s3cr3t-token' }],
      n: 42,
    };
    const copy = structuredClone(input);
    assert.deepEqual(mask(input), {
      url: 'https://api/x?key=***&again=***',
      list: ['***', 'no secret', 7, null, true, { deep: 'Bearer ***' }],
      n: 42,
    });
    assert.deepEqual(input, copy);
    assert.equal(mask('pass1234'), '***');
    assert.equal(mask(3), 3);
    assert.equal(mask(null), null);
  });

  it('masks longer secrets first, so an overlapping shorter one leaves nothing behind', () => {
    const mask = createMasker(['abcd', 'abcdefgh']);
    assert.equal(mask('xx abcdefgh yy abcd'), 'xx *** yy ***');
  });

  it('ignores secrets shorter than 4 characters and non-strings', () => {
    const mask = createMasker(['abc', '', 'abcd', 5 as unknown as string]);
    assert.equal(mask('abc abcd'), 'abc ***');
  });

  it('treats regular expression characters literally and masks JSON- and URL-encoded forms', () => {
    const mask = createMasker(['a.b*c+(d)', 'p"q\\r s&t']);
    assert.equal(mask('a.b*c+(d) aXbbbc+(d)'), '*** aXbbbc+(d)');
    assert.equal(mask('raw p"q\\r s&t'), 'raw ***');
    assert.equal(mask(JSON.stringify({ v: 'p"q\\r s&t' })), '{"v":"***"}');
    assert.equal(mask('?x=' + encodeURIComponent('p"q\\r s&t')), '?x=***');
  });

  it('masks object keys too, and keeps "__proto__" keys as plain keys', () => {
    const mask = createMasker(['topsecret']);
    const out = mask(JSON.parse('{"topsecret": 1, "__proto__": {"v": "topsecret"}}')) as any;
    assert.deepEqual(Object.keys(out), ['***', '__proto__']);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(out['__proto__'], { v: '***' });
  });

  it('returns values unchanged (same reference) when there is nothing to mask', () => {
    const v = { a: 'x' };
    assert.equal(createMasker([])(v), v);
    assert.equal(createMasker(['ab'])(v), v);
  });

  it('masks the encoded forms a secret travels in: form-urlencoded, base64 at any alignment, hex, digests', async () => {
    const { createHash } = await import('node:crypto');
    const secret = "p@ss w0rd!'()~";
    const mask = createMasker([secret]);
    const b = Buffer.from(secret);
    const texts = [
      new URLSearchParams({ q: secret }).toString(),
      `https://h/x?${new URL(`http://h/?${secret}`).search.slice(1)}`,
      b.toString('base64'),
      b.toString('base64url'),
      'Basic ' + Buffer.from(`user:${secret}`).toString('base64'),
      Buffer.from(`ab${secret}`).toString('base64'),
      b.toString('hex'),
      b.toString('hex').toUpperCase(),
      createHash('sha256').update(b).digest('hex'),
      createHash('md5').update(b).digest('hex'),
      createHash('sha1').update(b).digest('base64'),
    ];
    for (const t of texts) {
      const out = mask(t) as string;
      assert.ok(out.includes('***'), `not masked: ${t}`);
      // What remains cannot give the secret back: at most two characters of the encoded form on each side.
      assert.ok(out.replace('***', '').length <= t.length - 8, `${t} -> ${out}`);
    }
    assert.equal(mask('nothing secret here'), 'nothing secret here');
  });
});
