// vecron.hpp: the vecron guest SDK for C++17, a thin layer over vecron.h (same folder).
//
//   #include "vecron.hpp"
//   static void process(vecron::Json in, vecron::Writer &out) {
//     out.object().kv("hello", in.path("user.name").str()).end_object();
//   }
//   VECRON_CPP_ENTRY(process, process)
//
// Build: clang++ --target=wasm32-wasi -std=c++17 -O2 -fno-exceptions -mexec-model=reactor \
//          -I vecron-sdk -Wl,--strip-all -o m.wasm m.cpp        (libc++ for WASI: libc++-dev-wasm32)
// Errors are values (Result<T>), not exceptions: WebAssembly exceptions are not enabled here.
#ifndef VECRON_HPP
#define VECRON_HPP

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vecron.h"

namespace vecron {

// A read-only view of a parsed JSON value; a missing member is a null view (never a crash).
class Json {
 public:
  Json(const vecron_json *v = nullptr) : v_(v) {}
  Json operator[](const char *key) const { return Json(vecron_get(v_, key)); }
  Json operator[](size_t i) const { return Json(vecron_at(v_, i)); }
  Json operator[](int i) const { return i < 0 ? Json() : Json(vecron_at(v_, static_cast<size_t>(i))); }
  Json get(const char *key) const { return (*this)[key]; }
  Json at(size_t i) const { return (*this)[i]; }
  // A dotted path: "order.items.0.sku".
  Json path(const char *p) const { return Json(vecron_path(v_, p)); }
  bool is_null() const { return !v_ || v_->type == VECRON_NULL; }
  bool is_string() const { return vecron_is(v_, VECRON_STRING); }
  bool is_number() const { return vecron_is(v_, VECRON_NUMBER); }
  bool is_bool() const { return vecron_is(v_, VECRON_BOOL); }
  bool is_array() const { return vecron_is(v_, VECRON_ARRAY); }
  bool is_object() const { return vecron_is(v_, VECRON_OBJECT); }
  // A whole number within +-2^53.
  bool is_integer() const { return vecron_is_integer(v_); }
  // The string ("" when this is not a string; see string() to tell).
  std::string_view str() const { return is_string() ? std::string_view(v_->string, v_->string_len) : std::string_view(); }
  std::optional<std::string_view> string() const {
    if (!is_string()) return std::nullopt;
    return std::string_view(v_->string, v_->string_len);
  }
  double number(double fallback = 0) const { return vecron_number(v_, fallback); }
  std::optional<long long> integer() const {
    if (!is_integer()) return std::nullopt;
    return static_cast<long long>(v_->number);
  }
  bool boolean(bool fallback = false) const { return vecron_bool(v_, fallback) != 0; }
  // Elements of an array or members of an object.
  size_t size() const { return vecron_len(v_); }
  // The members' keys of an object (in order).
  std::string_view key(size_t i) const { return is_object() && i < v_->count ? std::string_view(v_->keys[i], v_->key_lens[i]) : std::string_view(); }
  const vecron_json *raw() const { return v_; }

  // Iterates an array's elements (nothing for anything else).
  struct iterator {
    const vecron_json *v;
    size_t i;
    Json operator*() const { return Json(v->items[i]); }
    iterator &operator++() { ++i; return *this; }
    bool operator!=(const iterator &o) const { return i != o.i; }
  };
  iterator begin() const { return {v_, 0}; }
  iterator end() const { return {v_, is_array() ? v_->count : 0}; }

  static std::optional<Json> parse(std::string_view text) {
    const vecron_json *v = vecron_parse(text.data(), text.size(), nullptr);
    if (!v) return std::nullopt;
    return Json(v);
  }

 private:
  const vecron_json *v_;
};

// Writes JSON; commas are placed for you. Every call returns the writer, so calls chain.
class Writer {
 public:
  explicit Writer(vecron_writer *w) : w_(w) {}
  Writer &object() { vecron_w_object(w_); return *this; }
  Writer &end_object() { vecron_w_end_object(w_); return *this; }
  Writer &array() { vecron_w_array(w_); return *this; }
  Writer &end_array() { vecron_w_end_array(w_); return *this; }
  Writer &key(std::string_view k) {
    std::string s(k);
    vecron_w_key(w_, s.c_str());
    return *this;
  }
  Writer &value(std::string_view s) { vecron_w_string_n(w_, s.data(), s.size()); return *this; }
  Writer &value(const char *s) { vecron_w_string(w_, s); return *this; }
  Writer &value(const std::string &s) { return value(std::string_view(s)); }
  Writer &value(double v) { vecron_w_number(w_, v); return *this; }
  Writer &value(int v) { vecron_w_int(w_, v); return *this; }
  Writer &value(long v) { vecron_w_int(w_, v); return *this; }
  Writer &value(long long v) { vecron_w_int(w_, v); return *this; }
  Writer &value(size_t v) { vecron_w_int(w_, static_cast<long long>(v)); return *this; }
  Writer &value(bool v) { vecron_w_bool(w_, v); return *this; }
  Writer &value(Json v) { vecron_w_json(w_, v.raw()); return *this; }
  Writer &null() { vecron_w_null(w_); return *this; }
  // JSON text as it is.
  Writer &raw(std::string_view json) { vecron_w_raw_n(w_, json.data(), json.size()); return *this; }
  template <class T>
  Writer &kv(std::string_view k, T &&v) { key(k); return value(std::forward<T>(v)); }
  // Inside the output object: routes the job to step `id` next.
  Writer &route(std::string_view id) { return kv("next_step", id); }
  vecron_writer *raw_writer() { return w_; }

 private:
  vecron_writer *w_;
};

// The problems of a validation verdict.
class Errors {
 public:
  void add(std::string e) { items_.push_back(std::move(e)); }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  // Writes {"valid": false, "errors": [...]}: the step fails with validation_failed.
  void write(Writer &out) const {
    out.object().kv("valid", false).key("errors").array();
    for (const auto &e : items_) out.value(e);
    out.end_array().end_object();
  }

 private:
  std::vector<std::string> items_;
};

inline void log(int level, std::string_view m) { vecron__log(level, m.data(), static_cast<int32_t>(m.size())); }
inline void debug(std::string_view m) { log(VECRON_DEBUG, m); }
inline void info(std::string_view m) { log(VECRON_INFO, m); }
inline void warn(std::string_view m) { log(VECRON_WARN, m); }
inline void error(std::string_view m) { log(VECRON_ERROR, m); }

// A value of the job context (docs/abi.md, "What get_context reads"); nullopt when missing.
inline std::optional<Json> get_context(const char *key) {
  const vecron_json *v = vecron_get_context(key);
  if (!v) return std::nullopt;
  return Json(v);
}
// Records JSON text under key: 0 ok, 1 not JSON, 2 over the 4 MiB of a run.
inline int set_context(const char *key, std::string_view json) {
  return vecron__set_context(key, static_cast<int32_t>(strlen(key)), json.data(), static_cast<int32_t>(json.size()));
}
inline int set_context_string(const char *key, std::string_view s) {
  vecron_writer w = {};
  vecron_w_string_n(&w, s.data(), s.size());
  return vecron_set_context(key, w.data);
}
inline int set_context_json(const char *key, Json v) { return vecron_set_context_json(key, v.raw()); }

// ------------------------------------------------------------------ host functions (issue 15)

// A refused or failed host call: code() is permission_denied, egress_denied, timeout, too_large,
// bad_request, not_found, upstream_error, unavailable, cancelled (or bad_response).
struct HostError {
  std::string code, message;
};

template <class T>
struct Result {
  std::optional<T> value;
  HostError error;
  bool ok() const { return value.has_value(); }
  const T &operator*() const { return *value; }
  const T *operator->() const { return &*value; }
};

template <class T>
Result<T> fail(const vecron_error &e) {
  return Result<T>{std::nullopt, HostError{e.code, e.message}};
}
template <class T>
Result<T> okay(T v) {
  return Result<T>{std::move(v), HostError{}};
}

struct HttpResponse {
  int status = 0;
  Json headers;
  std::string body;  // text; base64 when body_base64
  bool body_base64 = false;
};

// An HTTP call (http:read for GET, HEAD, OPTIONS; http:write otherwise); headers_json: an object.
inline Result<HttpResponse> http(const char *method, const char *url, const char *body = nullptr, const char *headers_json = nullptr) {
  vecron_error err;
  vecron_http_response r;
  if (vecron_http(method, url, headers_json, body, &r, &err) != 0) return fail<HttpResponse>(err);
  return okay(HttpResponse{r.status, Json(r.headers), std::string(r.body, r.body_len), r.body_base64 != 0});
}

struct Rows {
  Json columns;  // [{"name", "type"}]
  Json rows;     // [{column: value}]
  long row_count = 0;
  long affected_rows = -1;  // -1: none reported
  std::string_view column(size_t i) const { return columns[i]["name"].str(); }
  // A cell by row and column name.
  Json cell(size_t row, const char *column) const { return rows[row][column]; }
};

// One statement with $1.. parameters (params_json: a JSON array as text).
inline Result<Rows> db_query(const char *datasource, const char *sql, const char *params_json = "[]") {
  vecron_error err;
  vecron_db_result r;
  if (vecron_db_query(datasource, sql, params_json, &r, &err) != 0) return fail<Rows>(err);
  return okay(Rows{Json(r.columns), Json(r.rows), r.row_count, r.affected_rows});
}

struct FileContent {
  std::string content;
  bool base64 = false;
};
inline Result<FileContent> file_read(const char *path) {
  vecron_error err;
  const char *c;
  size_t n;
  int b64;
  if (vecron_file_read(path, &c, &n, &b64, &err) != 0) return fail<FileContent>(err);
  return okay(FileContent{std::string(c, n), b64 != 0});
}
struct FileWritten {
  long size = 0;
  std::string sha256;
};
inline Result<FileWritten> file_write(const char *path, std::string_view content) {
  vecron_error err;
  long size;
  char hex[65];
  if (vecron_file_write(path, content.data(), content.size(), &size, hex, &err) != 0) return fail<FileWritten>(err);
  return okay(FileWritten{size, hex});
}
// An array of {"path", "size", "modified_at"}.
inline Result<Json> file_list(const char *prefix) {
  vecron_error err;
  const vecron_json *files;
  if (vecron_file_list(prefix, &files, &err) != 0) return fail<Json>(err);
  return okay(Json(files));
}

// Hex digests; the HMAC key stays in the host (secret:use).
inline Result<std::string> sha256(std::string_view data) {
  vecron_error err;
  char hex[65];
  if (vecron_sha256(data.data(), data.size(), hex, &err) != 0) return fail<std::string>(err);
  return okay(std::string(hex));
}
inline Result<std::string> sha512(std::string_view data) {
  vecron_error err;
  char hex[129];
  if (vecron_sha512(data.data(), data.size(), hex, &err) != 0) return fail<std::string>(err);
  return okay(std::string(hex));
}
inline Result<std::string> hmac_sha256(const char *key_secret, std::string_view data) {
  vecron_error err;
  char hex[65];
  if (vecron_hmac_sha256(key_secret, data.data(), data.size(), hex, &err) != 0) return fail<std::string>(err);
  return okay(std::string(hex));
}
inline Result<std::string> uuid() {
  vecron_error err;
  char u[37];
  if (vecron_uuid(u, &err) != 0) return fail<std::string>(err);
  return okay(std::string(u));
}
inline Result<std::string> random_bytes(int n) {
  vecron_error err;
  const char *b = vecron_random_base64(n, &err);
  if (!b) return fail<std::string>(err);
  return okay(std::string(b));
}
struct Now {
  int64_t epoch_ms = 0;
  std::string iso;
};
inline Result<Now> time_now(const char *tz = nullptr) {
  vecron_error err;
  int64_t ms;
  const char *iso;
  if (vecron_time_now(tz, &ms, &iso, &err) != 0) return fail<Now>(err);
  return okay(Now{ms, iso ? iso : ""});
}

}  // namespace vecron

// Exports `name(ptr, len) -> i64` (form A) running handler(vecron::Json in, vecron::Writer &out).
#define VECRON_CPP_ENTRY(name, handler)                                               \
  static void vecron_cpp_entry_##name(const vecron_json *in, vecron_writer *out) { \
    vecron::Writer w(out);                                                         \
    handler(vecron::Json(in), w);                                                  \
  }                                                                                \
  VECRON_ENTRY(name, vecron_cpp_entry_##name)

#endif  // VECRON_HPP
