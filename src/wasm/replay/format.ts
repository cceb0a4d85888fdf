/** The text `wasm-cli replay` prints for a replay (and the shadow report reuses per run). */
import type { ReplayResult } from './types.ts';

const short = (v: unknown): string => {
  const t = typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined');
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
};

export function formatReplay(r: ReplayResult): string {
  if (r.status === 'could_not_replay') return `could not replay (${r.reason}): ${r.message}`;
  const run = r.replay;
  const facts = `fuel ${run.fuel_consumed} (+${run.init_fuel_consumed} init), memory ${run.memory_peak_bytes} bytes, ${run.host_calls} host calls from the record, ${run.duration_ms.toFixed(1)} ms`;
  if (r.status === 'reproduced') return `reproduced: the same output, fuel and sequence of host calls (${facts})`;
  const d = r.divergence;
  const where =
    d.call_index !== undefined ? ` at ${d.kind.startsWith('host_call') ? 'host call' : 'read'} #${d.call_index}${d.function ? ` (${d.function})` : ''}` : '';
  const lines = [`diverged${where}: ${d.kind}`, `  ${d.message}`];
  if (d.expected !== undefined) lines.push(`  record: ${short(d.expected)}`);
  if (d.actual !== undefined) lines.push(`  replay: ${short(d.actual)}`);
  lines.push(`  (${facts})`);
  return lines.join('\n');
}
