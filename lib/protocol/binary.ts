/**
 * Byte-level primitives of the payload encoding: LEB128 varints (minimal, ≤ 32 bits) and
 * varint-length-prefixed UTF-8 strings.
 */
import { latin1String } from "./body.ts";
import { ProtocolError } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Appends values to a growing buffer. */
export class ByteWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  u8(v: number): this {
    this.#reserve(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  varint(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new ProtocolError("invalid_field", `varint out of range: ${v}`);
    }
    do {
      let byte = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) byte |= 0x80;
      this.u8(byte);
    } while (v > 0);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  string(s: string): this {
    // The tunnel's own fields (ids, addresses, hosts) are ASCII: written in place, no encoder call.
    const n = s.length;
    if (n < 128) {
      let ascii = true;
      for (let i = 0; i < n && ascii; i++) ascii = s.charCodeAt(i) < 0x80;
      if (ascii) return this.byteString(s);
    }
    const b = encoder.encode(s);
    return this.varint(b.length).bytes(b);
  }

  /**
   * A byte string (one code unit per byte) as its bytes; a string with wider code units (a caller that
   * decoded bytes as UTF-8) goes as UTF-8 rather than losing the high bits.
   */
  byteString(s: string): this {
    const n = s.length;
    const start = this.#len;
    this.varint(n);
    this.#reserve(n);
    const buf = this.#buf;
    let at = this.#len;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) {
        // Not a byte string after all: written again, as UTF-8.
        this.#len = start;
        return this.string(s);
      }
      buf[at++] = c;
    }
    this.#len = at;
    return this;
  }

  /** Starts over, keeping the buffer, for a writer that encodes one message after another. */
  reset(): this {
    this.#len = 0;
    return this;
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Reads values from a payload, bounds-checked; every failure is a ProtocolError. */
export class ByteReader {
  #pos = 0;
  constructor(readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.#pos;
  }

  u8(): number {
    if (this.#pos >= this.buf.length) throw new ProtocolError("truncated", "payload ends inside a field");
    return this.buf[this.#pos++];
  }

  varint(): number {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        if (i > 0 && byte === 0) throw new ProtocolError("invalid_varint", "varint is not minimally encoded");
        if (value > 0xffffffff) throw new ProtocolError("invalid_varint", "varint exceeds 32 bits");
        return value;
      }
    }
    throw new ProtocolError("invalid_varint", "varint longer than 5 bytes");
  }

  string(): string {
    const start = this.#take();
    const end = this.#pos;
    // ASCII (the usual case) without a decoder call; anything else goes through the strict decoder.
    if (end - start < 64) {
      const s = shortString(this.buf, start, end, 0x80);
      if (s !== undefined) return s;
    }
    try {
      return decoder.decode(this.buf.subarray(start, end));
    } catch {
      throw new ProtocolError("invalid_utf8", "string is not valid UTF-8");
    }
  }

  /** A length-prefixed byte string: one code unit per byte, any bytes. */
  byteString(): string {
    const start = this.#take();
    const end = this.#pos;
    return end - start < 64
      ? shortString(this.buf, start, end, 0x100)!
      : latin1String(this.buf.subarray(start, end));
  }

  /** Reads a varint length and moves past that many bytes; returns where they start. */
  #take(): number {
    const len = this.varint();
    if (len > this.remaining) {
      throw new ProtocolError("truncated", `string of ${len} bytes but only ${this.remaining} left`);
    }
    const start = this.#pos;
    this.#pos += len;
    return start;
  }

  /** Skips n bytes. */
  skip(n: number): void {
    if (n > this.remaining) throw new ProtocolError("truncated", "payload ends inside a field");
    this.#pos += n;
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) {
      throw new ProtocolError("trailing_bytes", `${this.remaining} unexpected bytes after the last field`);
    }
  }
}

/** bytes[start..end) as one code unit per byte, or undefined when a byte is ≥ `below`. */
function shortString(bytes: Uint8Array, start: number, end: number, below: number): string | undefined {
  if (below <= 0xff) {
    for (let i = start; i < end; i++) if (bytes[i] >= below) return undefined;
  }
  // Appending char by char allocates a cons string per byte past 12 (most header values): one call instead.
  if (end - start > 12) {
    return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
  }
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
}
