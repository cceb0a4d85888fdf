// vecron: the guest SDK for AssemblyScript (one file). It hides the guest ABI of docs/abi.md: the
// `alloc` export, the packed (ptr << 32 | len) results, the input and output JSON, and the host
// imports of module `vecron` (a host function is imported only when the module calls it).
//
//   import { Json, run } from "../vecron-sdk/vecron";
//   export { alloc } from "../vecron-sdk/vecron";
//   function handle(input: Json): Json { return Json.object().setString("hello", "world"); }
//   export function process(ptr: i32, len: i32): i64 { return run(ptr, len, handle); }
//
// Build: asc src/index.ts -O3 --runtime stub --use abort= --noAssert -o build/m.wasm
// (the stub runtime never frees: every run gets a fresh instance; `--use abort=` keeps the
// unallowed env.abort import out: an abort is a trap).

// ------------------------------------------------------------------ the raw imports

@external("vecron", "log") declare function host_log(level: i32, ptr: usize, len: i32): void;
@external("vecron", "get_context") declare function host_get_context(key: usize, keyLen: i32): i64;
@external("vecron", "set_context") declare function host_set_context(key: usize, keyLen: i32, val: usize, valLen: i32): i32;
@external("vecron", "http_request") declare function host_http_request(req: usize, len: i32): i64;
@external("vecron", "db_query") declare function host_db_query(req: usize, len: i32): i64;
@external("vecron", "file_read") declare function host_file_read(req: usize, len: i32): i64;
@external("vecron", "file_write") declare function host_file_write(req: usize, len: i32): i64;
@external("vecron", "file_list") declare function host_file_list(req: usize, len: i32): i64;
@external("vecron", "crypto") declare function host_crypto(req: usize, len: i32): i64;
@external("vecron", "time") declare function host_time(req: usize, len: i32): i64;

/** The host writes the input and every host answer through this (export it from your module). */
export function alloc(size: i32): i32 {
  return <i32>heap.alloc(size > 0 ? <usize>size : 1);
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s, false);
}

function unpackPtr(r: i64): usize {
  return <usize>(<u64>r >> 32);
}
function unpackLen(r: i64): i32 {
  return <i32>(<u64>r & 0xffffffff);
}

function pack(s: string): i64 {
  const n = String.UTF8.byteLength(s, false);
  const p = heap.alloc(n > 0 ? <usize>n : 1);
  String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p, false);
  return (<i64>p << 32) | <i64>n;
}

// ------------------------------------------------------------------ JSON values

export enum Kind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** A JSON value. Objects keep their members in order. Accessors never fail: missing is null. */
export class Json {
  kind: Kind = Kind.Null;
  boolean: bool = false;
  number: f64 = 0;
  str: string = "";
  items: Json[] = [];
  keys: string[] = [];

  static null(): Json {
    return new Json();
  }
  static bool(v: bool): Json {
    const j = new Json();
    j.kind = Kind.Bool;
    j.boolean = v;
    return j;
  }
  static number(v: f64): Json {
    const j = new Json();
    j.kind = Kind.Number;
    j.number = v;
    return j;
  }
  static string(v: string): Json {
    const j = new Json();
    j.kind = Kind.String;
    j.str = v;
    return j;
  }
  static array(items: Json[] = []): Json {
    const j = new Json();
    j.kind = Kind.Array;
    j.items = items;
    return j;
  }
  static object(): Json {
    const j = new Json();
    j.kind = Kind.Object;
    return j;
  }
  /** A list of strings as a JSON array. */
  static strings(items: string[]): Json {
    const out: Json[] = [];
    for (let i = 0; i < items.length; i++) out.push(Json.string(items[i]));
    return Json.array(out);
  }
  /** Parses JSON text; null on a syntax error (parseError() says what and where). */
  static parse(text: string): Json | null {
    const buf = utf8(text);
    return parseBytes(changetype<usize>(buf), buf.byteLength);
  }

  isNull(): bool {
    return this.kind == Kind.Null;
  }
  isString(): bool {
    return this.kind == Kind.String;
  }
  isNumber(): bool {
    return this.kind == Kind.Number;
  }
  isArray(): bool {
    return this.kind == Kind.Array;
  }
  isObject(): bool {
    return this.kind == Kind.Object;
  }
  /** A whole number within +-2^53 (what a JSON number carries exactly). */
  isInteger(): bool {
    return this.kind == Kind.Number && Math.floor(this.number) == this.number && Math.abs(this.number) <= 9007199254740992.0;
  }
  /** The string, or the fallback when this is not a string. */
  asString(fallback: string = ""): string {
    return this.kind == Kind.String ? this.str : fallback;
  }
  asNumber(fallback: f64 = 0): f64 {
    return this.kind == Kind.Number ? this.number : fallback;
  }
  asBool(fallback: bool = false): bool {
    return this.kind == Kind.Bool ? this.boolean : fallback;
  }
  /** Elements of an array or members of an object; 0 for anything else. */
  get length(): i32 {
    return this.kind == Kind.Array || this.kind == Kind.Object ? this.items.length : 0;
  }
  /** Member `key`, or a null value. */
  get(key: string): Json {
    if (this.kind == Kind.Object) {
      for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i];
    }
    return new Json();
  }
  has(key: string): bool {
    if (this.kind != Kind.Object) return false;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return true;
    return false;
  }
  /** Element i, or a null value. */
  at(i: i32): Json {
    return this.kind == Kind.Array && i >= 0 && i < this.items.length ? this.items[i] : new Json();
  }
  /** A dotted path: "order.items.0.sku" (array elements by index). */
  path(p: string): Json {
    const parts = p.split(".");
    let v: Json = this;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (part.length == 0) continue;
      if (v.kind == Kind.Array) {
        let idx = 0;
        let ok = true;
        for (let k = 0; k < part.length; k++) {
          const c = part.charCodeAt(k);
          if (c < 48 || c > 57) ok = false;
          idx = idx * 10 + (c - 48);
        }
        v = ok ? v.at(idx) : new Json();
      } else v = v.get(part);
    }
    return v;
  }
  /** Sets member `key` (replacing it; this becomes an object if it was not one); returns this. */
  set(key: string, value: Json): Json {
    if (this.kind != Kind.Object) {
      this.kind = Kind.Object;
      this.items = [];
      this.keys = [];
    }
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) {
        this.items[i] = value;
        return this;
      }
    }
    this.keys.push(key);
    this.items.push(value);
    return this;
  }
  setString(key: string, v: string): Json {
    return this.set(key, Json.string(v));
  }
  setNumber(key: string, v: f64): Json {
    return this.set(key, Json.number(v));
  }
  setBool(key: string, v: bool): Json {
    return this.set(key, Json.bool(v));
  }
  /** Appends to an array; returns this. */
  push(v: Json): Json {
    if (this.kind != Kind.Array) {
      this.kind = Kind.Array;
      this.items = [];
    }
    this.items.push(v);
    return this;
  }
  /** Routes the job to step `id` next ("next_step", docs/jobs.md). */
  route(id: string): Json {
    return this.setString("next_step", id);
  }
  /** Compact JSON text. NaN and infinities, which JSON cannot hold, are written as null. */
  toString(): string {
    const parts: string[] = [];
    write(this, parts);
    return parts.join("");
  }
}

// ------------------------------------------------------------------ writing

const HEX = "0123456789abcdef";

export function quote(s: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(run, i);
    run = i + 1;
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else out += "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
  }
  return out + s.substring(run) + '"';
}

export function formatNumber(n: f64): string {
  if (!isFinite(n)) return "null";
  if (Math.floor(n) == n && Math.abs(n) < 1e15) return (<i64>n).toString();
  return n.toString();
}

function write(v: Json, out: string[]): void {
  switch (v.kind) {
    case Kind.Null:
      out.push("null");
      break;
    case Kind.Bool:
      out.push(v.boolean ? "true" : "false");
      break;
    case Kind.Number:
      out.push(formatNumber(v.number));
      break;
    case Kind.String:
      out.push(quote(v.str));
      break;
    case Kind.Array:
      out.push("[");
      for (let i = 0; i < v.items.length; i++) {
        if (i > 0) out.push(",");
        write(v.items[i], out);
      }
      out.push("]");
      break;
    default:
      out.push("{");
      for (let i = 0; i < v.items.length; i++) {
        if (i > 0) out.push(",");
        out.push(quote(v.keys[i]));
        out.push(":");
        write(v.items[i], out);
      }
      out.push("}");
  }
}

// ------------------------------------------------------------------ parsing (UTF-8 bytes)

const MAX_DEPTH = 128;
let pBuf: usize = 0;
let pEnd: usize = 0;
let pPos: usize = 0;
let pDepth = 0;
let pError = "";

/** What the last failed parse found. */
export function parseError(): string {
  return pError;
}

@inline function peek(): i32 {
  return pPos < pEnd ? <i32>load<u8>(pPos) : -1;
}

function ws(): void {
  while (pPos < pEnd) {
    const c = load<u8>(pPos);
    if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) pPos++;
    else break;
  }
}

function fail(what: string): Json | null {
  if (pError.length == 0) pError = what + " at byte " + (pPos - pBuf).toString();
  return null;
}

function hex4(): i32 {
  if (pPos + 4 > pEnd) return -1;
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = <i32>load<u8>(pPos++);
    v <<= 4;
    if (c >= 48 && c <= 57) v |= c - 48;
    else if (c >= 97 && c <= 102) v |= c - 87;
    else if (c >= 65 && c <= 70) v |= c - 55;
    else return -1;
  }
  return v;
}

function parseString(): string | null {
  pPos++;
  let out = "";
  let run = pPos;
  while (true) {
    if (pPos >= pEnd) {
      fail("unterminated string");
      return null;
    }
    const c = <i32>load<u8>(pPos);
    if (c == 0x22) {
      out += String.UTF8.decodeUnsafe(run, pPos - run, false);
      pPos++;
      return out;
    }
    if (c < 0x20) {
      fail("control character in a string");
      return null;
    }
    if (c != 0x5c) {
      pPos++;
      continue;
    }
    out += String.UTF8.decodeUnsafe(run, pPos - run, false);
    pPos++;
    if (pPos >= pEnd) {
      fail("unterminated string");
      return null;
    }
    const e = <i32>load<u8>(pPos++);
    if (e == 0x22) out += '"';
    else if (e == 0x5c) out += "\\";
    else if (e == 0x2f) out += "/";
    else if (e == 0x62) out += "\b";
    else if (e == 0x66) out += "\f";
    else if (e == 0x6e) out += "\n";
    else if (e == 0x72) out += "\r";
    else if (e == 0x74) out += "\t";
    else if (e == 0x75) {
      let cp = hex4();
      if (cp < 0) {
        fail("bad \\u escape");
        return null;
      }
      if (cp >= 0xd800 && cp <= 0xdbff && pPos + 2 <= pEnd && load<u8>(pPos) == 0x5c && load<u8>(pPos + 1) == 0x75) {
        pPos += 2;
        const lo = hex4();
        if (lo < 0xdc00 || lo > 0xdfff) {
          fail("bad surrogate pair");
          return null;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
      out += String.fromCodePoint(cp);
    } else {
      fail("bad escape");
      return null;
    }
    run = pPos;
  }
}

function digits(): i32 {
  const start = pPos;
  while (pPos < pEnd && load<u8>(pPos) >= 48 && load<u8>(pPos) <= 57) pPos++;
  return <i32>(pPos - start);
}

function literal(word: string): bool {
  const n = word.length;
  if (pPos + <usize>n > pEnd) return false;
  for (let i = 0; i < n; i++) if (<i32>load<u8>(pPos + <usize>i) != word.charCodeAt(i)) return false;
  pPos += <usize>n;
  return true;
}

function parseValue(): Json | null {
  ws();
  const c = peek();
  if (c < 0) return fail("unexpected end of input");
  if (c == 0x7b || c == 0x5b) {
    if (++pDepth > MAX_DEPTH) return fail("nested too deeply");
    const obj = c == 0x7b;
    const close = obj ? 0x7d : 0x5d;
    const v = obj ? Json.object() : Json.array();
    pPos++;
    ws();
    if (peek() == close) {
      pPos++;
      pDepth--;
      return v;
    }
    while (true) {
      let key = "";
      if (obj) {
        ws();
        if (peek() != 0x22) return fail("expected a member name");
        const k = parseString();
        if (k === null) return null;
        key = k;
        ws();
        if (peek() != 0x3a) return fail("expected ':'");
        pPos++;
      }
      const item = parseValue();
      if (item === null) return null;
      if (obj) v.keys.push(key);
      v.items.push(item);
      ws();
      const d = peek();
      if (d == 0x2c) {
        pPos++;
        continue;
      }
      if (d == close) {
        pPos++;
        pDepth--;
        return v;
      }
      return fail(obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  if (c == 0x22) {
    const s = parseString();
    return s === null ? null : Json.string(s);
  }
  if (literal("true")) return Json.bool(true);
  if (literal("false")) return Json.bool(false);
  if (literal("null")) return Json.null();
  const start = pPos;
  if (peek() == 0x2d) pPos++;
  if (peek() == 0x30) pPos++;
  else if (digits() == 0) return fail("unexpected character");
  if (peek() == 0x2e) {
    pPos++;
    if (digits() == 0) return fail("bad number");
  }
  if (peek() == 0x65 || peek() == 0x45) {
    pPos++;
    if (peek() == 0x2b || peek() == 0x2d) pPos++;
    if (digits() == 0) return fail("bad number");
  }
  return Json.number(parseFloat(String.UTF8.decodeUnsafe(start, pPos - start, false)));
}

/** Parses UTF-8 JSON bytes; null on a syntax error (parseError()). */
export function parseBytes(ptr: usize, len: i32): Json | null {
  pBuf = ptr;
  pPos = ptr;
  pEnd = ptr + <usize>len;
  pDepth = 0;
  pError = "";
  const v = parseValue();
  if (v === null) return null;
  ws();
  if (pPos != pEnd) return fail("text after the value");
  return v;
}

// ------------------------------------------------------------------ verdicts and the entry

/** The verdict {"valid": false, "errors": [...]}: the step fails with validation_failed. */
export function invalid(errors: string[]): Json {
  return Json.object().setBool("valid", false).set("errors", Json.strings(errors));
}

/** Runs a handler on the input and returns the packed output: what an entry function returns. */
export function run(ptr: i32, len: i32, handler: (input: Json) => Json): i64 {
  const input = parseBytes(<usize>ptr, len);
  if (input === null) return pack(invalid(["the input is not JSON: " + pError]).toString());
  return pack(handler(input).toString());
}

// ------------------------------------------------------------------ logs and context

export const DEBUG = 0;
export const INFO = 1;
export const WARN = 2;
export const ERROR = 3;

export function log(level: i32, message: string): void {
  const b = utf8(message);
  host_log(level, changetype<usize>(b), b.byteLength);
}
export function debug(message: string): void {
  log(DEBUG, message);
}
export function info(message: string): void {
  log(INFO, message);
}
export function warn(message: string): void {
  log(WARN, message);
}
export function error(message: string): void {
  log(ERROR, message);
}

/** A value of the job context (docs/abi.md, "What get_context reads"); null when missing. */
export function getContext(key: string): Json | null {
  const k = utf8(key);
  const r = host_get_context(changetype<usize>(k), k.byteLength);
  if (r == 0) return null;
  return parseBytes(unpackPtr(r), unpackLen(r));
}

/** Records a value for later steps: 0 ok, 1 key or value not JSON, 2 over the 4 MiB of a run. */
export function setContext(key: string, value: Json): i32 {
  return setContextRaw(key, value.toString());
}
export function setContextRaw(key: string, json: string): i32 {
  const k = utf8(key);
  const v = utf8(json);
  return host_set_context(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

// ------------------------------------------------------------------ host functions (issue 15)

/** A refused or failed call: code is permission_denied, egress_denied, timeout, too_large,
 * bad_request, not_found, upstream_error, unavailable, cancelled (bad_response: unreadable answer). */
export class HostError {
  constructor(
    public code: string,
    public message: string,
  ) {}
  toString(): string {
    return this.code + ": " + this.message;
  }
}

/** A host call's outcome: `ok` with `value`, or `error`. */
export class Result<T> {
  constructor(
    public value: T | null,
    public error: HostError | null,
  ) {}
  get ok(): bool {
    return this.error === null;
  }
  /** The value; traps when the call failed (check `ok` first). */
  unwrap(): T {
    return changetype<T>(this.value);
  }
}

function answer(r: i64): Result<Json> {
  let v: Json | null = null;
  if (r != 0) v = parseBytes(unpackPtr(r), unpackLen(r));
  if (v === null) return new Result<Json>(null, new HostError("bad_response", r == 0 ? "empty answer from the host" : pError));
  const e = v.get("error");
  if (e.isObject()) return new Result<Json>(null, new HostError(e.get("code").asString("unknown"), e.get("message").asString()));
  return new Result<Json>(v, null);
}

/** The raw calls: any request of docs/abi.md, the result object. */
export function httpRequestRaw(req: Json): Result<Json> {
  const b = utf8(req.toString());
  return answer(host_http_request(changetype<usize>(b), b.byteLength));
}
export function dbQueryRaw(req: Json): Result<Json> {
  const b = utf8(req.toString());
  return answer(host_db_query(changetype<usize>(b), b.byteLength));
}
export function fileReadRaw(req: Json): Result<Json> {
  const b = utf8(req.toString());
  return answer(host_file_read(changetype<usize>(b), b.byteLength));
}
export function fileWriteRaw(req: Json): Result<Json> {
  const b = utf8(req.toString());
  return answer(host_file_write(changetype<usize>(b), b.byteLength));
}
export function fileListRaw(req: Json): Result<Json> {
  const b = utf8(req.toString());
  return answer(host_file_list(changetype<usize>(b), b.byteLength));
}
export function cryptoRaw(req: Json): Result<Json> {
  const b = utf8(req.toString());
  return answer(host_crypto(changetype<usize>(b), b.byteLength));
}
export function timeRaw(req: Json): Result<Json> {
  const b = utf8(req.toString());
  return answer(host_time(changetype<usize>(b), b.byteLength));
}

export class HttpResponse {
  status: i32 = 0;
  /** An object of header names to values. */
  headers: Json = Json.object();
  /** The body as text ("" when it is not UTF-8: then bodyBase64). */
  body: string = "";
  bodyBase64: string | null = null;
  /** The body parsed as JSON (null if it is not JSON). */
  json(): Json | null {
    return Json.parse(this.body);
  }
}

/** An HTTP call (http:read for GET, HEAD, OPTIONS; http:write otherwise). headers: an object. */
export function http(method: string, url: string, body: string | null = null, headers: Json = Json.object(), timeoutMs: i32 = 0): Result<HttpResponse> {
  const req = Json.object().setString("method", method).setString("url", url).set("headers", headers);
  req.set("body", body === null ? Json.null() : Json.string(body));
  if (timeoutMs > 0) req.setNumber("timeout_ms", timeoutMs);
  const r = httpRequestRaw(req);
  if (!r.ok) return new Result<HttpResponse>(null, r.error);
  const v = r.unwrap();
  const resp = new HttpResponse();
  resp.status = <i32>v.get("status").asNumber();
  resp.headers = v.get("headers");
  resp.body = v.get("body").asString();
  if (v.get("body_base64").isString()) resp.bodyBase64 = v.get("body_base64").asString();
  return new Result<HttpResponse>(resp, null);
}

export class Rows {
  /** The column names, and their database types (`int4`, `text`, ...). */
  columns: string[] = [];
  types: string[] = [];
  /** Objects by column name. */
  rows: Json[] = [];
  rowCount: i32 = 0;
  /** For INSERT, UPDATE, DELETE, MERGE; -1 when none is reported. */
  affectedRows: f64 = -1;
  /** A cell by row and column name (null when missing). */
  cell(row: i32, column: string): Json {
    return row < 0 || row >= this.rows.length ? Json.null() : this.rows[row].get(column);
  }
}

/** One statement with $1.. parameters on a named datasource (database:read / database:write). */
export function dbQuery(datasource: string, sql: string, params: Json = Json.array()): Result<Rows> {
  const r = dbQueryRaw(Json.object().setString("datasource", datasource).setString("sql", sql).set("params", params));
  if (!r.ok) return new Result<Rows>(null, r.error);
  const v = r.unwrap();
  const out = new Rows();
  const cols = v.get("columns");
  for (let i = 0; i < cols.length; i++) {
    out.columns.push(cols.at(i).get("name").asString());
    out.types.push(cols.at(i).get("type").asString());
  }
  out.rows = v.get("rows").items;
  out.rowCount = <i32>v.get("row_count").asNumber(<f64>out.rows.length);
  out.affectedRows = v.get("affected_rows").asNumber(-1);
  return new Result<Rows>(out, null);
}

export class FileContent {
  content: string = "";
  /** "utf8", or "base64" when the file is not UTF-8 (then content is base64). */
  encoding: string = "utf8";
  size: f64 = 0;
}

export function fileRead(path: string): Result<FileContent> {
  const r = fileReadRaw(Json.object().setString("path", path));
  if (!r.ok) return new Result<FileContent>(null, r.error);
  const v = r.unwrap();
  const f = new FileContent();
  f.content = v.get("content").asString();
  f.encoding = v.get("encoding").asString("utf8");
  f.size = v.get("size").asNumber();
  return new Result<FileContent>(f, null);
}

/** Writes UTF-8 text (file:write); the result holds size and sha256. */
export function fileWrite(path: string, content: string): Result<Json> {
  return fileWriteRaw(Json.object().setString("path", path).setString("content", content).setString("encoding", "utf8"));
}

/** The files under a prefix: an array of {"path", "size", "modified_at"}. */
export function fileList(prefix: string): Result<Json> {
  const r = fileListRaw(Json.object().setString("prefix", prefix));
  if (!r.ok) return r;
  return new Result<Json>(r.unwrap().get("files"), null);
}

function digest(req: Json): Result<string> {
  const r = cryptoRaw(req);
  if (!r.ok) return new Result<string>(null, r.error);
  return new Result<string>(r.unwrap().get("hex").asString(), null);
}
/** SHA-256 of UTF-8 text, in hex. */
export function sha256(data: string): Result<string> {
  return digest(Json.object().setString("op", "sha256").setString("data", data));
}
export function sha512(data: string): Result<string> {
  return digest(Json.object().setString("op", "sha512").setString("data", data));
}
/** HMAC-SHA256 with the key of secret variable keySecret (secret:use); the key stays in the host. */
export function hmacSha256(keySecret: string, data: string): Result<string> {
  return digest(Json.object().setString("op", "hmac_sha256").setString("key_secret", keySecret).setString("data", data));
}
export function uuid(): Result<string> {
  const r = cryptoRaw(Json.object().setString("op", "uuid"));
  if (!r.ok) return new Result<string>(null, r.error);
  return new Result<string>(r.unwrap().get("uuid").asString(), null);
}
/** n random bytes, base64. */
export function randomBytes(n: i32): Result<string> {
  const r = cryptoRaw(Json.object().setString("op", "random_bytes").setNumber("n", n));
  if (!r.ok) return new Result<string>(null, r.error);
  return new Result<string>(r.unwrap().get("base64").asString(), null);
}

export class Now {
  epochMs: f64 = 0;
  /** UTC, Z. */
  iso: string = "";
  /** With the zone's offset. */
  local: string = "";
}

/** Now, with the ISO text in tz ("" : Asia/Ho_Chi_Minh). */
export function timeNow(tz: string = ""): Result<Now> {
  const req = Json.object().setString("op", "now");
  if (tz.length > 0) req.setString("tz", tz);
  const r = timeRaw(req);
  if (!r.ok) return new Result<Now>(null, r.error);
  const n = new Now();
  n.epochMs = r.unwrap().get("epoch_ms").asNumber();
  n.iso = r.unwrap().get("iso").asString();
  n.local = r.unwrap().get("local").asString();
  return new Result<Now>(n, null);
}
