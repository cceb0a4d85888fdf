/**
 * Small statistics and formatting helpers shared by the benchmark suites.
 */

export interface Summary {
  n: number;
  mean: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) of an ascending array, interpolating linearly between the two
 * nearest ranks (the "type 7" definition of R and NumPy). NaN for an empty array.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (p <= 0) return sorted[0];
  if (p >= 100) return sorted[sorted.length - 1];
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    mean: mean(sorted),
    min: sorted.length ? sorted[0] : NaN,
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
  };
}

/** Milliseconds with a precision that suits their size: 0.42 ms, 7.3 ms, 512 ms, 2.41 s. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  const a = Math.abs(ms);
  if (a >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (a >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (a >= 100) return `${ms.toFixed(0)} ms`;
  if (a >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** A number with a fixed count of decimals and thin grouping of thousands (1 234.5). */
export function fmtNum(v: number, decimals = 0): string {
  if (!Number.isFinite(v)) return 'n/a';
  const [int, frac] = Math.abs(v).toFixed(decimals).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${v < 0 ? '-' : ''}${grouped}${frac ? '.' + frac : ''}`;
}

export type Align = 'left' | 'right' | 'center';

/**
 * A GitHub-flavoured Markdown table. Cells are converted with String(); `|` inside a cell is escaped.
 * `align` gives one alignment per column (default: first column left, the others right).
 */
export function markdownTable(headers: readonly string[], rows: readonly (readonly unknown[])[], align?: readonly Align[]): string {
  const cell = (v: unknown) =>
    String(v ?? '')
      .replace(/\|/g, '\\|')
      .replace(/\n/g, ' ');
  const al = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'left' : 'right'));
  const head = headers.map(cell);
  const body = rows.map((r) => headers.map((_, i) => cell(r[i])));
  const widths = head.map((h, i) => Math.max(3, h.length, ...body.map((r) => r[i].length)));
  const pad = (s: string, i: number) => (al[i] === 'right' ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const sep = `| ${al
    .map((a, i) => {
      const w = widths[i];
      if (a === 'right') return '-'.repeat(w - 1) + ':';
      if (a === 'center') return ':' + '-'.repeat(w - 2) + ':';
      return '-'.repeat(w);
    })
    .join(' | ')} |`;
  return [line(head), sep, ...body.map(line)].join('\n');
}

/** p50 / p90 / p99 / mean / max cells of a summary, in milliseconds. */
export function latencyCells(s: Summary): string[] {
  return [fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99), fmtMs(s.mean), fmtMs(s.max)];
}
