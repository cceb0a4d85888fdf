/**
 * Writes the stored record of a run (types.ts WasmRunRecord) from what the runtime kept
 * (WasmRunResult.record) and what the run produced: masked like every other output, bounded, and
 * honest about what it cannot replay. Every part is masked on its own, so that the record names
 * exactly what masking changed (`masked`): a changed part is one a replay cannot reproduce (the
 * guest would read `***`), and the record says so instead of pretending.
 *
 * Cheap by design (issue 20: recording costs < 10 % of a run's overhead): the record is written as
 * JSON text straight from the texts the run already has - the input's JSON as the guest got it, the
 * output's as the guest wrote it, every host call's request and answer - each quoted once into the
 * record's text. No record object is built, no part is serialized twice, and the run's parsed
 * output is never serialized again (only when the run did not keep its text). The input and the
 * output, the largest texts, are not even quoted: they are embedded as the JSON they are (see
 * parseRecordText, which every reader of a stored record goes through). The function takes
 * the run's result and its record parts, whatever thread the run executed on.
 */
import type { RunRecordParts, WasmRunResult } from '../runtime/types.ts';
import { WASM_RUN_RECORD_VERSION, type NotReplayableReason, type RecordCut, type WasmRunRecord } from './types.ts';

/** Error codes of runs that ended by the wall clock, not by their inputs. */
export const WALL_CLOCK_ERRORS: ReadonlySet<string> = new Set(['timeout', 'cancelled', 'worker_crashed']);

export interface RecordMeta {
  module: { id: string | null; name: string | null; version: string | null };
  executionId?: string;
  jobId?: string;
  stepId?: string;
  attempt?: number;
  /** ISO time the run started. */
  recordedAt: string;
  /** The masker of the run's secrets (the engine's); absent: nothing to mask. */
  mask?: (v: unknown) => unknown;
  /** The record's bound in bytes (the same as the runtime's RecordSpec.maxBytes): input, output and stdio count against what the host calls left. */
  maxBytes: number;
}

/** A record as stored: its JSON text and the few facts the store indexes it by. */
export interface StoredRunRecord {
  /** The record's JSON text (a WasmRunRecord). */
  text: string;
  /** UTF-8 bytes of `text`. */
  bytes: number;
  version: typeof WASM_RUN_RECORD_VERSION;
  moduleHash: string;
  ok: boolean;
  replayable: boolean;
  notReplayableReason: NotReplayableReason | null;
}

/** Characters JSON.stringify escapes in a string: quote, backslash, controls, and surrogates (lone ones are escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/**
 * A string as a JSON string literal (the only escaping the record's texts get): the string itself
 * in quotes when it has nothing to escape (names, hashes, times: almost every part), else
 * JSON.stringify's. A test (a regex scan) is several times cheaper than JSON.stringify's call.
 */
const q = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);
/** A number as JSON writes it (non-finite: null). */
const num = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');

/**
 * UTF-8 bytes beyond one per character that the text written so far holds. The record's size is
 * its length plus this: counted part by part as each is written, on the parts (flat strings,
 * mostly ASCII: a fast count) instead of on the joined text, which would first be copied whole to
 * count it (the store's driver copies it once anyway, when it sends it). Reset by writeRunRecord.
 */
let extraBytes = 0;
/** UTF-8 bytes of `s` beyond one per character (0 for ASCII). */
const beyond = (s: string): number => (s.length === 0 ? 0 : Buffer.byteLength(s) - s.length);
/** q(s) for a text from outside (a guest's, a user's), its bytes beyond one per character counted. */
function qx(s: string): string {
  if (NEEDS_ESCAPE.test(s)) {
    const j = JSON.stringify(s); // escapes lone surrogates: count on what is written
    extraBytes += beyond(j);
    return j;
  }
  extraBytes += beyond(s);
  return `"${s}"`;
}
/** JSON of a value with texts from outside (cuts, masked paths), its bytes beyond one per character counted. */
function jx(v: unknown): string {
  const j = JSON.stringify(v);
  extraBytes += beyond(j);
  return j;
}
const qxn = (s: string | null): string => (s === null ? 'null' : qx(s));

/** The record's env, host calls and WASI inputs when all are empty. */
const NO_IO = ',"env":{},"host_calls":[],"wasi":{"clocks":[],"random":[],"stdin_bytes":0}';
/** Its context writes, stdout and stderr when all are empty. */
const NO_WRITES = ',"context_writes_json":"{}","stdout":"","stderr":""';
/** Its end when nothing was cut or masked and the run is replayable. */
const CLEAN_END = ',"cut":[],"masked":[],"replayable":true}';

/** The state of one record being written: the masker, what it changed, the cuts, the bytes left. */
interface Writing {
  mask: ((v: unknown) => unknown) | undefined;
  masked: string[];
  cut: RecordCut[];
  left: number;
  maxBytes: number;
}

/** `s` masked; a change is noted under `path`. */
function maskPart(st: Writing, s: string, path: string): string {
  if (st.mask === undefined || s.length < 4) return s;
  const out = st.mask(s) as string;
  if (out !== s) st.masked.push(path);
  return out;
}

/** A text within what the record's bound leaves, or '' and a cut. */
function fitPart(st: Writing, s: string, path: string): string {
  if (s.length <= st.left) {
    st.left -= s.length;
    return s;
  }
  st.cut.push({ path, reason: `${s.length} characters, past what the record's bound of ${st.maxBytes} bytes left (VECRON_WASM_RECORD_MAX_BYTES)` });
  return '';
}

/** The record's module, function and limits, and their JSON text (`,"module":...,"limits":{...}`). */
interface StaticPart {
  id: string | null;
  name: string | null;
  version: string | null;
  hash: string;
  fn: string;
  l: RunRecordParts['limits'];
  text: string;
  /** Its UTF-8 bytes beyond one per character. */
  extra: number;
}
/**
 * The last static part written: a step runs the same module with the same limits run after run, so
 * its text is written once and reused while every value matches (fourteen comparisons instead of
 * fourteen values formatted into the text).
 */
let lastStatic: StaticPart | null = null;

function staticPart(mod: RecordMeta['module'], parts: RunRecordParts): string {
  const l = parts.limits;
  const s = lastStatic;
  if (
    s !== null &&
    s.hash === parts.moduleHash &&
    s.fn === parts.functionName &&
    s.id === mod.id &&
    s.name === mod.name &&
    s.version === mod.version &&
    s.l.fuel === l.fuel &&
    s.l.initFuel === l.initFuel &&
    s.l.memoryMb === l.memoryMb &&
    s.l.tableLimit === l.tableLimit &&
    s.l.timeoutMs === l.timeoutMs &&
    s.l.stackKb === l.stackKb &&
    s.l.maxOutputBytes === l.maxOutputBytes &&
    s.l.maxHostRequestBytes === l.maxHostRequestBytes &&
    s.l.maxHostResponseBytes === l.maxHostResponseBytes
  ) {
    extraBytes += s.extra;
    return s.text;
  }
  const before = extraBytes;
  const text =
    `,"module":{"id":${qxn(mod.id)},"name":${qxn(mod.name)},"version":${qxn(mod.version)},"hash":${q(parts.moduleHash)}}` +
    `,"function":${qx(parts.functionName)}` +
    `,"limits":{"fuel":${num(l.fuel)},"init_fuel":${num(l.initFuel)},"memory_mb":${num(l.memoryMb)},"table_limit":${num(l.tableLimit)},"timeout_ms":${num(l.timeoutMs)},"stack_kb":${num(l.stackKb)},"max_output_bytes":${num(l.maxOutputBytes)},"max_host_request_bytes":${num(l.maxHostRequestBytes)},"max_host_response_bytes":${num(l.maxHostResponseBytes)}}`;
  lastStatic = { id: mod.id, name: mod.name, version: mod.version, hash: parts.moduleHash, fn: parts.functionName, l, text, extra: extraBytes - before };
  return text;
}

/**
 * The stored record of `result` as JSON text, or null when the run kept none (it never reached a
 * worker, or recording was off).
 */
export function writeRunRecord(result: WasmRunResult, meta: RecordMeta): StoredRunRecord | null {
  const parts = result.record;
  if (!parts) return null;
  extraBytes = 0;
  const st: Writing = {
    mask: meta.mask,
    masked: [],
    cut: parts.cut.length === 0 ? [] : [...parts.cut],
    left: Math.max(0, meta.maxBytes - parts.bytes),
    maxBytes: meta.maxBytes,
  };
  const masked = st.masked;
  const cut = st.cut;
  const mask = st.mask;
  // No closures here and no paths built without a masker: this runs once per recorded run.

  let calls = '';
  const hc = parts.host_calls;
  for (let i = 0; i < hc.length; i++) {
    const c = hc[i];
    let t = `${i === 0 ? '' : ','}{"seq":${num(c.seq)},"function":${qx(c.function)},"request":${qx(mask === undefined ? c.request : maskPart(st, c.request, `host_calls[${i}].request`))},"response":${qx(mask === undefined ? c.response : maskPart(st, c.response, `host_calls[${i}].response`))},"outcome":${q(c.outcome)},"served":${q(c.served)},"target":${c.target === null ? 'null' : qx(mask === undefined ? c.target : maskPart(st, c.target, `host_calls[${i}].target`))}`;
    if (c.request_bytes !== undefined) t += `,"request_bytes":${num(c.request_bytes)}`;
    if (c.permission !== undefined) t += `,"permission":${qx(c.permission)}`;
    calls += `${t}}`;
  }
  let env = '';
  for (const k in parts.env) env += `${env === '' ? '' : ','}${qx(k)}:${qx(mask === undefined ? parts.env[k] : maskPart(st, parts.env[k], `env.${k}`))}`;
  let random = '';
  const rnd = parts.wasi.random;
  for (let i = 0; i < rnd.length; i++) random += `${i === 0 ? '' : ','}${qx(mask === undefined ? rnd[i] : maskPart(st, rnd[i], `wasi.random[${i}]`))}`;

  let outputJson: string | undefined;
  let outputRaw = false;
  if (result.ok) {
    let text = parts.outputJson;
    if (text === undefined) {
      // The run did not keep its output's text (a worker that parsed it itself): serialize it.
      try {
        text = JSON.stringify(result.output === undefined ? null : result.output);
      } catch {
        text = undefined;
      }
    }
    outputJson = text === undefined ? undefined : maskPart(st, fitPart(st, text, 'result.output_json'), 'result.output_json');
    outputRaw = outputJson !== undefined && outputJson === text && text !== '';
  }
  let contextWrites = '{}';
  for (const _ in result.contextWrites) {
    contextWrites = maskPart(st, fitPart(st, JSON.stringify(result.contextWrites), 'result.context_writes_json'), 'result.context_writes_json');
    break;
  }
  const input = maskPart(st, fitPart(st, parts.inputJson, 'input_json'), 'input_json');
  // The input and the output are embedded as the JSON they are (valid JSON: the host serialized
  // the one, the runtime parsed the other), not quoted into strings: no escaping pass over the
  // run's largest texts. A text that masking changed or the bound cut is quoted instead (masking
  // may have broken its syntax). parseRecordText turns both back into the record's `*_json` texts.
  const inputRaw = input === parts.inputJson && input !== '';
  const inputName = inputRaw ? 'input' : 'input_json';
  const inputText = inputRaw ? input : qx(input);
  if (inputRaw) extraBytes += parts.inputBytes !== undefined ? parts.inputBytes - input.length : beyond(input);
  let reads = '';
  const cr = parts.context_reads;
  for (let i = 0; i < cr.length; i++) {
    const r = cr[i];
    reads += `${i === 0 ? '' : ','}{"key":${qx(mask === undefined ? r.key : maskPart(st, r.key, `context_reads[${i}].key`))},"value":${r.value === null ? 'null' : qx(mask === undefined ? r.value : maskPart(st, r.value, `context_reads[${i}].value`))}}`;
  }
  const error = result.ok ? undefined : { code: result.error.code, message: maskPart(st, result.error.message, 'result.error.message') };
  const stdout = maskPart(st, fitPart(st, result.stdout, 'result.stdout'), 'result.stdout');
  const stderr = maskPart(st, fitPart(st, result.stderr, 'result.stderr'), 'result.stderr');

  const why: NotReplayableReason | null =
    cut.length > 0 ? 'record_cut' : masked.length > 0 ? 'masked' : error !== undefined && WALL_CLOCK_ERRORS.has(error.code) ? 'wall_clock' : null;
  // Written in five pieces: the text before the input, the input, the text between it and the
  // output, the output, the rest; the size is their lengths plus extraBytes.
  const head =
    `{"version":${WASM_RUN_RECORD_VERSION}` +
    (meta.executionId !== undefined ? `,"execution_id":${qx(meta.executionId)}` : '') +
    (meta.jobId !== undefined ? `,"job_id":${qx(meta.jobId)}` : '') +
    (meta.stepId !== undefined ? `,"step_id":${qx(meta.stepId)}` : '') +
    (meta.attempt !== undefined ? `,"attempt":${num(meta.attempt)}` : '') +
    `,"recorded_at":${qx(meta.recordedAt)}` +
    staticPart(meta.module, parts) +
    `,"${inputName}":`;
  // The parts most runs leave empty (no host call, no WASI input, no log to stdout, nothing cut
  // or masked) are written as one constant each: fewer pieces to join.
  const io =
    env === '' && calls === '' && random === '' && parts.wasi.clocks.length === 0 && parts.wasi.stdin_bytes === 0
      ? NO_IO
      : `,"env":{${env}},"host_calls":[${calls}],"wasi":{"clocks":${parts.wasi.clocks.length === 0 ? '[]' : JSON.stringify(parts.wasi.clocks)},"random":[${random}],"stdin_bytes":${num(parts.wasi.stdin_bytes)}}`;
  const mid =
    (reads === '' ? ',"context_reads":[],"context_chars":' : `,"context_reads":[${reads}],"context_chars":`) +
    num(parts.contextChars) +
    io +
    (!result.ok
      ? ',"result":{"ok":false'
      : outputJson === undefined
        ? ',"result":{"ok":true'
        : outputRaw
          ? ',"result":{"ok":true,"output":'
          : ',"result":{"ok":true,"output_json":');
  const output = outputJson === undefined ? '' : outputRaw ? outputJson : qx(outputJson);
  if (outputRaw) extraBytes += parts.outputBytes !== undefined && output === parts.outputJson ? parts.outputBytes - output.length : beyond(output);
  const tail =
    (error !== undefined ? `,"error":{"code":${qx(error.code)},"message":${qx(error.message)}}` : '') +
    `,"fuel_consumed":${num(result.fuelConsumed)},"init_fuel_consumed":${num(result.initFuelConsumed)},"memory_peak_bytes":${num(result.memoryPeakBytes)}` +
    `,"exit_code":${result.exitCode === null ? 'null' : num(result.exitCode)}` +
    (contextWrites === '{}' && stdout === '' && stderr === ''
      ? NO_WRITES
      : `,"context_writes_json":${contextWrites === '{}' ? '"{}"' : qx(contextWrites)},"stdout":${qx(stdout)},"stderr":${qx(stderr)}`) +
    `,"duration_ms":${num(Math.round(result.durationMs * 1000) / 1000)}}` +
    (cut.length === 0 && masked.length === 0 && why === null
      ? CLEAN_END
      : `,"cut":${cut.length === 0 ? '[]' : jx(cut)},"masked":${masked.length === 0 ? '[]' : jx(masked)},"replayable":${why === null}` +
        (why !== null ? `,"not_replayable_reason":${q(why)}` : '') +
        '}');
  return {
    text: head + inputText + mid + output + tail,
    bytes: head.length + inputText.length + mid.length + output.length + tail.length + extraBytes,
    version: WASM_RUN_RECORD_VERSION,
    moduleHash: parts.moduleHash,
    ok: result.ok,
    replayable: why === null,
    notReplayableReason: why,
  };
}

/**
 * The stored record of `result` as an object (what a replay reads), or null: the parse of
 * writeRunRecord's text, so that both are always the same record.
 */
export function buildRunRecord(result: WasmRunResult, meta: RecordMeta): WasmRunRecord | null {
  const stored = writeRunRecord(result, meta);
  return stored === null ? null : parseRecordText(stored.text);
}

/**
 * A stored record's text as the record (WasmRunRecord): an input or output embedded as JSON
 * (`input`, `result.output`: how writeRunRecord stores them unless masked or cut) becomes its
 * `input_json` / `result.output_json` text again, serialized as JSON.stringify does (the input's
 * is then the very text the guest got: the host wrote it with JSON.stringify; the output's is the
 * value the guest wrote, which is what a replay compares). Throws on text that is not JSON.
 */
export function parseRecordText(text: string): WasmRunRecord {
  const r = JSON.parse(text) as WasmRunRecord & { input?: unknown; result?: { output?: unknown } };
  if (r !== null && typeof r === 'object') {
    if (r.input_json === undefined && 'input' in r) {
      r.input_json = JSON.stringify(r.input);
      delete r.input;
    }
    const res = r.result as (WasmRunRecord['result'] & { output?: unknown }) | undefined;
    if (res !== null && typeof res === 'object' && res.output_json === undefined && 'output' in res) {
      res.output_json = JSON.stringify(res.output);
      delete res.output;
    }
  }
  return r;
}

/** Why a record cannot be replayed (its own content: the cuts, the masking, a wall-clock end), or null. */
export function notReplayable(r: Pick<WasmRunRecord, 'cut' | 'masked' | 'result'>): NotReplayableReason | null {
  if (r.cut.length > 0) return 'record_cut';
  if (r.masked.length > 0) return 'masked';
  if (!r.result.ok && r.result.error && WALL_CLOCK_ERRORS.has(r.result.error.code)) return 'wall_clock';
  return null;
}

/** The record as stored: its JSON text (never jsonb: a replay serves its texts exactly as kept). */
export const recordText = (r: WasmRunRecord): string => JSON.stringify(r);

/** A record object in its stored form (a record made by hand, or read back and stored again). */
export function storedRecordOf(r: WasmRunRecord): StoredRunRecord {
  const text = recordText(r);
  return {
    text,
    bytes: Buffer.byteLength(text),
    version: r.version,
    moduleHash: r.module.hash,
    ok: r.result.ok,
    replayable: r.replayable,
    notReplayableReason: r.not_replayable_reason ?? null,
  };
}
