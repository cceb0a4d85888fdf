/* A CPython 3.11 WASI command for vecron (form C): the frozen stdlib of frozen.c (freeze.py), no file system. Proof of concept, docs/sdk/python.md. */
struct _frozen;
extern const struct _frozen *PyImport_FrozenModules;
extern const struct _frozen *const vecron_frozen_ptr;
extern const char vecron_app[];
extern int Py_FrozenFlag, Py_NoSiteFlag, Py_IgnoreEnvironmentFlag, Py_NoUserSiteDirectory;
extern void Py_Initialize(void);
extern int PyRun_SimpleString(const char *);
void *dlopen(const char *f, int m) { return 0; }
void *dlsym(void *h, const char *s) { return 0; }
char *dlerror(void) { return "dynamic loading is not supported"; }
int main(void) {
  PyImport_FrozenModules = vecron_frozen_ptr;
  Py_FrozenFlag = 1; Py_NoSiteFlag = 1; Py_IgnoreEnvironmentFlag = 1; Py_NoUserSiteDirectory = 1;
  Py_Initialize();
  int r = PyRun_SimpleString(vecron_app);
  PyRun_SimpleString("import sys; sys.stdout.flush()");
  return r == 0 ? 0 : 1;
}
