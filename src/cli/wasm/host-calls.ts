/**
 * The host calls of a run as `wasm-cli test` shows them (issue 15: "every host call ... shown in
 * wasm-cli test"): one line per call with its function, target, outcome, duration and bytes, and
 * the permission a denial was missing, so an author sees what the job will do and what it may not.
 */
import type { HostCallRecord } from '../../wasm/host/types.ts';

const us = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${Math.round(n)} us`);

export function hostCallLines(calls: readonly HostCallRecord[]): string[] {
  if (calls.length === 0) return [];
  const rows = calls.map((c) => [
    String(c.seq),
    c.function,
    c.target ?? '-',
    c.outcome === 'ok' ? 'ok' : `${c.outcome}${c.permission ? ` (needs ${c.permission})` : ''}`,
    us(c.duration_us),
    `${c.bytes_in}/${c.bytes_out} B`,
  ]);
  const head = ['#', 'FUNCTION', 'TARGET', 'OUTCOME', 'TIME', 'IN/OUT'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [`host calls (${calls.length}):`, `  ${fmt(head)}`, ...rows.map((r) => `  ${fmt(r)}`)];
}

/** A denied call's hint: the flag that grants it locally and the manifest entry that grants it in the job. */
export function denialHints(calls: readonly HostCallRecord[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const c of calls) {
    if (c.outcome !== 'permission_denied' || !c.permission) continue;
    // A refused call may have no target recorded: the request names what it wanted.
    const req = (c.request ?? {}) as { url?: unknown; path?: unknown; datasource?: unknown; key_secret?: unknown };
    const wanted = [req.url, req.path, req.key_secret, req.datasource].find((v) => typeof v === 'string') as string | undefined;
    const target = c.target ?? wanted ?? null;
    const key = `${c.permission}=${target ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(
      `denied ${c.function} ${target ?? ''}: grant it with --allow ${c.permission}=${target ?? '<pattern>'} here, and with {"type": "${c.permission}", "resource_pattern": "..."} in the manifest's permissions for the job`,
    );
  }
  return out;
}
