/*
 * vecron's JavaScript engine: QuickJS (quickjs-ng) compiled to WASI, running an author's JS as a
 * vecron guest module (docs/abi.md, docs/sdk/js.md).
 *
 * One module = this engine + QuickJS + the author's modules as bytecode (a C file that build.mjs
 * generates per project: vecron_js_modules[], the entry exports, the host-function table).
 *
 * - _initialize (wasi-libc reactor constructor, the runtime's init fuel budget): creates the
 *   runtime and context, runs the prelude (the `vecron` global), reads every module's bytecode
 *   (which registers it under its path, so `import './util.js'` resolves without a loader) and
 *   resolves the main module's imports. Nothing of the author's code runs yet.
 * - alloc(size): malloc(size + 1), NUL-terminated (JS_ParseJSON reads a terminated buffer).
 * - an entry (form A, (ptr, len) -> i64): parses the input, evaluates the main module (top-level
 *   code may call vecron.input()), calls the export named like the entry (or the default export),
 *   awaits it when it is a promise, and returns the JSON of its result (or of vecron.output()).
 * - an uncaught JS error: its name, message and stack go to stderr and to the run's log (level
 *   error), then proc_exit(1): the step fails with the message in its error's stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "quickjs.h"
#include "engine.h"

/* ---------------------------------------------------------------- host imports (always there) */

__attribute__((import_module("vecron"), import_name("log"))) extern void vecron_import_log(int32_t level, const char *ptr, int32_t len);
__attribute__((import_module("vecron"), import_name("get_context"))) extern int64_t vecron_import_get_context(const char *key, int32_t key_len);
__attribute__((import_module("vecron"), import_name("set_context"))) extern int32_t vecron_import_set_context(const char *key, int32_t key_len, const char *val,
                                                                                                              int32_t val_len);

/* The prelude's bytecode (prelude.js, compiled when the engine is built). */
extern const uint8_t vecron_js_prelude[];
extern const uint32_t vecron_js_prelude_size;

static JSRuntime *rt;
static JSContext *ctx;
/* The main module as read from bytecode (a JS_TAG_MODULE value), until it is evaluated. */
static JSValue main_module;
/* The prelude's internals: vecron.__engine = { setInput, finish }. */
static JSValue engine_obj;
/* Set when _initialize failed: the message the first call reports. */
static char *init_error;

/* ---------------------------------------------------------------- exports: alloc */

__attribute__((export_name("alloc"))) int32_t vecron_alloc(int32_t size) {
  if (size < 0) return 0;
  char *p = malloc((size_t)size + 1);
  if (!p) return 0;
  p[size] = 0;
  return (int32_t)(uintptr_t)p;
}

/* ---------------------------------------------------------------- errors */

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

/* Reports a failure of the run (stderr + error log line) and ends it with proc_exit(1). When QuickJS
   ran out of memory (malloc failed: the memory reached the step's limit) it traps instead, so the
   runtime reports memory_limit rather than a script error. */
static _Noreturn void fail_text(const char *text, size_t len) {
  write_all(2, text, len);
  write_all(2, "\n", 1);
  vecron_import_log(3, text, (int32_t)len);
  if (strstr(text, "InternalError: out of memory") != NULL) __builtin_trap();
  _Exit(1);
}

static _Noreturn void fail(const char *text) { fail_text(text, strlen(text)); }

/* Ends the run with the pending JS exception: "Name: message\n    at f (src/index.js:3:9)". */
static _Noreturn void fail_exception(void) {
  JSValue exc = JS_GetException(ctx);
  JSValue fmt = JS_UNDEFINED;
  if (!JS_IsUndefined(engine_obj)) {
    JSValue f = JS_GetPropertyStr(ctx, engine_obj, "describeError");
    if (JS_IsFunction(ctx, f)) fmt = JS_Call(ctx, f, JS_UNDEFINED, 1, (JSValueConst *)&exc);
    JS_FreeValue(ctx, f);
  }
  size_t len = 0;
  const char *s = JS_IsString(fmt) ? JS_ToCStringLen(ctx, &len, fmt) : NULL;
  if (!s) {
    JS_FreeValue(ctx, JS_GetException(ctx));
    s = JS_ToCStringLen(ctx, &len, exc);
  }
  if (!s) fail("Uncaught exception (its message could not be read)");
  /* "Uncaught " is what a JS developer reads in every engine. */
  size_t total = len + 9;
  char *msg = malloc(total + 1);
  if (!msg) fail_text(s, len);
  memcpy(msg, "Uncaught ", 9);
  memcpy(msg + 9, s, len);
  msg[total] = 0;
  fail_text(msg, total);
}

/* ---------------------------------------------------------------- native functions for the prelude */

static JSValue native_log(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  int32_t level = 1;
  if (argc > 0 && JS_ToInt32(c, &level, argv[0])) return JS_EXCEPTION;
  if (level < 0 || level > 3) level = 1;
  size_t len;
  const char *s = JS_ToCStringLen(c, &len, argc > 1 ? argv[1] : JS_UNDEFINED);
  if (!s) return JS_EXCEPTION;
  vecron_import_log(level, s, (int32_t)len);
  JS_FreeCString(c, s);
  return JS_UNDEFINED;
}

/* Turns a packed (ptr << 32 | len) answer written through alloc into a JS string (null for 0). */
static JSValue take_answer(JSContext *c, int64_t packed) {
  if (packed == 0) return JS_NULL;
  uint32_t ptr = (uint32_t)((uint64_t)packed >> 32);
  uint32_t len = (uint32_t)((uint64_t)packed & 0xffffffffu);
  JSValue s = JS_NewStringLen(c, (const char *)(uintptr_t)ptr, len);
  free((void *)(uintptr_t)ptr);
  return s;
}

static JSValue native_get_context(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  size_t len;
  const char *key = JS_ToCStringLen(c, &len, argc > 0 ? argv[0] : JS_UNDEFINED);
  if (!key) return JS_EXCEPTION;
  int64_t packed = vecron_import_get_context(key, (int32_t)len);
  JS_FreeCString(c, key);
  return take_answer(c, packed);
}

static JSValue native_set_context(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  size_t klen, vlen;
  const char *key = JS_ToCStringLen(c, &klen, argc > 0 ? argv[0] : JS_UNDEFINED);
  if (!key) return JS_EXCEPTION;
  const char *val = JS_ToCStringLen(c, &vlen, argc > 1 ? argv[1] : JS_UNDEFINED);
  if (!val) {
    JS_FreeCString(c, key);
    return JS_EXCEPTION;
  }
  int32_t r = vecron_import_set_context(key, (int32_t)klen, val, (int32_t)vlen);
  JS_FreeCString(c, key);
  JS_FreeCString(c, val);
  return JS_NewInt32(c, r);
}

/* host(index, requestJson): the answer's JSON text, or null when that function is not linked in. */
static JSValue native_host(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  int32_t index;
  if (argc < 2 || JS_ToInt32(c, &index, argv[0])) return JS_ThrowTypeError(c, "host(index, request)");
  if (index < 0 || index >= VECRON_HOST_FUNCTION_COUNT || vecron_js_host_functions[index] == NULL) return JS_NULL;
  size_t len;
  const char *req = JS_ToCStringLen(c, &len, argv[1]);
  if (!req) return JS_EXCEPTION;
  int64_t packed = vecron_js_host_functions[index](req, (int32_t)len);
  JS_FreeCString(c, req);
  return take_answer(c, packed);
}

/* random(): a double in [0, 1) from WASI random_get, read at run time (Math.random's own state
   would be the same in every run of a pre-initialised module). */
static JSValue native_random(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  uint64_t r = 0;
  if (getentropy(&r, sizeof r) != 0) return JS_ThrowInternalError(c, "random_get failed");
  return JS_NewFloat64(c, (double)(r >> 11) * (1.0 / 9007199254740992.0));
}

static const JSCFunctionListEntry native_functions[] = {
    JS_CFUNC_DEF("random", 0, native_random),
    JS_CFUNC_DEF("log", 2, native_log),
    JS_CFUNC_DEF("getContext", 1, native_get_context),
    JS_CFUNC_DEF("setContext", 2, native_set_context),
    JS_CFUNC_DEF("host", 2, native_host),
};

/* ---------------------------------------------------------------- initialisation */

static void run_jobs(void) {
  JSContext *c1;
  for (;;) {
    int r = JS_ExecutePendingJob(rt, &c1);
    if (r <= 0) {
      if (r < 0) fail_exception();
      return;
    }
  }
}

/* Runs the pending jobs until the promise settles; returns its value (or fails the run). */
static JSValue await_value(JSValue v) {
  if (!JS_IsPromise(v)) return v;
  for (;;) {
    JSPromiseStateEnum st = JS_PromiseState(ctx, v);
    if (st == JS_PROMISE_FULFILLED) {
      JSValue r = JS_PromiseResult(ctx, v);
      JS_FreeValue(ctx, v);
      return r;
    }
    if (st == JS_PROMISE_REJECTED) {
      JS_Throw(ctx, JS_PromiseResult(ctx, v));
      JS_FreeValue(ctx, v);
      fail_exception();
    }
    JSContext *c1;
    int r = JS_ExecutePendingJob(rt, &c1);
    if (r < 0) fail_exception();
    if (r == 0) {
      /* Nothing left to run and still pending: a promise nothing will ever resolve (there is no
         event loop: no timers, no I/O; host calls are synchronous). */
      fail("Error: the entry's promise never settles: an await waits for something that cannot happen here (no timers or async I/O in a vecron module; host calls are synchronous)");
    }
  }
}

static void init_failed(const char *what) {
  /* Keep the message for the first call: failing inside _initialize would only say "proc_exit". */
  JSValue exc = ctx ? JS_GetException(ctx) : JS_UNDEFINED;
  const char *s = ctx ? JS_ToCString(ctx, exc) : NULL;
  size_t n = strlen(what) + (s ? strlen(s) : 0) + 3;
  init_error = malloc(n);
  if (init_error) snprintf(init_error, n, "%s%s%s", what, s ? ": " : "", s ? s : "");
  if (s) JS_FreeCString(ctx, s);
}

__attribute__((constructor)) static void vecron_js_init(void) {
  main_module = JS_UNDEFINED;
  engine_obj = JS_UNDEFINED;
  rt = JS_NewRuntime();
  if (!rt) {
    init_failed("out of memory creating the JS runtime");
    return;
  }
  /* No JS_SetMaxStackSize: quickjs-ng does not check its stack depth on WASI. Deep recursion ends
     the run with stack_overflow when V8's stack for the worker runs out; the shadow stack (1 MiB,
     linked first in memory) traps on overflow rather than running into the data. */
  ctx = JS_NewContext(rt);
  if (!ctx) {
    init_failed("out of memory creating the JS context");
    return;
  }
  JSValue global = JS_GetGlobalObject(ctx);
  JSValue native = JS_NewObject(ctx);
  JS_SetPropertyFunctionList(ctx, native, native_functions, sizeof(native_functions) / sizeof(native_functions[0]));
  JS_SetPropertyStr(ctx, global, "__vecron_native", native);

  JSValue prelude = JS_ReadObject(ctx, vecron_js_prelude, vecron_js_prelude_size, JS_READ_OBJ_BYTECODE);
  if (JS_IsException(prelude)) {
    init_failed("the prelude's bytecode could not be read");
    JS_FreeValue(ctx, global);
    return;
  }
  JSValue r = JS_EvalFunction(ctx, prelude);
  if (JS_IsException(r)) {
    init_failed("the prelude failed");
    JS_FreeValue(ctx, global);
    return;
  }
  JS_FreeValue(ctx, r);
  JSValue vecron = JS_GetPropertyStr(ctx, global, "vecron");
  engine_obj = JS_GetPropertyStr(ctx, vecron, "__engine");
  JS_FreeValue(ctx, vecron);
  JS_FreeValue(ctx, global);
  if (!JS_IsObject(engine_obj)) {
    init_failed("the prelude did not define vecron.__engine");
    return;
  }

  /* Every module is read first (reading registers it under its name), the main one last. */
  for (uint32_t i = 0; i < vecron_js_module_count; i++) {
    const vecron_js_module *m = &vecron_js_modules[i];
    JSValue obj = JS_ReadObject(ctx, m->bytecode, m->size, JS_READ_OBJ_BYTECODE);
    if (JS_IsException(obj)) {
      init_failed("a module's bytecode could not be read (rebuild the module)");
      return;
    }
    if (i == vecron_js_main_module) main_module = obj;
    else JS_FreeValue(ctx, obj);
  }
  if (JS_ResolveModule(ctx, main_module) < 0) {
    init_failed("the main module's imports could not be resolved");
    return;
  }
}

/* The message of a failed initialisation (0 when it worked): build.mjs reads it when it
   pre-initialises the module (lib/snapshot.mjs), and removes this export. */
__attribute__((export_name("vecron_js_init_error"))) const char *vecron_init_error(void) { return init_error; }

/* ---------------------------------------------------------------- the entry */

static JSValue engine_call(const char *name, int argc, JSValueConst *argv) {
  JSValue f = JS_GetPropertyStr(ctx, engine_obj, name);
  JSValue r = JS_Call(ctx, f, JS_UNDEFINED, argc, argv);
  JS_FreeValue(ctx, f);
  return r;
}

int64_t vecron_js_run(const char *entry, int32_t ptr, int32_t len) {
  if (init_error) fail(init_error);
  if (JS_IsUndefined(main_module)) fail("Error: the module was already run in this instance");
  const char *buf = (const char *)(uintptr_t)ptr;
  JSValue input = JS_ParseJSON(ctx, buf, (size_t)len, "<input>");
  if (JS_IsException(input)) fail_exception();
  free((void *)buf);
  JSValue r = engine_call("setInput", 1, (JSValueConst *)&input);
  JS_FreeValue(ctx, input);
  if (JS_IsException(r)) fail_exception();
  JS_FreeValue(ctx, r);

  /* Top-level code of the main module (and of what it imports). */
  JSModuleDef *m = JS_VALUE_GET_PTR(main_module);
  JSValue ev = JS_EvalFunction(ctx, main_module);
  main_module = JS_UNDEFINED;
  if (JS_IsException(ev)) fail_exception();
  JS_FreeValue(ctx, await_value(ev));
  run_jobs();

  JSValue args[2];
  args[0] = JS_GetModuleNamespace(ctx, m);
  if (JS_IsException(args[0])) fail_exception();
  args[1] = JS_NewString(ctx, entry);
  JSValue result = engine_call("callEntry", 2, args);
  JS_FreeValue(ctx, args[0]);
  JS_FreeValue(ctx, args[1]);
  if (JS_IsException(result)) fail_exception();
  result = await_value(result);
  run_jobs();

  /* The prelude turns the result (or vecron.output()) into JSON text, or throws saying why not. */
  JSValue text = engine_call("outputJson", 1, (JSValueConst *)&result);
  JS_FreeValue(ctx, result);
  if (JS_IsException(text)) fail_exception();
  size_t n;
  const char *s = JS_ToCStringLen(ctx, &n, text);
  if (!s) fail_exception();
  char *out = malloc(n ? n : 1);
  if (!out) fail("InternalError: out of memory for the output");
  memcpy(out, s, n);
  JS_FreeCString(ctx, s);
  JS_FreeValue(ctx, text);
  return ((int64_t)(uint32_t)(uintptr_t)out << 32) | (int64_t)(uint32_t)n;
}
