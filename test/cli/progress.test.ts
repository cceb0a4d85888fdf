/** The build's progress (src/cli/wasm/progress.ts): a spinner on a terminal, plain lines in a log. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spinner } from '../../src/cli/wasm/progress.ts';

function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, s: { isTTY, write: (c: string) => writes.push(c) } as unknown as NodeJS.WriteStream };
}

describe('build progress', () => {
  it('in a log: one line when a step starts and one when it ends, no frames', async () => {
    const { writes, s } = stream(false);
    const sp = spinner('build: clang', s);
    await new Promise((r) => setTimeout(r, 250));
    sp.done('done');
    assert.equal(writes.length, 2);
    assert.equal(writes[0], 'build: clang ...\n');
    assert.match(writes[1], /^ok build: clang: done \([\d.]+ s\)\n$/);
    const f = stream(false);
    spinner('build: rustc', f.s).fail('exit 1');
    assert.match(f.writes[1], /^FAILED build: rustc: exit 1 \(/);
  });

  it('on a terminal: a spinner redrawn in place with the elapsed time, cleared at the end', async () => {
    const { writes, s } = stream(true);
    const sp = spinner('build: clang', s);
    await new Promise((r) => setTimeout(r, 350));
    sp.done('done');
    const frames = writes.slice(0, -1);
    assert.ok(frames.length >= 3, `redrawn while it runs (${frames.length} frames)`);
    for (const f of frames) assert.match(f, /^\r[|/\\-] build: clang [\d.]+ s$/);
    assert.match(writes.at(-1)!, /^\r\x1b\[Kok build: clang: done \([\d.]+ s\)\n$/);
    const after = writes.length;
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(writes.length, after, 'no frame after the end');
  });
});
