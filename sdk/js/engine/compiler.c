/*
 * Compiles JavaScript to QuickJS bytecode for the engine, at build time (build.mjs runs it under
 * Node's WASI): the same QuickJS build as the engine, so the bytecode always matches it.
 *
 *   compiler module src/index.js > modules   the project is preopened as /project: compiles the
 *                                             main module and every module it imports (relative
 *                                             paths, resolved like a browser does), dependencies
 *                                             first, main last; each as u32 name length, name,
 *                                             u32 bytecode length, bytecode (little-endian)
 *   compiler script NAME < source > bytecode a classic script (the prelude)
 *
 * A syntax error or a missing import: the message (with file and line) on stderr, exit code 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quickjs.h"

static char *read_stdin(size_t *plen) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (!buf) return NULL;
    ssize_t n = read(0, buf + len, cap - len);
    if (n < 0) return NULL;
    if (n == 0) break;
    len += (size_t)n;
    if (len == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
  }
  buf[len] = 0;
  *plen = len;
  return buf;
}

static void put_u32(uint32_t v) {
  uint8_t b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
  fwrite(b, 1, 4, stdout);
}

static int write_module(JSContext *ctx, const char *name, JSValueConst obj) {
  size_t size;
  uint8_t *bc = JS_WriteObject(ctx, &size, obj, JS_WRITE_OBJ_BYTECODE);
  if (!bc) return -1;
  put_u32((uint32_t)strlen(name));
  fwrite(name, 1, strlen(name), stdout);
  put_u32((uint32_t)size);
  fwrite(bc, 1, size, stdout);
  js_free(ctx, bc);
  return 0;
}

static char *read_file(const char *path, size_t *plen) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (len < cap) break;
    cap *= 2;
    buf = realloc(buf, cap + 1);
  }
  fclose(f);
  if (!buf) return NULL;
  buf[len] = 0;
  *plen = len;
  return buf;
}

/* Loads an imported module from the project, compiles it and writes it out (before its importer). */
static JSModuleDef *loader(JSContext *ctx, const char *name, void *opaque) {
  char path[4096];
  snprintf(path, sizeof path, "/project/%s", name);
  size_t len;
  char *src = read_file(path, &len);
  if (!src) {
    JS_ThrowReferenceError(ctx,
                           "cannot import '%s': no such file in the project (a vecron module imports its own files by "
                           "relative path, ./x.js; bundle npm packages into one file first, e.g. esbuild --bundle --format=esm)",
                           name);
    return NULL;
  }
  JSValue obj = JS_Eval(ctx, src, len, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
  free(src);
  if (JS_IsException(obj)) return NULL;
  if (write_module(ctx, name, obj) < 0) return NULL;
  JSModuleDef *m = JS_VALUE_GET_PTR(obj);
  JS_FreeValue(ctx, obj);
  return m;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "module") != 0 && strcmp(argv[1], "script") != 0)) {
    fprintf(stderr, "usage: compiler module|script NAME < source > bytecode\n");
    return 2;
  }
  int module = argv[1][0] == 'm';
  size_t len;
  char *src;
  if (module) {
    char path[4096];
    snprintf(path, sizeof path, "/project/%s", argv[2]);
    src = read_file(path, &len);
  } else {
    src = read_stdin(&len);
  }
  if (!src) {
    fprintf(stderr, "cannot read %s\n", argv[2]);
    return 2;
  }
  JSRuntime *rt = JS_NewRuntime();
  JSContext *ctx = JS_NewContext(rt);
  JS_SetModuleLoaderFunc(rt, NULL, loader, NULL);
  JSValue obj = JS_Eval(ctx, src, len, argv[2], JS_EVAL_FLAG_COMPILE_ONLY | (module ? JS_EVAL_TYPE_MODULE : JS_EVAL_TYPE_GLOBAL));
  if (JS_IsException(obj)) {
    JSValue exc = JS_GetException(ctx);
    const char *msg = JS_ToCString(ctx, exc);
    JSValue stack = JS_GetPropertyStr(ctx, exc, "stack");
    const char *where = JS_IsString(stack) ? JS_ToCString(ctx, stack) : NULL;
    fprintf(stderr, "%s\n%s", msg ? msg : "SyntaxError", where ? where : "");
    return 1;
  }
  if (module) {
    if (write_module(ctx, argv[2], obj) < 0) {
      fprintf(stderr, "cannot write the bytecode\n");
      return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
  }
  size_t size;
  uint8_t *bc = JS_WriteObject(ctx, &size, obj, JS_WRITE_OBJ_BYTECODE);
  if (!bc) {
    fprintf(stderr, "cannot write the bytecode\n");
    return 1;
  }
  size_t off = 0;
  while (off < size) {
    ssize_t n = write(1, bc + off, size - off);
    if (n <= 0) return 1;
    off += (size_t)n;
  }
  return 0;
}
