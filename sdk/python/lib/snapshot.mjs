// Pre-initialisation (what Wizer does): runs the module's _initialize once at build time (CPython
// started, the SDK and the author's modules imported from the build's file system), then writes
// the memory it left as the module's data and drops the _initialize export. Every run starts from
// that state: instantiation copies the data, nothing of CPython's start-up is redone (about 100 M
// fuel less per run, docs/sdk/python.md). The same technique as sdk/js/lib/snapshot.mjs.
//
// Deterministic: the clock and file times are fixed, random_get gives zeros and the string-hash
// seed is 0 during the snapshot (vfs-wasi.mjs, engine.c), so the same project gives the same bytes.
import { buildWasi } from './vfs-wasi.mjs';

const WASI = 'wasi_snapshot_preview1';

function readU32(buf, pos) {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos++];
    result |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result >>> 0, pos];
    shift += 7;
  }
}
function u32(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function i32(n) {
  const out = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** The sections of a module: [{ id, start, end (of the payload) }]. */
function sections(bytes) {
  const out = [];
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos];
    const [size, p] = readU32(bytes, pos + 1);
    out.push({ id, start: p, end: p + size });
    pos = p + size;
  }
  return out;
}

/** The imports of the build-time run: the file system of `fs` (vfs-wasi.mjs), quiet host functions. */
function buildImports(module, memoryRef, fs, out) {
  const wasi = buildWasi(fs, memoryRef, out);
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') throw new Error(`cannot pre-initialise: the module imports a ${imp.kind} (${imp.module}.${imp.name})`);
    imports[imp.module] ??= {};
    let f;
    if (imp.module === WASI) f = wasi[imp.name];
    else if (imp.name === 'log') {
      f = (level, ptr, len) => {
        if (level >= 2) out.stderr.push(`${Buffer.from(new Uint8Array(memoryRef.memory.buffer, ptr, len)).toString('utf8')}\n`);
      };
    } else if (imp.name === 'set_context') f = () => 0;
    else f = () => 0n; // get_context and the privileged functions: "nothing" while building
    imports[imp.module][imp.name] = f;
  }
  return imports;
}

/**
 * The module with its _initialize already run over the file system `fs` (CPython started, the
 * author's modules imported), or throws with CPython's message when that failed.
 * Returns { bytes, stdout, stderr, pages }.
 */
export async function preinitialize(bytes, fs) {
  const module = await WebAssembly.compile(bytes);
  const memoryRef = {};
  const out = { stdout: [], stderr: [] };
  const instance = await WebAssembly.instantiate(module, buildImports(module, memoryRef, fs, out));
  memoryRef.memory = instance.exports.memory;
  instance.exports._initialize();
  const errPtr = instance.exports.vecron_py_init_error();
  if (errPtr !== 0) {
    const mem = new Uint8Array(memoryRef.memory.buffer);
    let end = errPtr;
    while (mem[end] !== 0) end++;
    const printed = out.stderr.join('').trim();
    throw new Error(`${Buffer.from(mem.subarray(errPtr, end)).toString('utf8')}${printed ? `\n${printed}` : ''}`);
  }
  const memory = new Uint8Array(memoryRef.memory.buffer);
  const pages = memory.length / 65536;

  const parts = [bytes.subarray(0, 8)];
  let mutableGlobals = 0;
  const all = sections(bytes);
  // The snapshot replaces the memory and data sections: both must be there to be replaced.
  for (const id of [5, 11]) if (!all.some((s) => s.id === id)) throw new Error(`cannot pre-initialise: the module has no ${id === 5 ? 'memory' : 'data'} section`);
  for (const s of all) {
    const payload = bytes.subarray(s.start, s.end);
    let replaced = null;
    if (s.id === 6) {
      // Only __stack_pointer may change, and it is back where it was once _initialize returned.
      let [count, p] = readU32(payload, 0);
      for (; count > 0; count--) {
        const mut = payload[p + 1];
        mutableGlobals += mut;
        p += 2;
        while (payload[p] !== 0x0b) p++; // constant expressions of wasm-ld: one instruction + end
        p++;
      }
      if (mutableGlobals > 1) throw new Error(`cannot pre-initialise: ${mutableGlobals} mutable globals (only __stack_pointer is expected)`);
    } else if (s.id === 5) {
      const [count, p0] = readU32(payload, 0);
      if (count !== 1) throw new Error('cannot pre-initialise: the module has no single memory');
      const flags = payload[p0];
      const [, p1] = readU32(payload, p0 + 1);
      const max = flags & 1 ? readU32(payload, p1)[0] : null;
      replaced = Uint8Array.from([...u32(1), flags & 1, ...u32(pages), ...(max === null ? [] : u32(Math.max(max, pages)))]);
    } else if (s.id === 7) {
      let [count, p] = readU32(payload, 0);
      const kept = { count: 0, parts: [] };
      for (; count > 0; count--) {
        const start = p;
        const [n, q] = readU32(payload, p);
        const exportName = Buffer.from(payload.subarray(q, q + n)).toString('utf8');
        p = q + n + 1;
        [, p] = readU32(payload, p);
        if (exportName !== '_initialize' && exportName !== 'vecron_py_init_error') {
          kept.count++;
          kept.parts.push(payload.subarray(start, p));
        }
      }
      const removed = countExports(payload) - kept.count;
      replaced = Buffer.concat([Uint8Array.from(u32(kept.count)), ...kept.parts]);
      if (removed !== 2) throw new Error('cannot pre-initialise: the engine exports no _initialize / vecron_py_init_error');
    } else if (s.id === 11) {
      replaced = dataSegments(memory);
    } else if (s.id === 12) {
      replaced = Uint8Array.from(u32(segmentCount(memory)));
    }
    const body = replaced ?? payload;
    parts.push(Uint8Array.from([s.id, ...u32(body.length)]), body);
  }
  return { bytes: new Uint8Array(Buffer.concat(parts)), stdout: out.stdout.join(''), stderr: out.stderr.join(''), pages };
}

function countExports(payload) {
  return readU32(payload, 0)[0];
}

/** The non-zero runs of memory (gaps under 64 zero bytes are kept inside a run). */
function runs(memory) {
  const out = [];
  let i = 0;
  const n = memory.length;
  while (i < n) {
    while (i < n && memory[i] === 0) i++;
    if (i >= n) break;
    const start = i;
    let zeros = 0;
    while (i < n && zeros < 64) {
      zeros = memory[i] === 0 ? zeros + 1 : 0;
      i++;
    }
    out.push([start, i - zeros]);
  }
  return out;
}
const segmentCount = (memory) => runs(memory).length;

function dataSegments(memory) {
  const r = runs(memory);
  const out = [Uint8Array.from(u32(r.length))];
  for (const [start, end] of r) {
    out.push(Uint8Array.from([0x00, 0x41, ...i32(start), 0x0b, ...u32(end - start)]), memory.subarray(start, end));
  }
  return Buffer.concat(out);
}

