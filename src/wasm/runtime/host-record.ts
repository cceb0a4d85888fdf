/**
 * Bounding what a run's host-call record keeps of a request or a response (docs/abi.md, "the
 * record"). The record is what a replay of the run uses, so it keeps everything up to the bounds
 * and marks exactly what it cut, with a `$cut` marker, never silently:
 * - a string longer than HOST_BOUNDS.maxRecordStringChars: `{"$cut": "string", "length": n, "head": "..."}`;
 * - an array past the value's byte budget: its kept items, then `{"$cut": "items", "dropped": n}`;
 * - an object past the budget: its kept keys, then `"$cut": {"dropped_keys": n}`;
 * - nesting deeper than HOST_BOUNDS.maxRecordDepth, or a value past the budget: `{"$cut": "depth" | "budget"}`.
 * Sizes are counted as the JSON would be (about: strings by characters).
 */
import { HOST_BOUNDS } from '../instrument/costs.ts';

export interface Bounded {
  value: unknown;
  /** About the JSON size of `value`, in bytes. */
  bytes: number;
}

/** `v` bounded to about `budget` bytes of JSON (and the per-string and depth bounds). */
export function boundValue(v: unknown, budget: number = HOST_BOUNDS.maxRecordValueBytes): Bounded {
  const st = { left: Math.max(0, budget) };
  const value = walk(v, 0, st);
  return { value, bytes: Math.max(0, budget) - st.left };
}

const CUT_BUDGET = { $cut: 'budget' } as const;

function walk(v: unknown, depth: number, st: { left: number }): unknown {
  if (v === null || typeof v === 'boolean') {
    st.left -= 5;
    return v;
  }
  if (typeof v === 'number') {
    st.left -= 8;
    return Number.isFinite(v) ? v : null;
  }
  if (typeof v === 'string') {
    const max = Math.min(HOST_BOUNDS.maxRecordStringChars, Math.max(0, st.left - 48));
    if (v.length <= max) {
      st.left -= v.length + 2;
      return v;
    }
    st.left -= max + 48;
    return { $cut: 'string', length: v.length, head: v.slice(0, max) };
  }
  if (typeof v !== 'object') {
    st.left -= 5;
    return null; // undefined, functions, bigints: what JSON would not keep
  }
  if (depth >= HOST_BOUNDS.maxRecordDepth) {
    st.left -= 16;
    return { $cut: 'depth' };
  }
  if (Array.isArray(v)) {
    st.left -= 2;
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      if (st.left <= 64) {
        out.push({ $cut: 'items', dropped: v.length - i });
        st.left -= 32;
        break;
      }
      out.push(walk(v[i], depth + 1, st));
      st.left -= 1;
    }
    return out;
  }
  st.left -= 2;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(v);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (st.left <= 64 + k.length) {
      out.$cut = { dropped_keys: keys.length - i };
      st.left -= 32;
      break;
    }
    st.left -= Math.min(k.length, HOST_BOUNDS.maxRecordStringChars) + 4;
    out[k.length > HOST_BOUNDS.maxRecordStringChars ? k.slice(0, HOST_BOUNDS.maxRecordStringChars) : k] = walk(
      (v as Record<string, unknown>)[k],
      depth + 1,
      st,
    );
  }
  return out;
}

/** What a record keeps once the run's budget for requests and responses is spent. */
export const budgetSpent = (): unknown => ({ ...CUT_BUDGET });
