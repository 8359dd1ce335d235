/** A bounds-checked cursor over bytes for the codecs; every overrun is a DtlsDecodeError. */
import { DtlsDecodeError } from "./errors.ts";

export class Reader {
  #offset = 0;
  constructor(readonly buf: Uint8Array, readonly what: string) {}

  get offset(): number {
    return this.#offset;
  }
  get remaining(): number {
    return this.buf.length - this.#offset;
  }

  #need(n: number): void {
    if (this.remaining < n) {
      throw new DtlsDecodeError(
        `${this.what}: needs ${n} more bytes at offset ${this.#offset}, has ${this.remaining}`,
      );
    }
  }
  u8(): number {
    this.#need(1);
    return this.buf[this.#offset++];
  }
  u16(): number {
    this.#need(2);
    const v = (this.buf[this.#offset] << 8) | this.buf[this.#offset + 1];
    this.#offset += 2;
    return v;
  }
  u24(): number {
    this.#need(3);
    const b = this.buf;
    const o = this.#offset;
    this.#offset += 3;
    return (b[o] << 16) | (b[o + 1] << 8) | b[o + 2];
  }
  bytes(n: number): Uint8Array {
    this.#need(n);
    const v = this.buf.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return v;
  }
  /** A vector with a 1-, 2- or 3-byte length prefix, bounded as the RFC's `<min..max>` says. */
  vector(prefix: 1 | 2 | 3, min = 0, max = Infinity): Uint8Array {
    const n = prefix === 1 ? this.u8() : prefix === 2 ? this.u16() : this.u24();
    if (n < min || n > max) {
      throw new DtlsDecodeError(`${this.what}: vector length ${n} outside ${min}..${max}`);
    }
    return this.bytes(n);
  }
  end(): void {
    if (this.remaining !== 0) throw new DtlsDecodeError(`${this.what}: ${this.remaining} trailing bytes`);
  }
}

/** A growable writer for building handshake messages (not on the per-record path). */
export class Writer {
  #buf = new Uint8Array(256);
  #length = 0;

  #ensure(n: number): void {
    if (this.#length + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#length + n));
    next.set(this.#buf.subarray(0, this.#length));
    this.#buf = next;
  }
  u8(v: number): this {
    this.#ensure(1);
    this.#buf[this.#length++] = v;
    return this;
  }
  u16(v: number): this {
    this.#ensure(2);
    this.#buf[this.#length++] = v >> 8;
    this.#buf[this.#length++] = v & 0xff;
    return this;
  }
  u24(v: number): this {
    this.#ensure(3);
    this.#buf[this.#length++] = (v >> 16) & 0xff;
    this.#buf[this.#length++] = (v >> 8) & 0xff;
    this.#buf[this.#length++] = v & 0xff;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#length);
    this.#length += b.length;
    return this;
  }
  vector(prefix: 1 | 2 | 3, b: Uint8Array): this {
    const limit = prefix === 1 ? 0xff : prefix === 2 ? 0xffff : 0xffffff;
    if (b.length > limit) {
      throw new DtlsDecodeError(`vector of ${b.length} bytes exceeds its ${prefix}-byte length`);
    }
    if (prefix === 1) this.u8(b.length);
    else if (prefix === 2) this.u16(b.length);
    else this.u24(b.length);
    return this.bytes(b);
  }
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#length);
  }
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
