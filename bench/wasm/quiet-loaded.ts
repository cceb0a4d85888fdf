/**
 * Issue 19's WASM rows: the overhead of one run of the 1 KB echo, quiet and loaded (every core
 * busy: bench/cpu-burner.ts), side by side, for vecron's rt.run (inline first, as shipped; and with
 * every run in the worker, `inline: false`), raw V8 on the same thread (one instance reused: the
 * floor; a fresh instance of the instrumented module: what isolation costs on V8) and Extism
 * (same thread and runInWorker, in a plain `node` child: bench/wasm/extism.mjs).
 *
 * Within a condition the in-process rows are interleaved in rounds (each round takes a block of
 * samples from every row in turn, after a full collection: see `collect`), so they see the same machine; Extism runs in its child right
 * after, under the same condition. Used by bench/wasm.ts (section "1b").
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { instrument, runtimeImports, setFuel } from '../../src/wasm/instrument/index.ts';
import { WasmRuntime } from '../../src/wasm/runtime/index.ts';
import { startCpuBurner } from '../cpu-burner.ts';
import { markdownTable, summarize, type Summary } from '../stats.ts';
import { WA, type WMemory } from './wasm-api.ts';

/** Issue 19's goals for the loaded rows of rt.run. */
export const GOAL_LOADED_P50_US = 60;
export const GOAL_LOADED_P99_US = 1000;
export const GOAL_VS_EXTISM_WORKER = 0.5;

export interface QuietLoadedOptions {
  echoBytes: Uint8Array;
  input: unknown;
  iterations: number;
  warmup: number;
  fuel: number;
  memoryMaxPages: number;
  extismScript: string;
  extismWasm: string;
  log: (msg: string) => void;
}

type Cond = 'quiet' | 'loaded';
export interface QLRow {
  key: string;
  label: string;
  note: string;
  s: Record<Cond, Summary | null>;
  /** Runs that took over 1 ms, and the samples taken (an in-process row's, per condition). */
  over1ms?: Record<Cond, [number, number] | null>;
}
export interface QuietLoaded {
  rows: QLRow[];
  load: Record<Cond, { start: number; end: number }>;
  burners: number;
  inlineStats: Record<Cond, string>;
}

type EchoExports = { memory: WMemory; alloc: (n: number) => number; echo: (p: number, l: number) => bigint };
const enc = new TextEncoder();
const dec = new TextDecoder();
export const QL_ROUNDS = 4;
/**
 * The paced rows' gap between runs. Back to back, the bench's thread never sleeps, so the
 * scheduler preempts it for a burner's time slice (milliseconds) every few milliseconds of its own,
 * whatever it runs: with runs of 20-50 us, about 1 % of them contain a preemption and the p99
 * lands on a time slice or not by chance (measured here: 0.6-1.05 % of back-to-back rt.run runs
 * over 1 ms loaded, and as many involuntary context switches; 0-0.2 % paced). Runs that arrive
 * with gaps, as a worker's steps do, wake a thread that slept and is scheduled at once.
 */
export const PACE_MS = 1;
/** The thread's involuntary context switches so far (Linux; NaN elsewhere). */
function preemptions(): number {
  try {
    return Number(/nr_involuntary_switches\s*:\s*(\d+)/.exec(readFileSync('/proc/thread-self/sched', 'utf8'))?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}
/**
 * A full collection before each row's block: the rows that make a fresh instance (and its memory)
 * per run leave garbage whose collection (wasm memories unmapped: milliseconds) otherwise lands in
 * whichever row runs next, so the next row's p99 measured the previous row's garbage. Measured
 * here (loaded, 1 KB echo): rt.run p99 4.9 ms after raw fresh-instance blocks without it, 0.2-0.4 ms
 * with it. Each row still pays for its own garbage within its block (blocks of iterations / QL_ROUNDS
 * runs).
 */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

function child(script: string, input: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`exit ${code}: ${err.trim().split('\n').slice(-1)[0] ?? ''}`));
    });
    c.stdin.end(input);
  });
}

export async function measureQuietLoaded(o: QuietLoadedOptions): Promise<QuietLoaded> {
  const callEcho = (ex: EchoExports): unknown => {
    const data = enc.encode(JSON.stringify(o.input));
    const ptr = ex.alloc(data.length);
    new Uint8Array(ex.memory.buffer, ptr, data.length).set(data);
    const r = BigInt.asUintN(64, ex.echo(ptr, data.length));
    return JSON.parse(dec.decode(new Uint8Array(ex.memory.buffer, Number(r >> 32n), Number(r & 0xffffffffn))));
  };
  const rawModule = new WA.Module(o.echoBytes);
  const instrumented = new WA.Module(instrument(o.echoBytes, { memoryMaxPages: o.memoryMaxPages }).bytes);
  const rtImports = runtimeImports({ interrupt: new Int32Array(new SharedArrayBuffer(4)) });
  const req = { bytes: o.echoBytes, functionName: 'echo', input: o.input, limits: { fuel: o.fuel } };

  const rows: QLRow[] = [
    { key: 'a', label: '(a) raw V8, one instance reused, same thread', note: 'the floor', s: { quiet: null, loaded: null } },
    {
      key: "b'",
      label: "(b') raw V8, fresh instance of the instrumented module, fuel on, same thread",
      note: 'the floor of isolation on V8',
      s: { quiet: null, loaded: null },
    },
    {
      key: 'c',
      label: '(c) vecron rt.run, as shipped (inline first, pool of 1 behind it)',
      note: 'fresh instance, fuel and every limit on',
      s: { quiet: null, loaded: null },
    },
    {
      key: 'c-w',
      label: '(c-w) vecron rt.run, every run in the worker (`inline: false`)',
      note: 'the path of runs that spill',
      s: { quiet: null, loaded: null },
    },
    {
      key: "b'-p",
      label: `(b'-p) as (b'), paced: one run every ${PACE_MS} ms`,
      note: 'the floor of isolation, runs arriving as steps do',
      s: { quiet: null, loaded: null },
    },
    {
      key: 'c-p',
      label: `(c-p) as (c), paced: one run every ${PACE_MS} ms`,
      note: 'rt.run as a worker calls it',
      s: { quiet: null, loaded: null },
    },
    { key: 'd', label: '(d) Extism JS SDK, one plugin, same thread', note: 'no limits; instance reused', s: { quiet: null, loaded: null } },
    { key: "d'", label: "(d') Extism JS SDK, one plugin, runInWorker", note: 'no limits; instance reused', s: { quiet: null, loaded: null } },
  ];
  const row = (k: string): QLRow => rows.find((r) => r.key === k)!;
  const load = { quiet: { start: 0, end: 0 }, loaded: { start: 0, end: 0 } };
  const inlineStats = { quiet: '', loaded: '' };
  let burners = 0;

  for (const cond of ['quiet', 'loaded'] as Cond[]) {
    const burner = cond === 'loaded' ? await startCpuBurner() : null;
    if (burner) burners = burner.count;
    load[cond].start = loadavg()[0];
    o.log(`quiet/loaded: ${cond} (load ${load[cond].start.toFixed(2)})`);
    const inline = new WasmRuntime({ poolSize: 1 });
    const worker = new WasmRuntime({ poolSize: 1, inline: false });
    try {
      await worker.warmup();
      for (const rt of [inline, worker]) {
        const r = await rt.run(req);
        if (!r.ok || !isDeepStrictEqual(r.output, o.input)) throw new Error(`rt.run(echo) failed: ${JSON.stringify(!r.ok && r.error)}`);
      }
      const reused = new WA.Instance(rawModule, {}).exports as unknown as EchoExports;
      const fns: [string, () => unknown][] = [
        ['a', () => callEcho(reused)],
        [
          "b'",
          () => {
            const inst = new WA.Instance(instrumented, rtImports);
            setFuel(inst.exports, o.fuel);
            return callEcho(inst.exports as unknown as EchoExports);
          },
        ],
        ['c', () => inline.run(req)],
        ['c-w', () => worker.run(req)],
      ];
      fns.push(["b'-p", fns[1][1]], ['c-p', fns[2][1]]);
      const paced = new Set(["b'-p", 'c-p']);
      const switches = new Map<string, number>(fns.map(([k]) => [k, 0]));
      const samples = new Map<string, number[]>(fns.map(([k]) => [k, []]));
      for (const [, fn] of fns) for (let i = 0; i < o.warmup; i++) await fn();
      const block = Math.max(1, Math.ceil(o.iterations / QL_ROUNDS));
      for (let round = 0; round < QL_ROUNDS; round++) {
        for (const [k, fn] of round % 2 === 0 ? fns : [...fns].reverse()) {
          const out = samples.get(k)!;
          const gap = paced.has(k);
          collect();
          const s0 = preemptions();
          for (let i = 0; i < block; i++) {
            if (gap) await new Promise((r) => setTimeout(r, PACE_MS));
            const t0 = process.hrtime.bigint();
            await fn();
            out.push(Number(process.hrtime.bigint() - t0) / 1000);
          }
          switches.set(k, switches.get(k)! + (preemptions() - s0));
        }
      }
      for (const [k, s] of samples) {
        const r = row(k);
        r.s[cond] = summarize(s);
        r.over1ms ??= { quiet: null, loaded: null };
        r.over1ms[cond] = [s.filter((us) => us > 1000).length, s.length];
        const sw = switches.get(k)!;
        if (Number.isFinite(sw)) r.note = `${r.note}; ${sw} preemptions ${cond}`;
      }
      const st = inline.stats();
      const sp = st.inlineSpills;
      inlineStats[cond] = `${st.inlineRuns} runs inline, ${sp.slice + sp.host_call + sp.failed} spilled to the worker`;
      try {
        const text = await child(
          o.extismScript,
          JSON.stringify({ wasm: o.extismWasm, input: JSON.stringify(o.input), iterations: o.iterations, warmup: o.warmup, modes: ['same-thread', 'worker'] }),
          150_000,
        );
        const out = JSON.parse(text) as { version: string; results: Record<string, { samples?: number[]; error?: string }> };
        for (const [mode, k] of [
          ['same-thread', 'd'],
          ['worker', "d'"],
        ]) {
          const res = out.results[mode];
          if (res?.samples) row(k).s[cond] = summarize(res.samples);
          else row(k).note = `failed: ${res?.error}`;
          row(k).label = row(k).label.replace('Extism JS SDK,', `Extism JS SDK ${out.version},`);
        }
      } catch (e) {
        row('d').note = row("d'").note = `failed: ${(e as Error).message}`;
      }
    } finally {
      load[cond].end = loadavg()[0];
      await inline.close();
      await worker.close();
      if (burner) await burner.stop();
    }
  }
  return { rows, load, burners, inlineStats };
}

export function renderQuietLoaded(q: QuietLoaded, fmtUs: (us: number) => string): { table: string; goals: string[][] } {
  const fmtRatio = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');
  const p = (r: QLRow | undefined, c: Cond, k: 'p50' | 'p99') => r?.s[c]?.[k] ?? NaN;
  const by = (k: string) => q.rows.find((r) => r.key === k);
  const fresh = by("b'");
  const table = markdownTable(
    ['run (1 KB JSON in and out)', 'quiet p50', 'quiet p99', 'loaded p50', 'loaded p99', 'loaded: runs over 1 ms', "loaded p50 / (b')", 'notes'],
    q.rows.map((r) => {
      const o = r.over1ms?.loaded;
      return [
        r.label,
        fmtUs(p(r, 'quiet', 'p50')),
        fmtUs(p(r, 'quiet', 'p99')),
        fmtUs(p(r, 'loaded', 'p50')),
        fmtUs(p(r, 'loaded', 'p99')),
        o ? `${((100 * o[0]) / o[1]).toFixed(2)} % (${o[0]})` : '',
        fmtRatio(p(r, 'loaded', 'p50') / p(fresh, 'loaded', 'p50')),
        r.note,
      ];
    }),
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
  const c = by('c');
  const cp = by('c-p');
  const ext = by("d'");
  const status = (ok: boolean) => (Number.isNaN(p(c, 'loaded', 'p50')) ? 'n/a' : ok ? 'met' : '**NOT met**');
  const ratio = p(c, 'loaded', 'p50') / p(ext, 'loaded', 'p50');
  const goals = [
    [`rt.run loaded p50 <= ${GOAL_LOADED_P50_US} us (1 KB echo, issue 19)`, fmtUs(p(c, 'loaded', 'p50')), status(p(c, 'loaded', 'p50') <= GOAL_LOADED_P50_US)],
    [
      `rt.run loaded p99 <= ${fmtUs(GOAL_LOADED_P99_US)}, runs arriving one per ${PACE_MS} ms (c-p)`,
      `${fmtUs(p(cp, 'loaded', 'p99'))} (raw V8 fresh instance, paced: ${fmtUs(p(by("b'-p"), 'loaded', 'p99'))})`,
      Number.isNaN(p(cp, 'loaded', 'p99')) ? 'n/a' : p(cp, 'loaded', 'p99') <= GOAL_LOADED_P99_US ? 'met' : '**NOT met**',
    ],
    [
      `rt.run loaded p99 <= ${fmtUs(GOAL_LOADED_P99_US)}, back to back (c)`,
      `${fmtUs(p(c, 'loaded', 'p99'))} (raw V8 fresh instance, back to back: ${fmtUs(p(fresh, 'loaded', 'p99'))})`,
      status(p(c, 'loaded', 'p99') <= GOAL_LOADED_P99_US),
    ],
    [
      `rt.run loaded p50 <= ${GOAL_VS_EXTISM_WORKER} x Extism runInWorker (same run)`,
      `${fmtRatio(ratio)} (${fmtUs(p(c, 'loaded', 'p50'))} / ${fmtUs(p(ext, 'loaded', 'p50'))})`,
      Number.isFinite(ratio) ? (ratio <= GOAL_VS_EXTISM_WORKER ? 'met' : '**NOT met**') : 'n/a',
    ],
    [
      'rt.run loaded p50 / fresh V8 instance on the same thread (reported)',
      `${fmtRatio(p(c, 'loaded', 'p50') / p(fresh, 'loaded', 'p50'))} (${fmtUs(p(c, 'loaded', 'p50'))} / ${fmtUs(p(fresh, 'loaded', 'p50'))})`,
      'reported',
    ],
  ];
  return { table, goals };
}
