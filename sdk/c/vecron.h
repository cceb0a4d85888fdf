/*
 * vecron.h: the vecron guest SDK for C (and, through vecron.hpp, C++). One header, no other files.
 *
 * It hides the guest ABI of docs/abi.md: the `alloc` export, the packed (ptr << 32 | len) results,
 * the input and output JSON, and the host imports of module `vecron`.
 *
 *   #include "vecron.h"
 *   static void process(const vecron_json *input, vecron_writer *out) {
 *     vecron_w_object(out);
 *     vecron_w_kv_string(out, "hello", vecron_string(vecron_path(input, "user.name")));
 *     vecron_w_end_object(out);
 *   }
 *   VECRON_ENTRY(process, process)
 *
 * Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor -I vecron-sdk -Wl,--strip-all -o m.wasm m.c
 *
 * Every function is `static`: include the header in the one file that defines the entry. A module of
 * several .c files defines VECRON_NO_ALLOC before the include in every file but one (`alloc` is
 * exported once). Memory is never freed on purpose: every run gets a fresh instance.
 *
 * A host function is only imported when the module calls it, so a module that uses none runs on any
 * vecron; one that calls them needs the permissions of docs/abi.md.
 */
#ifndef VECRON_H
#define VECRON_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#define VECRON_EXTERN_C extern "C"
#else
#define VECRON_EXTERN_C
#endif

#define VECRON_FN static __attribute__((unused))
/* A zeroed struct in both languages (C++ warns about `{0}` with -Wextra). */
#ifdef __cplusplus
#define VECRON_ZERO {}
#else
#define VECRON_ZERO {0}
#endif
#define VECRON_IMPORT(name) __attribute__((import_module("vecron"), import_name(#name)))

/* ------------------------------------------------------------------ the raw imports (docs/abi.md) */

VECRON_IMPORT(log) void vecron__log(int32_t level, const char *ptr, int32_t len);
VECRON_IMPORT(get_context) int64_t vecron__get_context(const char *key, int32_t key_len);
VECRON_IMPORT(set_context) int32_t vecron__set_context(const char *key, int32_t key_len, const char *val, int32_t val_len);
VECRON_IMPORT(http_request) int64_t vecron__http_request(const char *req, int32_t len);
VECRON_IMPORT(db_query) int64_t vecron__db_query(const char *req, int32_t len);
VECRON_IMPORT(file_read) int64_t vecron__file_read(const char *req, int32_t len);
VECRON_IMPORT(file_write) int64_t vecron__file_write(const char *req, int32_t len);
VECRON_IMPORT(file_list) int64_t vecron__file_list(const char *req, int32_t len);
VECRON_IMPORT(crypto) int64_t vecron__crypto(const char *req, int32_t len);
VECRON_IMPORT(time) int64_t vecron__time(const char *req, int32_t len);

#ifndef VECRON_NO_ALLOC
/* The host writes the input and every host answer through this. */
VECRON_EXTERN_C __attribute__((export_name("alloc"))) int32_t alloc(int32_t size) {
  return (int32_t)(uintptr_t)malloc(size > 0 ? (size_t)size : 1);
}
#endif

/* ------------------------------------------------------------------ JSON values */

typedef enum { VECRON_NULL, VECRON_BOOL, VECRON_NUMBER, VECRON_STRING, VECRON_ARRAY, VECRON_OBJECT } vecron_type;

typedef struct vecron_json vecron_json;
struct vecron_json {
  vecron_type type;
  int boolean;
  double number;
  const char *string; /* UTF-8, NUL-terminated (may hold NULs: use string_len) */
  size_t string_len;
  size_t count;          /* elements of an array, members of an object */
  vecron_json **items;   /* the elements, or the members' values */
  const char **keys;     /* the members' keys */
  size_t *key_lens;
};

#define VECRON_MAX_DEPTH 128

typedef struct {
  const char *s;
  size_t n, i;
  const char *error;
  int depth;
} vecron__parser;

VECRON_FN void vecron__ws(vecron__parser *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

VECRON_FN vecron_json *vecron__new(vecron_type t) {
  vecron_json *v = (vecron_json *)calloc(1, sizeof(vecron_json));
  v->type = t;
  return v;
}

VECRON_FN int vecron__hex4(vecron__parser *p, unsigned *out) {
  if (p->i + 4 > p->n) return 0;
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p->s[p->i++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

/* Reads a string at p->i (on the quote) into a fresh NUL-terminated buffer. */
VECRON_FN char *vecron__string(vecron__parser *p, size_t *len) {
  p->i++;
  size_t cap = 16, n = 0;
  char *out = (char *)malloc(cap);
  for (;;) {
    if (p->i >= p->n) { p->error = "unterminated string"; return NULL; }
    unsigned char c = (unsigned char)p->s[p->i++];
    if (n + 5 > cap) { cap *= 2; out = (char *)realloc(out, cap); }
    if (c == '"') break;
    if (c < 0x20) { p->error = "control character in a string"; return NULL; }
    if (c != '\\') { out[n++] = (char)c; continue; }
    if (p->i >= p->n) { p->error = "unterminated string"; return NULL; }
    char e = p->s[p->i++];
    switch (e) {
      case '"': out[n++] = '"'; break;
      case '\\': out[n++] = '\\'; break;
      case '/': out[n++] = '/'; break;
      case 'b': out[n++] = '\b'; break;
      case 'f': out[n++] = '\f'; break;
      case 'n': out[n++] = '\n'; break;
      case 'r': out[n++] = '\r'; break;
      case 't': out[n++] = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (!vecron__hex4(p, &cp)) { p->error = "bad \\u escape"; return NULL; }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (p->i + 2 <= p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
            p->i += 2;
            if (!vecron__hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) { p->error = "bad surrogate pair"; return NULL; }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else cp = 0xFFFD;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) cp = 0xFFFD;
        if (cp < 0x80) out[n++] = (char)cp;
        else if (cp < 0x800) { out[n++] = (char)(0xC0 | (cp >> 6)); out[n++] = (char)(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
          out[n++] = (char)(0xE0 | (cp >> 12)); out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
          out[n++] = (char)(0xF0 | (cp >> 18)); out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
          out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[n++] = (char)(0x80 | (cp & 0x3F));
        }
        break;
      }
      default: p->error = "bad escape"; return NULL;
    }
  }
  out[n] = 0;
  *len = n;
  return out;
}

VECRON_FN vecron_json *vecron__value(vecron__parser *p);

VECRON_FN int vecron__push(vecron_json *v, size_t *cap, vecron_json *item, const char *key, size_t key_len) {
  if (v->count == *cap) {
    *cap = *cap ? *cap * 2 : 4;
    v->items = (vecron_json **)realloc(v->items, *cap * sizeof(vecron_json *));
    if (v->type == VECRON_OBJECT) {
      v->keys = (const char **)realloc(v->keys, *cap * sizeof(char *));
      v->key_lens = (size_t *)realloc(v->key_lens, *cap * sizeof(size_t));
    }
  }
  if (key) { v->keys[v->count] = key; v->key_lens[v->count] = key_len; }
  v->items[v->count++] = item;
  return 1;
}

VECRON_FN vecron_json *vecron__value(vecron__parser *p) {
  vecron__ws(p);
  if (p->i >= p->n) { p->error = "unexpected end of input"; return NULL; }
  char c = p->s[p->i];
  if (c == '{' || c == '[') {
    if (++p->depth > VECRON_MAX_DEPTH) { p->error = "nested too deeply"; return NULL; }
    int obj = c == '{';
    vecron_json *v = vecron__new(obj ? VECRON_OBJECT : VECRON_ARRAY);
    size_t cap = 0;
    p->i++;
    vecron__ws(p);
    if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) { p->i++; p->depth--; return v; }
    for (;;) {
      char *key = NULL;
      size_t klen = 0;
      if (obj) {
        vecron__ws(p);
        if (p->i >= p->n || p->s[p->i] != '"') { p->error = "expected a member name"; return NULL; }
        if (!(key = vecron__string(p, &klen))) return NULL;
        vecron__ws(p);
        if (p->i >= p->n || p->s[p->i] != ':') { p->error = "expected ':'"; return NULL; }
        p->i++;
      }
      vecron_json *item = vecron__value(p);
      if (!item) return NULL;
      vecron__push(v, &cap, item, key, klen);
      vecron__ws(p);
      if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
      if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) { p->i++; p->depth--; return v; }
      p->error = obj ? "expected ',' or '}'" : "expected ',' or ']'";
      return NULL;
    }
  }
  if (c == '"') {
    vecron_json *v = vecron__new(VECRON_STRING);
    char *s = vecron__string(p, &v->string_len);
    if (!s) return NULL;
    v->string = s;
    return v;
  }
  if (p->n - p->i >= 4 && memcmp(p->s + p->i, "true", 4) == 0) { p->i += 4; vecron_json *v = vecron__new(VECRON_BOOL); v->boolean = 1; return v; }
  if (p->n - p->i >= 5 && memcmp(p->s + p->i, "false", 5) == 0) { p->i += 5; return vecron__new(VECRON_BOOL); }
  if (p->n - p->i >= 4 && memcmp(p->s + p->i, "null", 4) == 0) { p->i += 4; return vecron__new(VECRON_NULL); }
  /* a number, in JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
  size_t start = p->i;
  if (p->i < p->n && p->s[p->i] == '-') p->i++;
  size_t digits = p->i;
  if (p->i < p->n && p->s[p->i] == '0') p->i++;
  else while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
  if (p->i == digits) { p->error = "unexpected character"; return NULL; }
  if (p->i < p->n && p->s[p->i] == '.') {
    size_t f = ++p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (p->i == f) { p->error = "bad number"; return NULL; }
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    p->i++;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    size_t e = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (p->i == e) { p->error = "bad number"; return NULL; }
  }
  char tmp[64];
  size_t len = p->i - start;
  char *buf = len < sizeof tmp ? tmp : (char *)malloc(len + 1);
  memcpy(buf, p->s + start, len);
  buf[len] = 0;
  vecron_json *v = vecron__new(VECRON_NUMBER);
  v->number = strtod(buf, NULL);
  return v;
}

/* Parses JSON text; NULL on a syntax error (*error, if given, says what and where). */
VECRON_FN vecron_json *vecron_parse(const char *s, size_t n, const char **error) {
  vecron__parser p = {s, n, 0, NULL, 0};
  vecron_json *v = vecron__value(&p);
  if (v) {
    vecron__ws(&p);
    if (p.i != p.n) { p.error = "text after the value"; v = NULL; }
  }
  if (!v && error) {
    char *msg = (char *)malloc(96);
    snprintf(msg, 96, "%s at byte %zu", p.error ? p.error : "invalid JSON", p.i);
    *error = msg;
  }
  return v;
}

/* Member `key` of an object; NULL when v is not an object or has no such member. */
VECRON_FN const vecron_json *vecron_get(const vecron_json *v, const char *key) {
  if (!v || v->type != VECRON_OBJECT) return NULL;
  size_t kl = strlen(key);
  for (size_t i = 0; i < v->count; i++)
    if (v->key_lens[i] == kl && memcmp(v->keys[i], key, kl) == 0) return v->items[i];
  return NULL;
}

/* Element i of an array; NULL when out of range or not an array. */
VECRON_FN const vecron_json *vecron_at(const vecron_json *v, size_t i) {
  if (!v || v->type != VECRON_ARRAY || i >= v->count) return NULL;
  return v->items[i];
}

/* A dotted path: "order.items.0.sku" (array elements by index). NULL when anything is missing. */
VECRON_FN const vecron_json *vecron_path(const vecron_json *v, const char *path) {
  char part[256];
  while (v && *path) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (n >= sizeof part) return NULL;
    memcpy(part, path, n);
    part[n] = 0;
    if (v->type == VECRON_ARRAY) {
      char *end;
      unsigned long idx = strtoul(part, &end, 10);
      v = (n > 0 && *end == 0) ? vecron_at(v, idx) : NULL;
    } else v = vecron_get(v, part);
    path += n + (dot ? 1 : 0);
  }
  return v;
}

VECRON_FN int vecron_is(const vecron_json *v, vecron_type t) { return v && v->type == t; }
/* The string, or NULL when v is not a string. */
VECRON_FN const char *vecron_string(const vecron_json *v) { return vecron_is(v, VECRON_STRING) ? v->string : NULL; }
VECRON_FN double vecron_number(const vecron_json *v, double fallback) { return vecron_is(v, VECRON_NUMBER) ? v->number : fallback; }
VECRON_FN int vecron_bool(const vecron_json *v, int fallback) { return vecron_is(v, VECRON_BOOL) ? v->boolean : fallback; }
/* Elements of an array or members of an object; 0 for anything else. */
VECRON_FN size_t vecron_len(const vecron_json *v) { return v && (v->type == VECRON_ARRAY || v->type == VECRON_OBJECT) ? v->count : 0; }
/* A whole number within +-2^53 (what JSON numbers carry exactly). */
VECRON_FN int vecron_is_integer(const vecron_json *v) {
  return vecron_is(v, VECRON_NUMBER) && v->number == floor(v->number) && fabs(v->number) <= 9007199254740992.0;
}

/* ------------------------------------------------------------------ writing JSON */

typedef struct {
  char *data;
  size_t len, cap;
} vecron_writer;

VECRON_FN void vecron_w_raw_n(vecron_writer *w, const char *s, size_t n) {
  if (w->len + n + 1 > w->cap) {
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1) cap *= 2;
    w->data = (char *)realloc(w->data, cap);
    w->cap = cap;
  }
  memcpy(w->data + w->len, s, n);
  w->len += n;
  w->data[w->len] = 0;
}
VECRON_FN void vecron_w_raw(vecron_writer *w, const char *s) { vecron_w_raw_n(w, s, strlen(s)); }

/* A comma goes before a value unless it opens a container, follows a key, or is the first. */
VECRON_FN void vecron__sep(vecron_writer *w) {
  if (w->len == 0) return;
  char last = w->data[w->len - 1];
  if (last != '{' && last != '[' && last != ':') vecron_w_raw_n(w, ",", 1);
}

VECRON_FN void vecron__quoted(vecron_writer *w, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  vecron_w_raw_n(w, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    vecron_w_raw_n(w, s + run, i - run);
    run = i + 1;
    char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default: esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
    }
    vecron_w_raw(w, esc);
  }
  vecron_w_raw_n(w, s + run, n - run);
  vecron_w_raw_n(w, "\"", 1);
}

VECRON_FN void vecron_w_object(vecron_writer *w) { vecron__sep(w); vecron_w_raw_n(w, "{", 1); }
VECRON_FN void vecron_w_end_object(vecron_writer *w) { vecron_w_raw_n(w, "}", 1); }
VECRON_FN void vecron_w_array(vecron_writer *w) { vecron__sep(w); vecron_w_raw_n(w, "[", 1); }
VECRON_FN void vecron_w_end_array(vecron_writer *w) { vecron_w_raw_n(w, "]", 1); }
VECRON_FN void vecron_w_key(vecron_writer *w, const char *key) {
  vecron__sep(w);
  vecron__quoted(w, key, strlen(key));
  vecron_w_raw_n(w, ":", 1);
}
VECRON_FN void vecron_w_string_n(vecron_writer *w, const char *s, size_t n) { vecron__sep(w); vecron__quoted(w, s, n); }
/* A string; NULL writes null. */
VECRON_FN void vecron_w_string(vecron_writer *w, const char *s) {
  if (!s) { vecron__sep(w); vecron_w_raw_n(w, "null", 4); }
  else vecron_w_string_n(w, s, strlen(s));
}
VECRON_FN void vecron_w_null(vecron_writer *w) { vecron__sep(w); vecron_w_raw_n(w, "null", 4); }
VECRON_FN void vecron_w_bool(vecron_writer *w, int b) { vecron__sep(w); vecron_w_raw(w, b ? "true" : "false"); }
VECRON_FN void vecron_w_int(vecron_writer *w, long long v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%lld", v);
  vecron__sep(w);
  vecron_w_raw(w, buf);
}
/* A number, in its shortest form that reads back the same; NaN and infinities (not JSON) as null. */
VECRON_FN void vecron_w_number(vecron_writer *w, double v) {
  char buf[40];
  if (!isfinite(v)) snprintf(buf, sizeof buf, "null");
  else if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, sizeof buf, "%lld", (long long)v);
  else {
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (strtod(buf, NULL) == v) break;
    }
  }
  vecron__sep(w);
  vecron_w_raw(w, buf);
}
/* A parsed value, written back. */
VECRON_FN void vecron_w_json(vecron_writer *w, const vecron_json *v) {
  if (!v) { vecron_w_null(w); return; }
  switch (v->type) {
    case VECRON_NULL: vecron_w_null(w); break;
    case VECRON_BOOL: vecron_w_bool(w, v->boolean); break;
    case VECRON_NUMBER: vecron_w_number(w, v->number); break;
    case VECRON_STRING: vecron_w_string_n(w, v->string, v->string_len); break;
    case VECRON_ARRAY:
      vecron_w_array(w);
      for (size_t i = 0; i < v->count; i++) vecron_w_json(w, v->items[i]);
      vecron_w_end_array(w);
      break;
    case VECRON_OBJECT:
      vecron_w_object(w);
      for (size_t i = 0; i < v->count; i++) {
        vecron__sep(w);
        vecron__quoted(w, v->keys[i], v->key_lens[i]);
        vecron_w_raw_n(w, ":", 1);
        vecron_w_json(w, v->items[i]);
      }
      vecron_w_end_object(w);
      break;
  }
}
VECRON_FN void vecron_w_kv_string(vecron_writer *w, const char *k, const char *s) { vecron_w_key(w, k); vecron_w_string(w, s); }
VECRON_FN void vecron_w_kv_int(vecron_writer *w, const char *k, long long v) { vecron_w_key(w, k); vecron_w_int(w, v); }
VECRON_FN void vecron_w_kv_number(vecron_writer *w, const char *k, double v) { vecron_w_key(w, k); vecron_w_number(w, v); }
VECRON_FN void vecron_w_kv_bool(vecron_writer *w, const char *k, int v) { vecron_w_key(w, k); vecron_w_bool(w, v); }
VECRON_FN void vecron_w_kv_json(vecron_writer *w, const char *k, const vecron_json *v) { vecron_w_key(w, k); vecron_w_json(w, v); }

/* Inside the output object: routes the job to step `id` next (docs/jobs.md). */
VECRON_FN void vecron_route(vecron_writer *w, const char *id) { vecron_w_kv_string(w, "next_step", id); }

/* printf into a fresh string. */
VECRON_FN char *vecron_format(const char *fmt, ...) {
  va_list ap, aq;
  va_start(ap, fmt);
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = (char *)malloc(n > 0 ? (size_t)n + 1 : 1);
  vsnprintf(s, n > 0 ? (size_t)n + 1 : 1, fmt, aq);
  va_end(aq);
  return s;
}

/* ------------------------------------------------------------------ validation verdicts */

typedef struct {
  char **items;
  size_t count, cap;
} vecron_errors;

/* Adds one problem (printf format) to a verdict. */
VECRON_FN void vecron_errors_add(vecron_errors *e, const char *fmt, ...) {
  va_list ap, aq;
  va_start(ap, fmt);
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = (char *)malloc(n > 0 ? (size_t)n + 1 : 1);
  vsnprintf(s, n > 0 ? (size_t)n + 1 : 1, fmt, aq);
  va_end(aq);
  if (e->count == e->cap) {
    e->cap = e->cap ? e->cap * 2 : 8;
    e->items = (char **)realloc(e->items, e->cap * sizeof(char *));
  }
  e->items[e->count++] = s;
}

/* Writes the verdict {"valid": false, "errors": [...]}: the step fails with validation_failed. */
VECRON_FN void vecron_w_invalid(vecron_writer *w, const vecron_errors *e) {
  vecron_w_object(w);
  vecron_w_kv_bool(w, "valid", 0);
  vecron_w_key(w, "errors");
  vecron_w_array(w);
  for (size_t i = 0; i < e->count; i++) vecron_w_string(w, e->items[i]);
  vecron_w_end_array(w);
  vecron_w_end_object(w);
}

/* ------------------------------------------------------------------ logs and context */

enum { VECRON_DEBUG = 0, VECRON_INFO = 1, VECRON_WARN = 2, VECRON_ERROR = 3 };

VECRON_FN void vecron_log(int level, const char *fmt, ...) {
  char small[256];
  va_list ap, aq;
  va_start(ap, fmt);
  va_copy(aq, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) { va_end(aq); return; }
  if ((size_t)n < sizeof small) vecron__log(level, small, n);
  else {
    char *big = (char *)malloc((size_t)n + 1);
    vsnprintf(big, (size_t)n + 1, fmt, aq);
    vecron__log(level, big, n);
  }
  va_end(aq);
}
#define vecron_debug(...) vecron_log(VECRON_DEBUG, __VA_ARGS__)
#define vecron_info(...) vecron_log(VECRON_INFO, __VA_ARGS__)
#define vecron_warn(...) vecron_log(VECRON_WARN, __VA_ARGS__)
#define vecron_error(...) vecron_log(VECRON_ERROR, __VA_ARGS__)

VECRON_FN const char *vecron__unpack(int64_t r, size_t *len) {
  *len = (size_t)(uint32_t)r;
  return (const char *)(uintptr_t)(uint32_t)((uint64_t)r >> 32);
}

/* A value of the job context (docs/abi.md "What get_context reads"): "" is the whole context, a
 * bare key a variable or an earlier set_context, a dotted path a path. NULL when missing. */
VECRON_FN const vecron_json *vecron_get_context(const char *key) {
  int64_t r = vecron__get_context(key, (int32_t)strlen(key));
  if (r == 0) return NULL;
  size_t n;
  const char *s = vecron__unpack(r, &n);
  return vecron_parse(s, n, NULL);
}

/* Records JSON text under key for later steps: 0 ok, 1 key or value not JSON, 2 over the 4 MiB a run. */
VECRON_FN int vecron_set_context(const char *key, const char *json) {
  return vecron__set_context(key, (int32_t)strlen(key), json, (int32_t)strlen(json));
}
VECRON_FN int vecron_set_context_json(const char *key, const vecron_json *v) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_json(&w, v);
  return vecron_set_context(key, w.data);
}
VECRON_FN int vecron_set_context_string(const char *key, const char *s) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_string(&w, s);
  return vecron_set_context(key, w.data);
}
VECRON_FN int vecron_set_context_number(const char *key, double v) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_number(&w, v);
  return vecron_set_context(key, w.data);
}

/* ------------------------------------------------------------------ the entry */

typedef void (*vecron_handler)(const vecron_json *input, vecron_writer *out);

VECRON_FN int64_t vecron__pack(vecron_writer *w) {
  if (w->len == 0) vecron_w_raw(w, "null");
  return (int64_t)(((uint64_t)(uint32_t)(uintptr_t)w->data << 32) | (uint64_t)(uint32_t)w->len);
}

/* Runs a handler on the input bytes and returns the packed output (what VECRON_ENTRY exports). */
VECRON_FN int64_t vecron_run(const char *ptr, int32_t len, vecron_handler handler) {
  vecron_writer out = VECRON_ZERO;
  const char *err = NULL;
  vecron_json *input = vecron_parse(ptr, (size_t)len, &err);
  if (!input) {
    vecron_errors e = VECRON_ZERO;
    vecron_errors_add(&e, "the input is not JSON: %s", err);
    vecron_w_invalid(&out, &e);
  } else handler(input, &out);
  return vecron__pack(&out);
}

/* Exports `name(ptr, len) -> i64` (form A) running handler(input, out). */
#define VECRON_ENTRY(name, handler)                                                          \
  VECRON_EXTERN_C __attribute__((export_name(#name))) int64_t vecron_entry_##name(int32_t ptr, int32_t len) { \
    return vecron_run((const char *)(uintptr_t)ptr, len, handler);                          \
  }

/* ------------------------------------------------------------------ host functions (issue 15) */

/* A refused or failed host call: code is one of permission_denied, egress_denied, timeout,
 * too_large, bad_request, not_found, upstream_error, unavailable, cancelled. */
typedef struct {
  char code[32];
  char message[512];
} vecron_error;

VECRON_FN void vecron__set_error(vecron_error *err, const char *code, const char *message) {
  if (!err) return;
  snprintf(err->code, sizeof err->code, "%s", code ? code : "bad_response");
  snprintf(err->message, sizeof err->message, "%s", message ? message : "");
}

/* Parses a host answer: the result, or NULL with *err filled from {"error": {code, message}}. */
VECRON_FN const vecron_json *vecron__answer(int64_t r, vecron_error *err) {
  size_t n;
  const char *s = vecron__unpack(r, &n);
  const char *perr = NULL;
  const vecron_json *v = r == 0 ? NULL : vecron_parse(s, n, &perr);
  if (!v) { vecron__set_error(err, "bad_response", perr ? perr : "empty answer from the host"); return NULL; }
  const vecron_json *e = vecron_get(v, "error");
  if (vecron_is(e, VECRON_OBJECT)) {
    vecron__set_error(err, vecron_string(vecron_get(e, "code")), vecron_string(vecron_get(e, "message")));
    return NULL;
  }
  if (err) err->code[0] = err->message[0] = 0;
  return v;
}

/* The raw calls: a request as JSON text, the result object or NULL (and *err). */
VECRON_FN const vecron_json *vecron_http_request(const char *req, vecron_error *err) { return vecron__answer(vecron__http_request(req, (int32_t)strlen(req)), err); }
VECRON_FN const vecron_json *vecron_db_query_json(const char *req, vecron_error *err) { return vecron__answer(vecron__db_query(req, (int32_t)strlen(req)), err); }
VECRON_FN const vecron_json *vecron_file_read_json(const char *req, vecron_error *err) { return vecron__answer(vecron__file_read(req, (int32_t)strlen(req)), err); }
VECRON_FN const vecron_json *vecron_file_write_json(const char *req, vecron_error *err) { return vecron__answer(vecron__file_write(req, (int32_t)strlen(req)), err); }
VECRON_FN const vecron_json *vecron_file_list_json(const char *req, vecron_error *err) { return vecron__answer(vecron__file_list(req, (int32_t)strlen(req)), err); }
VECRON_FN const vecron_json *vecron_crypto(const char *req, vecron_error *err) { return vecron__answer(vecron__crypto(req, (int32_t)strlen(req)), err); }
VECRON_FN const vecron_json *vecron_time(const char *req, vecron_error *err) { return vecron__answer(vecron__time(req, (int32_t)strlen(req)), err); }

/* http_request, typed. */
typedef struct {
  int status;
  const vecron_json *headers; /* an object of strings */
  const char *body;           /* UTF-8 text, or base64 when body_base64 is set */
  size_t body_len;
  int body_base64;
} vecron_http_response;

/* An HTTP call (permission http:read for GET/HEAD/OPTIONS, else http:write). body may be NULL;
 * headers_json is an object as JSON text or NULL. 0 on an answer (any status), -1 on an error. */
VECRON_FN int vecron_http(const char *method, const char *url, const char *headers_json, const char *body,
                          vecron_http_response *resp, vecron_error *err) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_object(&w);
  vecron_w_kv_string(&w, "method", method);
  vecron_w_kv_string(&w, "url", url);
  vecron_w_key(&w, "headers");
  vecron_w_raw(&w, headers_json ? headers_json : "{}");
  vecron_w_kv_string(&w, "body", body);
  vecron_w_end_object(&w);
  const vecron_json *r = vecron_http_request(w.data, err);
  if (!r) return -1;
  const vecron_json *b64 = vecron_get(r, "body_base64");
  const vecron_json *b = vecron_is(b64, VECRON_STRING) ? b64 : vecron_get(r, "body");
  resp->status = (int)vecron_number(vecron_get(r, "status"), 0);
  resp->headers = vecron_get(r, "headers");
  resp->body = vecron_is(b, VECRON_STRING) ? b->string : "";
  resp->body_len = vecron_is(b, VECRON_STRING) ? b->string_len : 0;
  resp->body_base64 = vecron_is(b64, VECRON_STRING);
  return 0;
}

/* db_query, typed: columns (array of {"name", "type"}), rows (array of objects by column name),
 * row_count, affected_rows (-1 when the statement reports none). */
typedef struct {
  const vecron_json *columns;
  const vecron_json *rows;
  long row_count;
  long affected_rows;
} vecron_db_result;

/* The name of column i, or NULL. */
VECRON_FN const char *vecron_db_column(const vecron_db_result *r, size_t i) { return vecron_string(vecron_get(vecron_at(r->columns, i), "name")); }
/* A cell by row and column name, or NULL. */
VECRON_FN const vecron_json *vecron_db_cell(const vecron_db_result *r, size_t row, const char *column) { return vecron_get(vecron_at(r->rows, row), column); }

/* One statement with $1.. parameters (params_json: a JSON array as text, or NULL). */
VECRON_FN int vecron_db_query(const char *datasource, const char *sql, const char *params_json, vecron_db_result *res, vecron_error *err) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_object(&w);
  vecron_w_kv_string(&w, "datasource", datasource);
  vecron_w_kv_string(&w, "sql", sql);
  vecron_w_key(&w, "params");
  vecron_w_raw(&w, params_json ? params_json : "[]");
  vecron_w_end_object(&w);
  const vecron_json *r = vecron_db_query_json(w.data, err);
  if (!r) return -1;
  res->columns = vecron_get(r, "columns");
  res->rows = vecron_get(r, "rows");
  res->row_count = (long)vecron_number(vecron_get(r, "row_count"), (double)vecron_len(res->rows));
  res->affected_rows = (long)vecron_number(vecron_get(r, "affected_rows"), -1);
  return 0;
}

/* file_read: the content (text, or base64 when *is_base64) of a file of the job's area. */
VECRON_FN int vecron_file_read(const char *path, const char **content, size_t *len, int *is_base64, vecron_error *err) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_object(&w);
  vecron_w_kv_string(&w, "path", path);
  vecron_w_end_object(&w);
  const vecron_json *r = vecron_file_read_json(w.data, err);
  if (!r) return -1;
  const vecron_json *c = vecron_get(r, "content");
  *content = vecron_is(c, VECRON_STRING) ? c->string : "";
  if (len) *len = vecron_is(c, VECRON_STRING) ? c->string_len : 0;
  if (is_base64) { const char *e = vecron_string(vecron_get(r, "encoding")); *is_base64 = e && strcmp(e, "base64") == 0; }
  return 0;
}

/* file_write of UTF-8 text; *size and sha256_hex (65 bytes) may be NULL. */
VECRON_FN int vecron_file_write(const char *path, const char *content, size_t len, long *size, char *sha256_hex, vecron_error *err) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_object(&w);
  vecron_w_kv_string(&w, "path", path);
  vecron_w_key(&w, "content");
  vecron_w_string_n(&w, content, len);
  vecron_w_kv_string(&w, "encoding", "utf8");
  vecron_w_end_object(&w);
  const vecron_json *r = vecron_file_write_json(w.data, err);
  if (!r) return -1;
  if (size) *size = (long)vecron_number(vecron_get(r, "size"), 0);
  if (sha256_hex) snprintf(sha256_hex, 65, "%s", vecron_string(vecron_get(r, "sha256")) ? vecron_string(vecron_get(r, "sha256")) : "");
  return 0;
}

/* file_list: *files is an array of {"path", "size", "modified_at"}. */
VECRON_FN int vecron_file_list(const char *prefix, const vecron_json **files, vecron_error *err) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_object(&w);
  vecron_w_kv_string(&w, "prefix", prefix);
  vecron_w_end_object(&w);
  const vecron_json *r = vecron_file_list_json(w.data, err);
  if (!r) return -1;
  *files = vecron_get(r, "files");
  return 0;
}

/* crypto sha256 / sha512 of bytes: hex digest into hex (129 bytes is enough for both). */
VECRON_FN int vecron__digest(const char *op, const char *key_secret, const char *data, size_t len, char *hex, size_t cap, vecron_error *err) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_object(&w);
  vecron_w_kv_string(&w, "op", op);
  if (key_secret) vecron_w_kv_string(&w, "key_secret", key_secret);
  vecron_w_key(&w, "data");
  vecron_w_string_n(&w, data, len);
  vecron_w_end_object(&w);
  const vecron_json *r = vecron_crypto(w.data, err);
  if (!r) return -1;
  const char *h = vecron_string(vecron_get(r, "hex"));
  snprintf(hex, cap, "%s", h ? h : "");
  return 0;
}
VECRON_FN int vecron_sha256(const char *data, size_t len, char hex[65], vecron_error *err) { return vecron__digest("sha256", NULL, data, len, hex, 65, err); }
VECRON_FN int vecron_sha512(const char *data, size_t len, char hex[129], vecron_error *err) { return vecron__digest("sha512", NULL, data, len, hex, 129, err); }
/* HMAC-SHA256 with the key held in secret variable key_secret (needs secret:use). */
VECRON_FN int vecron_hmac_sha256(const char *key_secret, const char *data, size_t len, char hex[65], vecron_error *err) {
  return vecron__digest("hmac_sha256", key_secret, data, len, hex, 65, err);
}
/* crypto uuid: a random UUID (37 bytes with the NUL). */
VECRON_FN int vecron_uuid(char out[37], vecron_error *err) {
  const vecron_json *r = vecron_crypto("{\"op\":\"uuid\"}", err);
  if (!r) return -1;
  const char *u = vecron_string(vecron_get(r, "uuid"));
  snprintf(out, 37, "%s", u ? u : "");
  return 0;
}
/* crypto random_bytes: n random bytes, base64. */
VECRON_FN const char *vecron_random_base64(int n, vecron_error *err) {
  char req[64];
  snprintf(req, sizeof req, "{\"op\":\"random_bytes\",\"n\":%d}", n);
  return vecron_string(vecron_get(vecron_crypto(req, err), "base64"));
}
/* time now: epoch milliseconds and the ISO text (UTC, Z); the answer's "local" (in tz, NULL:
 * Asia/Ho_Chi_Minh) is in vecron_time's result. */
VECRON_FN int vecron_time_now(const char *tz, int64_t *epoch_ms, const char **iso, vecron_error *err) {
  vecron_writer w = VECRON_ZERO;
  vecron_w_object(&w);
  vecron_w_kv_string(&w, "op", "now");
  if (tz) vecron_w_kv_string(&w, "tz", tz);
  vecron_w_end_object(&w);
  const vecron_json *r = vecron_time(w.data, err);
  if (!r) return -1;
  if (epoch_ms) *epoch_ms = (int64_t)vecron_number(vecron_get(r, "epoch_ms"), 0);
  if (iso) *iso = vecron_string(vecron_get(r, "iso"));
  return 0;
}

#ifdef __cplusplus
}
#endif
#endif /* VECRON_H */
