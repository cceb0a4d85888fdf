/**
 * Which step runs next. Steps run in document order, unless a step's output routes:
 * - `{"next_step": "id"}` or `{"next_steps": ["a", "b"]}`: those steps run next, in the order
 *   given, and then the execution ends, unless one of them routes again (its list then replaces
 *   what was left). So a module's answer says everything that runs after it;
 * - `{"next_steps": []}`: the execution ends here, successfully;
 * - an id that is not a step of the job fails the execution, naming it.
 * Steps never run are recorded as skipped. A bound on step runs per attempt stops endless loops.
 */
import { StepError } from './step-error.ts';

export type Route = { kind: 'none' } | { kind: 'end' } | { kind: 'goto'; ids: string[] };

/** Reads the routing request of a step's output (if any); a malformed one is an error naming the step. */
export function routeOf(output: unknown, stepId: string): Route {
  if (output === null || typeof output !== 'object' || Array.isArray(output)) return { kind: 'none' };
  const o = output as Record<string, unknown>;
  const hasOne = Object.hasOwn(o, 'next_step') && o.next_step !== null && o.next_step !== undefined;
  const hasMany = Object.hasOwn(o, 'next_steps') && o.next_steps !== null && o.next_steps !== undefined;
  if (!hasOne && !hasMany) return { kind: 'none' };
  if (hasOne && hasMany) throw routingError(`step '${stepId}' routed with both next_step and next_steps; give one`);
  if (hasOne) {
    if (typeof o.next_step !== 'string' || o.next_step === '')
      throw routingError(`step '${stepId}' routed to next_step ${JSON.stringify(o.next_step)}: it must be a step id`);
    return { kind: 'goto', ids: [o.next_step] };
  }
  if (!Array.isArray(o.next_steps) || o.next_steps.some((x) => typeof x !== 'string' || x === '')) {
    throw routingError(`step '${stepId}' routed to next_steps ${JSON.stringify(o.next_steps).slice(0, 200)}: it must be a list of step ids`);
  }
  return o.next_steps.length === 0 ? { kind: 'end' } : { kind: 'goto', ids: o.next_steps as string[] };
}

export const routingError = (message: string) => new StepError('routing_error', message, { retryable: false });

/** Step runs allowed per attempt, for a job of `n` steps. */
export const maxStepRuns = (n: number): number => Math.max(100, 10 * n);

/** The routing state of one attempt. */
export class StepPlan {
  private readonly index = new Map<string, number>();
  /** Steps routed to that have not run yet, in order. */
  private pending: number[] = [];
  /** The next step in document order, until a step routes. */
  private nextPos = 0;
  private ended = false;
  runs = 0;
  readonly ran = new Set<string>();

  constructor(
    private readonly steps: readonly { id: string }[],
    readonly maxRuns = maxStepRuns(steps.length),
  ) {
    steps.forEach((s, i) => this.index.set(s.id, i));
  }

  /** The next step's index, without taking it; null when the execution is complete. */
  peek(): number | null {
    if (this.ended) return null;
    if (this.pending.length) return this.pending[0];
    return this.nextPos < this.steps.length ? this.nextPos : null;
  }

  /** Takes the next step to run (counting it against the bound). */
  take(): number | null {
    const i = this.peek();
    if (i === null) return null;
    if (this.pending.length) this.pending.shift();
    else this.nextPos = i + 1;
    if (++this.runs > this.maxRuns) {
      throw routingError(`more than ${this.maxRuns} step runs in one attempt: the routing loops (last step '${this.steps[i].id}')`);
    }
    this.ran.add(this.steps[i].id);
    return i;
  }

  /** Applies the routing of a step's output (after it succeeded). */
  afterSuccess(i: number, output: unknown): void {
    const route = routeOf(output, this.steps[i].id);
    if (route.kind === 'end') {
      this.ended = true;
      this.pending = [];
    } else if (route.kind === 'goto') {
      const unknown = route.ids.filter((id) => !this.index.has(id));
      if (unknown.length) {
        throw routingError(
          `step '${this.steps[i].id}' routed to ${unknown.map((u) => `'${u}'`).join(', ')}, which ${unknown.length === 1 ? 'is not a step' : 'are not steps'} of this job (steps: ${this.steps.map((s) => s.id).join(', ')})`,
        );
      }
      this.pending = route.ids.map((id) => this.index.get(id)!);
      this.nextPos = this.steps.length; // once routed, document order no longer applies
    }
  }

  /** Steps that have not run in this plan (recorded as skipped when the execution succeeds). */
  notRun(): number[] {
    return this.steps.map((_, i) => i).filter((i) => !this.ran.has(this.steps[i].id));
  }
}

/**
 * Rebuilds the plan of an execution that resumes (a retry, or another worker after a crash) from
 * the outputs of its steps that already succeeded: it walks the route they chose up to the first
 * step that has not succeeded. A step met twice (a loop) is run again from there.
 */
export function replayPlan(steps: readonly { id: string }[], done: ReadonlyMap<string, unknown>): StepPlan {
  const plan = new StepPlan(steps);
  const seen = new Set<number>();
  for (;;) {
    const i = plan.peek();
    if (i === null || !done.has(steps[i].id) || seen.has(i)) return plan;
    seen.add(i);
    plan.take();
    plan.afterSuccess(i, done.get(steps[i].id));
  }
}
