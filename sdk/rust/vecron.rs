//! vecron: the guest SDK for Rust, one file, no crates (Debian's rustc 1.63 with wasm32-wasi has no
//! cargo registry here). Include it at the root of your crate:
//!
//! ```ignore
//! #[path = "../vecron-sdk/vecron.rs"]
//! mod vecron;
//! use vecron::Json;
//! fn process(input: &Json) -> Json {
//!     vecron::info("hello");
//!     Json::object().with("hello", input.path("user.name").clone())
//! }
//! vecron::entry!(process, process);
//! ```
//!
//! It hides the guest ABI of docs/abi.md: the `alloc` export, the packed (ptr << 32 | len) results,
//! the input and output JSON, and the host imports of module `vecron`. A host function is imported
//! only when the module calls it. Memory handed to the host is leaked on purpose: every run gets a
//! fresh instance.
#![allow(dead_code)]

use std::fmt;

// ------------------------------------------------------------------ the raw imports (docs/abi.md)

mod raw {
    #[link(wasm_import_module = "vecron")]
    extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: i32);
        pub fn get_context(key: *const u8, key_len: i32) -> i64;
        pub fn set_context(key: *const u8, key_len: i32, val: *const u8, val_len: i32) -> i32;
        pub fn http_request(req: *const u8, len: i32) -> i64;
        pub fn db_query(req: *const u8, len: i32) -> i64;
        pub fn file_read(req: *const u8, len: i32) -> i64;
        pub fn file_write(req: *const u8, len: i32) -> i64;
        pub fn file_list(req: *const u8, len: i32) -> i64;
        pub fn crypto(req: *const u8, len: i32) -> i64;
        pub fn time(req: *const u8, len: i32) -> i64;
    }
}

/// The host writes the input and every host answer through this.
#[no_mangle]
pub extern "C" fn alloc(size: i32) -> i32 {
    let mut buf: Vec<u8> = Vec::with_capacity(if size > 0 { size as usize } else { 1 });
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as i32
}

fn leak(bytes: Vec<u8>) -> i64 {
    let (ptr, len) = (bytes.as_ptr() as u32 as i64, bytes.len() as u32 as i64);
    std::mem::forget(bytes);
    (ptr << 32) | len
}

unsafe fn unpacked<'a>(r: i64) -> &'a [u8] {
    let ptr = ((r as u64) >> 32) as u32 as usize;
    let len = (r as u64 & 0xffff_ffff) as usize;
    if len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(ptr as *const u8, len)
}

// ------------------------------------------------------------------ JSON values

/// A JSON value. Objects keep their members in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

static NULL: Json = Json::Null;

impl Json {
    /// A new empty object (add members with `with` or `set`).
    pub fn object() -> Json {
        Json::Object(Vec::new())
    }
    /// Member `key`, or `Json::Null` when this is not an object or has no such member.
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
    /// Element `i`, or `Json::Null`.
    pub fn at(&self, i: usize) -> &Json {
        match self {
            Json::Array(a) => a.get(i).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
    /// A dotted path: `"order.items.0.sku"` (array elements by index); `Json::Null` when missing.
    pub fn path(&self, path: &str) -> &Json {
        let mut v = self;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            v = match v {
                Json::Array(_) => part.parse::<usize>().map(|i| v.at(i)).unwrap_or(&NULL),
                _ => v.get(part),
            };
        }
        v
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }
    /// A whole number within ±2^53 (what a JSON number carries exactly).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 => Some(*n as i64),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&Vec<(String, Json)>> {
        match self {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }
    /// Elements of an array or members of an object; 0 for anything else.
    pub fn len(&self) -> usize {
        match self {
            Json::Array(a) => a.len(),
            Json::Object(m) => m.len(),
            _ => 0,
        }
    }
    /// Sets member `key` of an object (replacing it), and returns the object.
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Json {
        self.set(key, value);
        self
    }
    /// Sets member `key` (an object is made of anything else).
    pub fn set(&mut self, key: &str, value: impl Into<Json>) {
        if !matches!(self, Json::Object(_)) {
            *self = Json::object();
        }
        if let Json::Object(m) = self {
            let value = value.into();
            match m.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => m.push((key.to_string(), value)),
            }
        }
    }
    /// Routes the job to step `id` next (`"next_step"`, docs/jobs.md).
    pub fn route(self, id: &str) -> Json {
        self.with("next_step", id)
    }
    /// Parses JSON text.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.fail("text after the value"));
        }
        Ok(v)
    }
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}
impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Number(v)
    }
}
impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Number(v as f64)
    }
}
impl From<i32> for Json {
    fn from(v: i32) -> Json {
        Json::Number(v as f64)
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Number(v as f64)
    }
}
impl From<usize> for Json {
    fn from(v: usize) -> Json {
        Json::Number(v as f64)
    }
}
impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::String(v.to_string())
    }
}
impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::String(v)
    }
}
impl From<&Json> for Json {
    fn from(v: &Json) -> Json {
        v.clone()
    }
}
impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(v: Vec<T>) -> Json {
        Json::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map(Into::into).unwrap_or(Json::Null)
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        f.write_str(&s[run..i])?;
        run = i + 1;
        if esc.is_empty() {
            write!(f, "\\u{:04x}", c as u32)?;
        } else {
            f.write_str(esc)?;
        }
    }
    f.write_str(&s[run..])?;
    f.write_str("\"")
}

/// JSON text (compact). NaN and infinities, which JSON cannot hold, are written as null.
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Json::Number(n) if !n.is_finite() => f.write_str("null"),
            Json::Number(n) => write!(f, "{}", n),
            Json::String(s) => write_str(f, s),
            Json::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}", v)?;
                }
                f.write_str("]")
            }
            Json::Object(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{}", v)?;
                }
                f.write_str("}")
            }
        }
    }
}

const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn fail(&self, what: &str) -> String {
        format!("{} at byte {}", what, self.i)
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            None => Err(self.fail("unexpected end of input")),
            Some(b'{') | Some(b'[') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.fail("nested too deeply"));
                }
                let obj = self.s[self.i] == b'{';
                let close = if obj { b'}' } else { b']' };
                self.i += 1;
                let (mut members, mut items) = (Vec::new(), Vec::new());
                self.ws();
                if self.s.get(self.i) == Some(&close) {
                    self.i += 1;
                } else {
                    loop {
                        if obj {
                            self.ws();
                            if self.s.get(self.i) != Some(&b'"') {
                                return Err(self.fail("expected a member name"));
                            }
                            let k = self.string()?;
                            self.ws();
                            if self.s.get(self.i) != Some(&b':') {
                                return Err(self.fail("expected ':'"));
                            }
                            self.i += 1;
                            members.push((k, self.value()?));
                        } else {
                            items.push(self.value()?);
                        }
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(c) if *c == close => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.fail(if obj { "expected ',' or '}'" } else { "expected ',' or ']'" })),
                        }
                    }
                }
                self.depth -= 1;
                Ok(if obj { Json::Object(members) } else { Json::Array(items) })
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(_) => self.number(),
        }
    }
    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.i - start
    }
    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        if self.s.get(self.i) == Some(&b'0') {
            self.i += 1;
        } else if self.digits() == 0 {
            return Err(self.fail("unexpected character"));
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.fail("bad number"));
            }
        }
        if matches!(self.s.get(self.i), Some(b'e') | Some(b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+') | Some(b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.fail("bad number"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.fail("bad number"))?;
        text.parse::<f64>().map(Json::Number).map_err(|_| self.fail("bad number"))
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or_else(|| self.fail("bad \\u escape"))?;
        let v = std::str::from_utf8(h).ok().and_then(|t| u32::from_str_radix(t, 16).ok()).ok_or_else(|| self.fail("bad \\u escape"))?;
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or_else(|| self.fail("unterminated string"))?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or_else(|| self.fail("unterminated string"))?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.fail("bad surrogate pair"));
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            char::from_u32(cp).unwrap_or('\u{FFFD}')
                        }
                        _ => return Err(self.fail("bad escape")),
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                c if c < 0x20 => return Err(self.fail("control character in a string")),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.fail("a string is not UTF-8"))
    }
}

// ------------------------------------------------------------------ verdicts

/// The verdict `{"valid": false, "errors": [...]}`: the step fails with validation_failed.
pub fn invalid<S: Into<String>>(errors: Vec<S>) -> Json {
    Json::object().with("valid", false).with("errors", errors.into_iter().map(|e| Json::String(e.into())).collect::<Vec<_>>())
}

// ------------------------------------------------------------------ logs and context

pub const DEBUG: i32 = 0;
pub const INFO: i32 = 1;
pub const WARN: i32 = 2;
pub const ERROR: i32 = 3;

pub fn log(level: i32, message: &str) {
    unsafe { raw::log(level, message.as_ptr(), message.len() as i32) }
}
pub fn debug(message: &str) {
    log(DEBUG, message)
}
pub fn info(message: &str) {
    log(INFO, message)
}
pub fn warn(message: &str) {
    log(WARN, message)
}
pub fn error(message: &str) {
    log(ERROR, message)
}

/// A value of the job context (docs/abi.md, "What get_context reads"): `""` the whole context, a
/// bare key a variable or an earlier `set_context`, a dotted path a path. `None` when missing.
pub fn get_context(key: &str) -> Option<Json> {
    let r = unsafe { raw::get_context(key.as_ptr(), key.len() as i32) };
    if r == 0 {
        return None;
    }
    let bytes = unsafe { unpacked(r) };
    std::str::from_utf8(bytes).ok().and_then(|t| Json::parse(t).ok())
}

/// Why set_context refused a value.
#[derive(Debug, PartialEq)]
pub enum SetContextError {
    /// The key or the value is not UTF-8 JSON, or the key is over 4 KiB.
    Invalid,
    /// The run's writes would pass 4 MiB.
    TooLarge,
}

/// Records a value under `key` for later steps and the execution record.
pub fn set_context(key: &str, value: &Json) -> Result<(), SetContextError> {
    set_context_raw(key, &value.to_string())
}

/// Records JSON text as it is.
pub fn set_context_raw(key: &str, json: &str) -> Result<(), SetContextError> {
    match unsafe { raw::set_context(key.as_ptr(), key.len() as i32, json.as_ptr(), json.len() as i32) } {
        0 => Ok(()),
        2 => Err(SetContextError::TooLarge),
        _ => Err(SetContextError::Invalid),
    }
}

// ------------------------------------------------------------------ the entry

/// Runs a handler on the input bytes and returns the packed output (what `entry!` exports).
pub fn run(ptr: i32, len: i32, handler: fn(&Json) -> Json) -> i64 {
    let bytes = unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
    let parsed = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string()).and_then(Json::parse);
    let out = match parsed {
        Ok(input) => handler(&input),
        Err(e) => invalid(vec![format!("the input is not JSON: {}", e)]),
    };
    leak(out.to_string().into_bytes())
}

/// Exports `name(ptr, len) -> i64` (form A) running `handler(&Json) -> Json`. (The SDK must be the
/// crate's module `vecron`.)
macro_rules! entry {
    ($name:ident, $handler:path) => {
        const _: () = {
            #[export_name = stringify!($name)]
            pub extern "C" fn entry(ptr: i32, len: i32) -> i64 {
                $crate::vecron::run(ptr, len, $handler)
            }
        };
    };
}
pub(crate) use entry;

// ------------------------------------------------------------------ host functions (issue 15)

/// A refused or failed host call. `code` is one of permission_denied, egress_denied, timeout,
/// too_large, bad_request, not_found, upstream_error, unavailable, cancelled (or bad_response when
/// the answer could not be read).
#[derive(Clone, Debug, PartialEq)]
pub struct HostError {
    pub code: String,
    pub message: String,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
impl std::error::Error for HostError {}

pub type HostResult<T> = Result<T, HostError>;

fn answer(r: i64) -> HostResult<Json> {
    let bad = |m: &str| HostError { code: "bad_response".into(), message: m.into() };
    if r == 0 {
        return Err(bad("empty answer from the host"));
    }
    let text = std::str::from_utf8(unsafe { unpacked(r) }).map_err(|_| bad("answer is not UTF-8"))?;
    let v = Json::parse(text).map_err(|e| bad(&e))?;
    if let Json::Object(_) = v.get("error") {
        let e = v.get("error");
        return Err(HostError {
            code: e.get("code").as_str().unwrap_or("unknown").to_string(),
            message: e.get("message").as_str().unwrap_or("").to_string(),
        });
    }
    Ok(v)
}

fn call(f: unsafe extern "C" fn(*const u8, i32) -> i64, req: &Json) -> HostResult<Json> {
    let text = req.to_string();
    answer(unsafe { f(text.as_ptr(), text.len() as i32) })
}

/// The raw calls: any request of docs/abi.md, the result object.
pub fn http_request_raw(req: &Json) -> HostResult<Json> {
    call(raw::http_request, req)
}
pub fn db_query_raw(req: &Json) -> HostResult<Json> {
    call(raw::db_query, req)
}
pub fn file_read_raw(req: &Json) -> HostResult<Json> {
    call(raw::file_read, req)
}
pub fn file_write_raw(req: &Json) -> HostResult<Json> {
    call(raw::file_write, req)
}
pub fn file_list_raw(req: &Json) -> HostResult<Json> {
    call(raw::file_list, req)
}
pub fn crypto_raw(req: &Json) -> HostResult<Json> {
    call(raw::crypto, req)
}
pub fn time_raw(req: &Json) -> HostResult<Json> {
    call(raw::time, req)
}

fn string_map(v: &Json) -> Vec<(String, String)> {
    v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect()).unwrap_or_default()
}

/// An HTTP request (permission http:read for GET, HEAD, OPTIONS; http:write for the others).
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout_ms: Option<u64>,
}

impl HttpRequest {
    pub fn new(method: &str, url: &str) -> HttpRequest {
        HttpRequest { method: method.into(), url: url.into(), headers: Vec::new(), body: None, timeout_ms: None }
    }
    pub fn get(url: &str) -> HttpRequest {
        HttpRequest::new("GET", url)
    }
    pub fn post(url: &str, body: impl Into<String>) -> HttpRequest {
        HttpRequest::new("POST", url).body(body)
    }
    pub fn header(mut self, name: &str, value: &str) -> HttpRequest {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn body(mut self, body: impl Into<String>) -> HttpRequest {
        self.body = Some(body.into());
        self
    }
    pub fn timeout_ms(mut self, ms: u64) -> HttpRequest {
        self.timeout_ms = Some(ms);
        self
    }
    /// Sends it: an answer of any status is `Ok`.
    pub fn send(&self) -> HostResult<HttpResponse> {
        let mut headers = Json::object();
        for (k, v) in &self.headers {
            headers.set(k, v.as_str());
        }
        let mut req = Json::object().with("method", self.method.as_str()).with("url", self.url.as_str()).with("headers", headers).with("body", self.body.clone());
        if let Some(ms) = self.timeout_ms {
            req.set("timeout_ms", ms);
        }
        let r = http_request_raw(&req)?;
        Ok(HttpResponse {
            status: r.get("status").as_f64().unwrap_or(0.0) as u16,
            headers: string_map(r.get("headers")),
            body: r.get("body").as_str().unwrap_or("").to_string(),
            body_base64: r.get("body_base64").as_str().map(String::from),
        })
    }
}

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (empty when it is not UTF-8: then `body_base64`).
    pub body: String,
    pub body_base64: Option<String>,
}

impl HttpResponse {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Json, String> {
        Json::parse(&self.body)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A column of a db_query answer: its name and the database's type name (`int4`, `text`, ...).
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub type_name: String,
}

/// The answer of db_query: rows are objects by column name.
#[derive(Clone, Debug)]
pub struct Rows {
    pub columns: Vec<Column>,
    pub rows: Vec<Json>,
    pub row_count: u64,
    /// For INSERT, UPDATE, DELETE, MERGE.
    pub affected_rows: Option<u64>,
}

impl Rows {
    /// A cell by row and column name.
    pub fn cell(&self, row: usize, column: &str) -> &Json {
        self.rows.get(row).map(|r| r.get(column)).unwrap_or(&NULL)
    }
}

/// One statement with `$1..` parameters on a named datasource (database:read or database:write).
pub fn db_query(datasource: &str, sql: &str, params: Vec<Json>) -> HostResult<Rows> {
    let r = db_query_raw(&Json::object().with("datasource", datasource).with("sql", sql).with("params", params))?;
    let rows: Vec<Json> = r.get("rows").as_array().cloned().unwrap_or_default();
    Ok(Rows {
        columns: r
            .get("columns")
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| Column { name: c.get("name").as_str().unwrap_or("").to_string(), type_name: c.get("type").as_str().unwrap_or("").to_string() })
                    .collect()
            })
            .unwrap_or_default(),
        row_count: r.get("row_count").as_f64().map(|n| n as u64).unwrap_or(rows.len() as u64),
        affected_rows: r.get("affected_rows").as_f64().map(|n| n as u64),
        rows,
    })
}

#[derive(Clone, Debug)]
pub struct FileContent {
    pub content: String,
    /// `utf8`, or `base64` when the file is not UTF-8 (then `content` is base64).
    pub encoding: String,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct FileWritten {
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub modified_at: String,
}

/// A file of the job's area (`jobs/{job_id}/`) or an area a file:read permission names.
pub fn file_read(path: &str) -> HostResult<FileContent> {
    let r = file_read_raw(&Json::object().with("path", path))?;
    Ok(FileContent {
        content: r.get("content").as_str().unwrap_or("").to_string(),
        encoding: r.get("encoding").as_str().unwrap_or("utf8").to_string(),
        size: r.get("size").as_f64().unwrap_or(0.0) as u64,
    })
}

/// Writes UTF-8 text (file:write).
pub fn file_write(path: &str, content: &str) -> HostResult<FileWritten> {
    let r = file_write_raw(&Json::object().with("path", path).with("content", content).with("encoding", "utf8"))?;
    Ok(FileWritten { size: r.get("size").as_f64().unwrap_or(0.0) as u64, sha256: r.get("sha256").as_str().unwrap_or("").to_string() })
}

pub fn file_list(prefix: &str) -> HostResult<Vec<FileInfo>> {
    let r = file_list_raw(&Json::object().with("prefix", prefix))?;
    Ok(r.get("files")
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| FileInfo {
                    path: f.get("path").as_str().unwrap_or("").to_string(),
                    size: f.get("size").as_f64().unwrap_or(0.0) as u64,
                    modified_at: f.get("modified_at").as_str().unwrap_or("").to_string(),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A digest, in hex and base64.
#[derive(Clone, Debug)]
pub struct Digest {
    pub hex: String,
    pub base64: String,
}

fn digest(req: Json) -> HostResult<Digest> {
    let r = crypto_raw(&req)?;
    Ok(Digest { hex: r.get("hex").as_str().unwrap_or("").to_string(), base64: r.get("base64").as_str().unwrap_or("").to_string() })
}
pub fn sha256(data: &str) -> HostResult<Digest> {
    digest(Json::object().with("op", "sha256").with("data", data))
}
pub fn sha512(data: &str) -> HostResult<Digest> {
    digest(Json::object().with("op", "sha512").with("data", data))
}
/// HMAC-SHA256 with the key of secret variable `key_secret` (secret:use); the key stays in the host.
pub fn hmac_sha256(key_secret: &str, data: &str) -> HostResult<Digest> {
    digest(Json::object().with("op", "hmac_sha256").with("key_secret", key_secret).with("data", data))
}
/// `n` random bytes, base64.
pub fn random_bytes(n: u32) -> HostResult<String> {
    Ok(crypto_raw(&Json::object().with("op", "random_bytes").with("n", n as u64))?.get("base64").as_str().unwrap_or("").to_string())
}
pub fn uuid() -> HostResult<String> {
    Ok(crypto_raw(&Json::object().with("op", "uuid"))?.get("uuid").as_str().unwrap_or("").to_string())
}

#[derive(Clone, Debug)]
pub struct Now {
    pub epoch_ms: i64,
    /// UTC, `Z`.
    pub iso: String,
    /// With the zone's offset.
    pub local: String,
}

/// Now, with the ISO text in `tz` (None: Asia/Ho_Chi_Minh).
pub fn time_now(tz: Option<&str>) -> HostResult<Now> {
    let mut req = Json::object().with("op", "now");
    if let Some(tz) = tz {
        req.set("tz", tz);
    }
    let r = time_raw(&req)?;
    Ok(Now {
        epoch_ms: r.get("epoch_ms").as_f64().unwrap_or(0.0) as i64,
        iso: r.get("iso").as_str().unwrap_or("").to_string(),
        local: r.get("local").as_str().unwrap_or("").to_string(),
    })
}
