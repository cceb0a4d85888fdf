/** The build's progress (src/cli/wasm/progress.ts): a spinner on a terminal, plain lines in a log. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { progressCount, spinner } from '../../src/cli/wasm/progress.ts';

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

describe('shadow test progress (progressCount)', () => {
  it('in a log: the first run, then at most one line per quarter, no note, no carriage returns', () => {
    const { writes, s } = stream(false);
    const bar = progressCount('replaying', 8, s);
    for (let i = 1; i <= 8; i++) bar.update(i, 'same output');
    bar.end();
    assert.deepEqual(writes, [
      'replaying [###.....................] 1/8\n',
      'replaying [######..................] 2/8\n',
      'replaying [############............] 4/8\n',
      'replaying [##################......] 6/8\n',
      'replaying [########################] 8/8\n',
    ]);
  });

  it('on a terminal: one line redrawn in place with the last run’s note, cleared at the end', () => {
    const { writes, s } = stream(true);
    const bar = progressCount('replaying', 3, s);
    bar.update(1, 'same output');
    bar.update(2, 'different output');
    bar.end();
    assert.equal(writes[0], '\r\x1b[Kreplaying [########................] 1/3 same output');
    assert.equal(writes[1], '\r\x1b[Kreplaying [################........] 2/3 different output');
    assert.equal(writes.at(-1), '\r\x1b[K');
  });
});
