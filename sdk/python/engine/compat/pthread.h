/* Debian's wasi-libc (2022) has no pthread.h; CPython's WASI build uses its own stubs (pyconfig.h:
   HAVE_PTHREAD_STUBS), so Python.h gets those types from here. */
#include "cpython/pthread_stubs.h"
