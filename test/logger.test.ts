import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino, { type Logger } from 'pino';
import { lazyChild } from '../src/logger.ts';

/** A pino logger writing into `lines`, and a view of it that counts the children made from it. */
function counted(level: string): { log: Logger; lines: Record<string, unknown>[]; children: () => number } {
  const lines: Record<string, unknown>[] = [];
  const base = pino({ level }, { write: (s: string) => lines.push(JSON.parse(s)) });
  let made = 0;
  const log = new Proxy(base, {
    get(t, p) {
      if (p === 'child') return (b: Record<string, unknown>) => (made++, t.child(b));
      return Reflect.get(t, p, t);
    },
  });
  return { log, lines, children: () => made };
}

describe('lazyChild', () => {
  it('makes no child for calls at a disabled level, nor for asking the level', () => {
    const c = counted('info');
    const step = lazyChild(lazyChild(c.log, { execution: 'e1' }), { step: 's1' });
    step.debug({ x: 1 }, 'not shown');
    step.trace('not shown either');
    assert.equal(step.isLevelEnabled('debug'), false);
    assert.equal(step.isLevelEnabled('warn'), true);
    assert.equal(step.level, 'info');
    assert.equal(c.children(), 0);
    assert.deepEqual(c.lines, []);
  });

  it('logs at an enabled level with every binding, making each child once', () => {
    const c = counted('info');
    const exec = lazyChild(c.log, { execution: 'e1' });
    const step = lazyChild(exec, { step: 's1' });
    step.warn({ y: 2 }, 'first');
    step.error('second');
    exec.info('of the execution');
    assert.equal(c.children(), 1, 'the execution child, made once; the step child is made from it');
    assert.deepEqual(
      c.lines.map((l) => [l.msg, l.execution, l.step, l.y]),
      [
        ['first', 'e1', 's1', 2],
        ['second', 'e1', 's1', undefined],
        ['of the execution', 'e1', undefined, undefined],
      ],
    );
  });

  it("a level set on it is its own, not its parent's", () => {
    const c = counted('info');
    const step = lazyChild(c.log, { step: 's1' });
    step.level = 'debug';
    step.debug('shown at its own level');
    c.log.debug('not shown: the parent stays at info');
    assert.equal(c.log.level, 'info');
    assert.deepEqual(
      c.lines.map((l) => [l.msg, l.step]),
      [['shown at its own level', 's1']],
    );
  });

  it('is a child like any other once made (its own child, bindings)', () => {
    const c = counted('debug');
    const step = lazyChild(c.log, { step: 's1' });
    step.debug('shown at debug');
    assert.deepEqual(step.bindings(), { step: 's1' });
    step.child({ call: 3 }).info('nested');
    assert.deepEqual(
      c.lines.map((l) => [l.msg, l.step, l.call]),
      [
        ['shown at debug', 's1', undefined],
        ['nested', 's1', 3],
      ],
    );
  });
});
