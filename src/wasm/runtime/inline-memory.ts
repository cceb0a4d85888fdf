/**
 * Reused linear memories for inline runs (issue 19). Most of the cost of a fresh instance on V8 is
 * its memory: an address-space reservation made and, later, a collection to give it back. An
 * inline run instantiates a variant of the module whose memory is imported (importMemoryVariant)
 * and gets it from this pool: a memory that a previous run of the same module left at its initial
 * size, zeroed. Instantiation then writes the data segments into it as into a new one, so the
 * guest starts from exactly the state of a fresh memory: every byte zero but the data segments,
 * the same size (the initial one), the same maximum (the clamp). A memory that grew is never
 * reused (it cannot shrink); a memory is zeroed before it goes back to the pool, and the instance
 * that used it is dropped, so nothing of one run can be seen by the next
 * (test/wasm/runtime-inline.test.ts checks it with a guest that reads all of its memory).
 */
import { WA, type WasmMemoryObject } from './wasm-api.ts';

/** The import the variant takes its memory from (internal: guests never see this name). */
export const INLINE_MEMORY_MODULE = 'vecron_inline';
export const INLINE_MEMORY_NAME = 'memory';
/** Memories kept (one per module), far below the ~13,000 a process can hold. */
const POOL_MAX = 64;
/** Larger initial memories are not reused: zeroing them would cost more than a new memory. */
export const REUSE_MAX_PAGES = 16;

export interface MemoryLimits {
  min: number;
  max: number | undefined;
}

function readU32(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  let shift = 0;
  for (;;) {
    const x = b[at++];
    if (x === undefined) throw new RangeError('truncated LEB128');
    v += (x & 0x7f) * 2 ** shift;
    shift += 7;
    if ((x & 0x80) === 0) return [v, at];
    if (shift > 35) throw new RangeError('LEB128 too long');
  }
}
function u32(v: number): number[] {
  const out: number[] = [];
  do {
    let x = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) x |= 0x80;
    out.push(x);
  } while (v !== 0);
  return out;
}
const name = (s: string): number[] => [...u32(s.length), ...Buffer.from(s, 'latin1')];

/**
 * The module with its one defined memory turned into an import of INLINE_MEMORY_MODULE.memory
 * (same limits; it stays memory index 0, so every instruction, export and data segment refers to
 * it unchanged), or null when the module has no defined memory, more than one, or a shared one.
 */
export function importMemoryVariant(bytes: Uint8Array): { bytes: Uint8Array; limits: MemoryLimits } | null {
  if (bytes.byteLength < 8) return null;
  const sections: { id: number; start: number; end: number }[] = [];
  let at = 8;
  while (at < bytes.byteLength) {
    const id = bytes[at];
    const [size, body] = readU32(bytes, at + 1);
    sections.push({ id, start: at, end: body + size });
    at = body + size;
  }
  const memSec = sections.find((s) => s.id === 5);
  const impSec = sections.find((s) => s.id === 2);
  if (!memSec || !impSec) return null;
  // The memory section: exactly one memory, not shared, not 64-bit.
  let [, p] = readU32(bytes, memSec.start + 1);
  const [count, q] = readU32(bytes, p);
  if (count !== 1) return null;
  const flags = bytes[q];
  if (flags !== 0 && flags !== 1) return null;
  const [min, r] = readU32(bytes, q + 1);
  let max: number | undefined;
  let limitsEnd = r;
  if (flags === 1) [max, limitsEnd] = readU32(bytes, r);
  const limits = bytes.subarray(q, limitsEnd);
  // The import section, one entry more.
  [, p] = readU32(bytes, impSec.start + 1);
  const [n, entries] = readU32(bytes, p);
  const body = [...u32(n + 1), ...bytes.subarray(entries, impSec.end), ...name(INLINE_MEMORY_MODULE), ...name(INLINE_MEMORY_NAME), 0x02, ...limits];
  const out: number[] = [...bytes.subarray(0, 8)];
  for (const s of sections) {
    if (s.id === 5) continue;
    if (s.id === 2) out.push(2, ...u32(body.length), ...body);
    else out.push(...bytes.subarray(s.start, s.end));
  }
  return { bytes: new Uint8Array(out), limits: { min, max } };
}

/** One spare memory per module key, at its initial size and zeroed; LRU-bounded. */
export class MemoryPool {
  private readonly spare = new Map<string, WasmMemoryObject>();

  /** A memory for a run of `key`: the spare one, or a new one. */
  acquire(key: string, l: MemoryLimits): WasmMemoryObject {
    const m = this.spare.get(key);
    if (m !== undefined) {
      this.spare.delete(key);
      return m;
    }
    return new WA.Memory(l.max === undefined ? { initial: l.min } : { initial: l.min, maximum: l.max });
  }

  /** After the run: zeroed and kept if it is still at its initial size, else dropped. */
  release(key: string, memory: WasmMemoryObject, l: MemoryLimits): void {
    if (l.min > REUSE_MAX_PAGES || memory.buffer.byteLength !== l.min * 65536) return;
    new Uint8Array(memory.buffer).fill(0);
    this.spare.delete(key);
    this.spare.set(key, memory);
    if (this.spare.size > POOL_MAX) this.spare.delete(this.spare.keys().next().value as string);
  }

  /** Forget a module's memory (evicted from the cache). */
  drop(key: string): void {
    this.spare.delete(key);
  }
}
