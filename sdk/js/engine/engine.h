/*
 * What the engine (engine.c) needs from the per-project C file that build.mjs generates:
 * the author's modules as QuickJS bytecode, which one is the main module, and which privileged
 * host functions are linked in (only those the source names: a module imports no more than it uses).
 */
#ifndef VECRON_JS_ENGINE_H
#define VECRON_JS_ENGINE_H
#include <stdint.h>


typedef struct vecron_js_module {
  const char *name; /* the module's path in the project, e.g. "src/index.js" */
  const uint8_t *bytecode;
  uint32_t size;
} vecron_js_module;

extern const vecron_js_module vecron_js_modules[];
extern const uint32_t vecron_js_module_count;
extern const uint32_t vecron_js_main_module;

/* In the order of PRIVILEGED_HOST_FUNCTIONS (src/wasm/host/types.ts): http_request, db_query,
   file_read, file_write, file_list, crypto, time. NULL = not linked in. */
#define VECRON_HOST_FUNCTION_COUNT 7
typedef int64_t (*vecron_host_function)(const char *req, int32_t req_len);
extern const vecron_host_function vecron_js_host_functions[VECRON_HOST_FUNCTION_COUNT];

/* Runs the module for one call of the entry `entry`; returns (out_ptr << 32) | out_len. */
int64_t vecron_js_run(const char *entry, int32_t ptr, int32_t len);

#endif
