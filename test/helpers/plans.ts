/** Reading query plans in tests: EXPLAIN (FORMAT JSON) nodes, and the claim's SQL text to explain. */
import type { Queryable } from '../../src/db/database.ts';
import { claimExecutions } from '../../src/state/claim.ts';

export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Alias?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

/** Every node of a plan, depth first. */
export function* walk(n: PlanNode): Generator<PlanNode> {
  yield n;
  for (const c of n.Plans ?? []) yield* walk(c);
}

/** The text claimExecutions sends ($1 worker, $2 limit, $3 lease seconds), captured without running it. */
export async function claimStatement(): Promise<string> {
  let sent = '';
  const recorder: Queryable = {
    async query<T>(sql: string) {
      sent = sql;
      return { rows: [] as T[], rowCount: 0 };
    },
    async exec() {},
  };
  await claimExecutions(recorder, 'w', 1, 60);
  return sent;
}
