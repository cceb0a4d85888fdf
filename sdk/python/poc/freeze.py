# Freezes the standard-library modules a Python program imports into a C file for main.c
# (PyImport_FrozenModules), so CPython starts without a file system (vecron has no preopens).
# Run with a host CPython 3.11 (the marshal format of the WASI build's 3.11):
#   python3.11 freeze.py tiers.py > frozen.c
import importlib.util
import marshal
import subprocess
import sys

app_path = sys.argv[1]
app = open(app_path).read()
# What the program imports at start-up (its first statements up to reading the input), by running it.
probe = 'import sys, json, encodings.utf_8, encodings.aliases, encodings.latin_1, encodings.ascii; print("\\n".join(sorted(sys.modules)))'
names = subprocess.run([sys.executable, '-S', '-c', probe], capture_output=True, text=True, check=True).stdout.split()
mods = []
for n in names:
    # importlib's bootstrap and the modules 3.11 deep-freezes into libpython are there already.
    if n in ('__main__', 'importlib._bootstrap', 'importlib._bootstrap_external', 'zipimport'):
        continue
    spec = importlib.util.find_spec(n)
    if not spec or not spec.origin or not spec.origin.endswith('.py'):
        continue
    code = compile(open(spec.origin, 'rb').read(), f'<frozen {n}>', 'exec')
    mods.append((n, marshal.dumps(code), spec.submodule_search_locations is not None))
out = ['#include <stddef.h>', 'struct _frozen { const char *name; const unsigned char *code; int size; int is_package; void *(*get_code)(void); };']
for i, (n, b, p) in enumerate(mods):
    rows = [','.join(str(x) for x in b[j:j + 64]) for j in range(0, len(b), 64)]
    out.append(f'static const unsigned char m{i}[] = {{\n' + ',\n'.join(rows) + '};')
out.append('const struct _frozen vecron_frozen[] = {')
out += [f'  {{"{n}", m{i}, {len(b)}, {1 if p else 0}, NULL}},' for i, (n, b, p) in enumerate(mods)]
out.append('  {0, 0, 0, 0, 0}\n};')
out.append('const struct _frozen *const vecron_frozen_ptr = vecron_frozen;')
out.append('const char vecron_app[] = {' + ','.join(str(x) for x in app.encode()) + ',0};')
print('\n'.join(out))
print(f'froze {len(mods)} modules: {" ".join(n for n, _, _ in mods)}', file=sys.stderr)
