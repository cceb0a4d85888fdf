/** A growable byte buffer with the LEB128 encoders of the binary format. */
export class ByteWriter {
  buf: Uint8Array;
  len = 0;

  constructor(initial = 1024) {
    this.buf = new Uint8Array(Math.max(16, initial));
  }

  private grow(extra: number): void {
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(b: number): this {
    if (this.len + 1 > this.buf.length) this.grow(1);
    this.buf[this.len++] = b;
    return this;
  }

  bytes(src: ArrayLike<number>): this {
    if (this.len + src.length > this.buf.length) this.grow(src.length);
    this.buf.set(src, this.len);
    this.len += src.length;
    return this;
  }

  /** Appends src[from, to) (a plain loop for short ranges, which is faster than subarray + set). */
  range(src: Uint8Array, from: number, to: number): this {
    const n = to - from;
    if (this.len + n > this.buf.length) this.grow(n);
    if (n < 64) {
      const buf = this.buf;
      let at = this.len;
      for (let i = from; i < to; i++) buf[at++] = src[i];
    } else this.buf.set(src.subarray(from, to), this.len);
    this.len += n;
    return this;
  }

  u32(v: number): this {
    if (this.len + 5 > this.buf.length) this.grow(5);
    v >>>= 0;
    do {
      let byte = v & 0x7f;
      v >>>= 7;
      if (v !== 0) byte |= 0x80;
      this.buf[this.len++] = byte;
    } while (v !== 0);
    return this;
  }

  /** u32 in exactly 5 bytes (redundant LEB128 padding is valid), for patching later. */
  u32Padded(v: number): this {
    if (this.len + 5 > this.buf.length) this.grow(5);
    for (let i = 0; i < 4; i++) this.buf[this.len++] = ((v >>> (7 * i)) & 0x7f) | 0x80;
    this.buf[this.len++] = (v >>> 28) & 0x0f;
    return this;
  }

  patchU32Padded(at: number, v: number): void {
    for (let i = 0; i < 4; i++) this.buf[at + i] = ((v >>> (7 * i)) & 0x7f) | 0x80;
    this.buf[at + 4] = (v >>> 28) & 0x0f;
  }

  s32(v: number): this {
    if (this.len + 5 > this.buf.length) this.grow(5);
    v |= 0;
    for (;;) {
      const byte = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
        this.buf[this.len++] = byte;
        return this;
      }
      this.buf[this.len++] = byte | 0x80;
    }
  }

  s64(value: bigint | number): this {
    let v = BigInt.asIntN(64, BigInt(value));
    for (;;) {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0)) {
        this.u8(byte);
        return this;
      }
      this.u8(byte | 0x80);
    }
  }

  name(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u32(b.length).bytes(b);
  }

  /** Appends `id`, then the length-prefixed payload written by `fill`. */
  section(id: number, fill: (w: ByteWriter) => void): this {
    const inner = new ByteWriter(256);
    fill(inner);
    return this.u8(id).u32(inner.len).bytes(inner.result());
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

export function encodeU32(v: number): number[] {
  const out: number[] = [];
  v >>>= 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}
