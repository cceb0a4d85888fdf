/*
 * What the engine (engine.c) needs from the per-project C file that build.mjs generates: which
 * privileged host functions are linked in (only those the sources name: a module imports no more
 * than it uses). The entry exports of that file call vecron_py_run.
 */
#ifndef VECRON_PY_ENGINE_H
#define VECRON_PY_ENGINE_H
#include <stdint.h>

/* In the order of PRIVILEGED_HOST_FUNCTIONS (src/wasm/host/types.ts): http_request, db_query,
   file_read, file_write, file_list, crypto, time. NULL = not linked in. */
#define VECRON_HOST_FUNCTION_COUNT 7
typedef int64_t (*vecron_host_function)(const char *req, int32_t req_len);
extern const vecron_host_function vecron_py_host_functions[VECRON_HOST_FUNCTION_COUNT];

/* Runs the module for one call of the entry `entry`; returns (out_ptr << 32) | out_len. */
int64_t vecron_py_run(const char *entry, int32_t ptr, int32_t len);

#endif
