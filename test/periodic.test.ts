import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startPeriodic } from '../src/periodic.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until `cond` holds (a busy machine delays timers: no fixed sleep decides a result). */
async function until(cond: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) assert.fail('timed out waiting');
    await sleep(5);
  }
}

describe('startPeriodic (the background loop of the pruners, retention and table upkeep)', () => {
  it('runs at start and on its interval, never two runs at once, and stop waits for the run in progress', async () => {
    let active = 0;
    let most = 0;
    let runs = 0;
    let finished = 0;
    const stop = startPeriodic(
      async () => {
        runs++;
        most = Math.max(most, ++active);
        await sleep(40); // longer than the interval: the ticks meanwhile are not doubled
        active--;
        finished++;
      },
      10,
      (e) => assert.fail(String(e)),
    );
    assert.equal(runs, 1, 'the first run starts at once');
    await until(() => runs >= 3);
    await stop();
    assert.equal(most, 1);
    assert.ok(runs >= 2, `ran ${runs} times`);
    assert.equal(finished, runs, 'stop waited for the run in progress');
    const after = runs;
    await sleep(40);
    assert.equal(runs, after, 'nothing runs after stop');
  });

  it('a failing run goes to onError and the loop goes on; atStart: false waits one interval', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const stop = startPeriodic(
      async () => {
        runs++;
        throw new Error(`run ${runs}`);
      },
      10,
      (e) => errors.push(e),
      { atStart: false },
    );
    assert.equal(runs, 0);
    await until(() => errors.length >= 2);
    await stop();
    assert.ok(runs >= 2);
    assert.equal(errors.length, runs);
    assert.match(String(errors[0]), /run 1/);
  });
});
