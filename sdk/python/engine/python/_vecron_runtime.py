# The engine's Python half (docs/sdk/python.md): engine.c calls initialize() once at build time
# (the snapshot) and call(entry, input) once per run. Not for authors: they use `import vecron`.
import gc
import json
import linecache
import sys
import traceback

import vecron

_main = None
_app_prefix = 'src/'
_entries = {}
_BUILD = '/vecron/_build.json'


class _LogWriter:
    """sys.stdout of a run: print() becomes a log line (level info), as console.log does in JS."""

    def __init__(self, level):
        self._level = level
        self._buf = ''

    def write(self, s):
        self._buf += s
        while '\n' in self._buf:
            line, self._buf = self._buf.split('\n', 1)
            vecron._native.log(self._level, line)
        return len(s)

    def flush(self):
        if self._buf:
            vecron._native.log(self._level, self._buf)
            self._buf = ''

    def isatty(self):
        return False


class _NoImportAtRunTime:
    """A run has no file system: an import that did not happen at build time cannot happen now."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        raise ModuleNotFoundError(
            f"No module named {name!r} in this module: a vecron Python module has no file system at run time, "
            f"so every module must be imported when it is built (import it at the top of your code, "
            f"or list it in vecron.json's python.preload)",
            name=name,
        )


def initialize():
    global _main, _app_prefix
    with open(_BUILD) as f:
        build = json.load(f)
    _app_prefix = build['source_root'] + '/'
    for name in build.get('preload', []):
        __import__(name)
    _main = __import__(build['main'])
    for entry in build['entries']:
        fn = getattr(_main, entry, None)
        if not callable(fn):
            raise AttributeError(f"{build['main_file']} defines no function {entry}() (the manifest's entry)")
        _entries[entry] = fn
    # Tracebacks show the author's lines: keep them now (mtime None: linecache never re-reads them).
    for m in list(sys.modules.values()):
        file = getattr(m, '__file__', None) or ''
        if file.startswith('/app/'):
            with open(file, encoding='utf-8', errors='replace') as f:
                lines = f.read().splitlines(keepends=True)
            linecache.cache[file] = (sum(len(x) for x in lines), None, lines, file)
    # Close the import system: nothing is on disk at run time.
    sys.path.clear()
    sys.path_hooks.clear()
    sys.path_importer_cache.clear()
    sys.meta_path[:] = [m for m in sys.meta_path if m.__name__ in ('BuiltinImporter', 'FrozenImporter')] + [_NoImportAtRunTime]
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout = _LogWriter(1)
    vecron._initialized = True
    # What the snapshot holds is never garbage: later collections need not walk it.
    gc.collect()
    gc.freeze()


def call(entry, data):
    fn = _entries.get(entry)
    if fn is None:
        raise AttributeError(f'this module has no entry {entry!r} (it was built with {", ".join(_entries)})')
    # A pre-initialised module starts every run from the same memory: reseed what would repeat.
    if 'random' in sys.modules:
        sys.modules['random'].seed()
    value = json.loads(data) if data else None
    vecron._input = value
    result = fn(value)
    if result is None:
        result = vecron._output
    if result is vecron._NO_OUTPUT:
        raise TypeError(f'{entry}() returned None: return the output (or call vecron.output(value))')
    sys.stdout.flush()
    try:
        return json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(',', ':'))
    except (TypeError, ValueError) as e:
        raise TypeError(f'the output of {entry}() is not JSON: {e}') from None


_SDK_FILES = ('/vecron/_vecron_runtime.py', '/vecron/vecron.py')


def describe_error(exc):
    """The traceback of the author's frames (the SDK's own say nothing to them)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename not in _SDK_FILES]
    lines = ['Traceback (most recent call last):\n'] + traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return ''.join(lines).rstrip().replace('File "/app/', f'File "{_app_prefix}')
