import { malformed } from './errors.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A bounds-checked cursor over a byte range. Every LEB128 read enforces the spec's limits
 * (at most ceil(N/7) bytes; unused bits of the last byte zero, or a sign extension).
 */
export class Reader {
  readonly bytes: Uint8Array;
  pos: number;
  end: number;
  /** Function index (function index space) for error messages while walking a body. */
  funcIndex: number | undefined = undefined;

  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  get atEnd(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string, offset = this.pos): never {
    throw malformed(message, offset, this.funcIndex);
  }

  u8(): number {
    if (this.pos >= this.end) this.fail('unexpected end of data');
    return this.bytes[this.pos++];
  }

  u32(): number {
    const b = this.bytes;
    const start = this.pos;
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) this.fail('unexpected end of data in LEB128', start);
      const byte = b[this.pos++];
      if (i === 4) {
        if (byte & 0xf0) this.fail('u32 LEB128 out of range', start);
        return (result | (byte << 28)) >>> 0;
      }
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
    return this.fail('u32 LEB128 too long', start);
  }

  /** Signed 32-bit LEB128. */
  s32(): number {
    const b = this.bytes;
    const start = this.pos;
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) this.fail('unexpected end of data in LEB128', start);
      const byte = b[this.pos++];
      if (i === 4) {
        if (byte & 0x80) this.fail('s32 LEB128 too long', start);
        const ext = byte & 0x78;
        if (ext !== 0 && ext !== 0x78) this.fail('s32 LEB128 out of range', start);
        return result | (byte << 28);
      }
      result |= (byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) === 0) return shift < 32 && byte & 0x40 ? result | (-1 << shift) : result;
    }
    return this.fail('s32 LEB128 too long', start);
  }

  /** Signed 33-bit LEB128 (block types); returned as a JS number. */
  s33(): number {
    const b = this.bytes;
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) this.fail('unexpected end of data in LEB128', start);
      const byte = b[this.pos++];
      if (i === 4) {
        if (byte & 0x80) this.fail('s33 LEB128 too long', start);
        const ext = byte & 0x70;
        if (ext !== 0 && ext !== 0x70) this.fail('s33 LEB128 out of range', start);
      }
      result += (byte & 0x7f) * mul;
      mul *= 128;
      if ((byte & 0x80) === 0) return byte & 0x40 ? result - mul : result;
    }
    return this.fail('s33 LEB128 too long', start);
  }

  /** Skips a signed 64-bit LEB128 (checking its bounds). */
  skipS64(): void {
    const b = this.bytes;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('unexpected end of data in LEB128', start);
      const byte = b[this.pos++];
      if (i === 9) {
        if (byte !== 0 && byte !== 0x7f) this.fail('s64 LEB128 out of range', start);
        return;
      }
      if ((byte & 0x80) === 0) return;
    }
  }

  /** Signed 64-bit LEB128 as a bigint. */
  s64(): bigint {
    const start = this.pos;
    this.skipS64();
    let result = 0n;
    let shift = 0n;
    let byte = 0;
    for (let p = start; p < this.pos; p++) {
      byte = this.bytes[p];
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
    }
    if (shift < 64n && byte & 0x40) result -= 1n << shift;
    return BigInt.asIntN(64, result);
  }

  skip(n: number): void {
    if (n > this.end - this.pos) this.fail('unexpected end of data');
    this.pos += n;
  }

  take(n: number): Uint8Array {
    const start = this.pos;
    this.skip(n);
    return this.bytes.subarray(start, start + n);
  }

  name(): string {
    const len = this.u32();
    const start = this.pos;
    const raw = this.take(len);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail('name is not valid UTF-8', start);
    }
  }
}
