/**
 * Byte cursors and QUIC variable-length integers (RFC 9000 §16): the two-bit length prefix
 * gives 1, 2, 4 or 8 bytes. Values are JavaScript numbers, so at most 2^53 - 1.
 */

/** A peer sent bytes that do not decode: truncated, out of range or of an unknown type. */
export class FrameDecodeError extends Error {
  readonly code = "FRAME_ENCODING_ERROR";
  constructor(message: string) {
    super(message);
    this.name = "FrameDecodeError";
  }
}

const TWO_POW_32 = 0x1_0000_0000;

/** Encoded size of a varint for v (0 ≤ v ≤ 2^53 - 1). */
export function varintLength(v: number): 1 | 2 | 4 | 8 {
  if (v < 0x40) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x4000_0000) return 4;
  return 8;
}

/** Reads from a Uint8Array without copying; every read checks bounds and throws FrameDecodeError. */
export class BufferReader {
  pos: number;
  readonly end: number;

  constructor(readonly bytes: Uint8Array, start = 0, end = bytes.length) {
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  uint8(): number {
    if (this.pos >= this.end) throw new FrameDecodeError("truncated: expected one more byte");
    return this.bytes[this.pos++];
  }

  varint(): number {
    const b = this.bytes;
    if (this.pos >= this.end) throw new FrameDecodeError("truncated varint");
    const first = b[this.pos];
    const len = 1 << (first >> 6);
    if (this.pos + len > this.end) throw new FrameDecodeError(`truncated varint: needs ${len} bytes`);
    const p = this.pos;
    this.pos += len;
    switch (len) {
      case 1:
        return first & 0x3f;
      case 2:
        return ((first & 0x3f) << 8) | b[p + 1];
      case 4:
        return (((first & 0x3f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      default: {
        const hi = (((first & 0x3f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
        const lo = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
        if (hi >= 0x20_0000) throw new FrameDecodeError("varint exceeds 2^53 - 1");
        return hi * TWO_POW_32 + lo;
      }
    }
  }

  /** A view of the next n bytes (no copy). */
  bytesView(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) {
      throw new FrameDecodeError(`length ${n} runs past the end of the packet (${this.remaining} left)`);
    }
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}

/** Writes into a caller-owned buffer; callers size frames first, so writes past the end are bugs. */
export class BufferWriter {
  pos: number;

  constructor(readonly bytes: Uint8Array, start = 0) {
    this.pos = start;
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  uint8(v: number): void {
    this.bytes[this.pos++] = v;
  }

  varint(v: number): void {
    const b = this.bytes;
    const p = this.pos;
    if (v < 0x40) {
      b[p] = v;
      this.pos = p + 1;
    } else if (v < 0x4000) {
      b[p] = 0x40 | (v >> 8);
      b[p + 1] = v & 0xff;
      this.pos = p + 2;
    } else if (v < 0x4000_0000) {
      b[p] = 0x80 | (v >>> 24);
      b[p + 1] = (v >>> 16) & 0xff;
      b[p + 2] = (v >>> 8) & 0xff;
      b[p + 3] = v & 0xff;
      this.pos = p + 4;
    } else {
      const hi = Math.floor(v / TWO_POW_32);
      const lo = v >>> 0;
      b[p] = 0xc0 | (hi >>> 24);
      b[p + 1] = (hi >>> 16) & 0xff;
      b[p + 2] = (hi >>> 8) & 0xff;
      b[p + 3] = hi & 0xff;
      b[p + 4] = lo >>> 24;
      b[p + 5] = (lo >>> 16) & 0xff;
      b[p + 6] = (lo >>> 8) & 0xff;
      b[p + 7] = lo & 0xff;
      this.pos = p + 8;
    }
  }

  bytesFrom(src: Uint8Array): void {
    this.bytes.set(src, this.pos);
    this.pos += src.length;
  }
}
