import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StepPlan, replayPlan, routeOf } from '../../src/engine/routing.ts';

const steps = ['a', 'b', 'c', 'd'].map((id) => ({ id }));

/** Runs a plan to the end with the given outputs per step id; returns the ids in run order. */
function walk(outputs: Record<string, unknown>, plan = new StepPlan(steps)): string[] {
  const ran: string[] = [];
  for (let i = plan.take(); i !== null; i = plan.take()) {
    ran.push(steps[i].id);
    plan.afterSuccess(i, outputs[steps[i].id]);
  }
  return ran;
}

describe('routing', () => {
  it('runs in document order when no step routes', () => {
    assert.deepEqual(walk({}), ['a', 'b', 'c', 'd']);
  });
  it('next_step runs that step and then ends; the others are not run', () => {
    const plan = new StepPlan(steps);
    assert.deepEqual(walk({ a: { next_step: 'c' } }, plan), ['a', 'c']);
    assert.deepEqual(
      plan.notRun().map((i) => steps[i].id),
      ['b', 'd'],
    );
  });
  it('next_steps runs them all in the order given; a routed step may route again', () => {
    assert.deepEqual(walk({ a: { next_steps: ['d', 'b'] } }), ['a', 'd', 'b']);
    assert.deepEqual(walk({ a: { next_steps: ['d', 'b'] }, d: { next_step: 'c' } }), ['a', 'd', 'c']);
  });
  it('an empty list ends the execution', () => {
    assert.deepEqual(walk({ b: { next_steps: [] } }), ['a', 'b']);
  });
  it('an unknown step id fails naming it', () => {
    assert.throws(
      () => walk({ a: { next_steps: ['c', 'nope'] } }),
      (e: any) =>
        e.code === 'routing_error' && /routed to 'nope', which is not a step of this job \(steps: a, b, c, d\)/.test(e.message) && e.retryable === false,
    );
  });
  it('malformed routing is an error naming the step', () => {
    assert.throws(() => routeOf({ next_step: 3 }, 'x'), /step 'x' routed to next_step 3/);
    assert.throws(() => routeOf({ next_steps: 'a' }, 'x'), /must be a list of step ids/);
    assert.throws(() => routeOf({ next_step: 'a', next_steps: ['b'] }, 'x'), /both next_step and next_steps/);
    assert.deepEqual(routeOf({ next_step: null }, 'x'), { kind: 'none' });
    assert.deepEqual(routeOf([1], 'x'), { kind: 'none' });
  });
  it('a bound on step runs stops a loop', () => {
    const plan = new StepPlan(steps, 10);
    assert.throws(() => walk({ a: { next_step: 'b' }, b: { next_step: 'a' } }, plan), /more than 10 step runs in one attempt: the routing loops/);
  });
  it('replays the route of the steps that already succeeded to find where to resume', () => {
    const plan = replayPlan(
      steps,
      new Map<string, unknown>([
        ['a', { next_steps: ['c', 'd'] }],
        ['c', {}],
      ]),
    );
    assert.equal(steps[plan.peek()!].id, 'd');
    assert.equal(replayPlan(steps, new Map()).peek(), 0);
    assert.equal(replayPlan(steps, new Map<string, unknown>([['a', { next_steps: [] }]])).peek(), null);
  });
});
