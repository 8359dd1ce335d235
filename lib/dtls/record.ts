/**
 * The DTLS record layer's framing (RFC 6347 §4.1): a 13-byte header (type, version, epoch,
 * 48-bit sequence number, length) followed by the fragment. Pure functions over bytes; the
 * per-record path reads headers into a caller-owned object so it allocates nothing.
 */
import { DtlsDecodeError } from "./errors.ts";

export const RECORD_HEADER_LENGTH = 13;
/** RFC 5246 §6.2.3: a protected record may expand the plaintext by at most 2048 bytes. */
export const MAX_CIPHERTEXT_EXPANSION = 2048;
export const MAX_PLAINTEXT_LENGTH = 16384;

export interface RecordHeader {
  type: number;
  version: number;
  epoch: number;
  /** 48-bit record sequence number; exact in a JS number. */
  sequence: number;
  /** Length of the fragment that follows the header. */
  length: number;
}

/** A record as a value: header fields plus a view of its fragment. */
export interface DtlsRecord extends RecordHeader {
  fragment: Uint8Array;
}

/** A header object to reuse across calls to readRecordHeader. */
export function newRecordHeader(): RecordHeader {
  return { type: 0, version: 0, epoch: 0, sequence: 0, length: 0 };
}

/**
 * Reads the record header at `offset` into `out` and returns the offset just past the record's
 * fragment. Throws DtlsDecodeError when the header or the fragment runs past the datagram.
 */
export function readRecordHeader(buf: Uint8Array, offset: number, out: RecordHeader): number {
  if (buf.length - offset < RECORD_HEADER_LENGTH) {
    throw new DtlsDecodeError(`record header truncated: ${buf.length - offset} of 13 bytes`);
  }
  out.type = buf[offset];
  out.version = (buf[offset + 1] << 8) | buf[offset + 2];
  out.epoch = (buf[offset + 3] << 8) | buf[offset + 4];
  out.sequence = readUint48(buf, offset + 5);
  out.length = (buf[offset + 11] << 8) | buf[offset + 12];
  const end = offset + RECORD_HEADER_LENGTH + out.length;
  if (end > buf.length) {
    throw new DtlsDecodeError(
      `record length ${out.length} runs past the datagram (${buf.length - offset - 13} left)`,
    );
  }
  return end;
}

/** Writes a record header at `offset`. */
export function writeRecordHeader(buf: Uint8Array, offset: number, h: RecordHeader): void {
  buf[offset] = h.type;
  buf[offset + 1] = h.version >> 8;
  buf[offset + 2] = h.version & 0xff;
  buf[offset + 3] = h.epoch >> 8;
  buf[offset + 4] = h.epoch & 0xff;
  writeUint48(buf, offset + 5, h.sequence);
  buf[offset + 11] = h.length >> 8;
  buf[offset + 12] = h.length & 0xff;
}

/** Splits a datagram into its records (several per datagram are allowed, RFC 6347 §4.1.1). */
export function decodeRecords(datagram: Uint8Array): DtlsRecord[] {
  const records: DtlsRecord[] = [];
  let offset = 0;
  while (offset < datagram.length) {
    const h = newRecordHeader();
    const end = readRecordHeader(datagram, offset, h);
    records.push({ ...h, fragment: datagram.subarray(offset + RECORD_HEADER_LENGTH, end) });
    offset = end;
  }
  return records;
}

/** Encodes one record (header + fragment) into a new buffer. */
export function encodeRecord(r: DtlsRecord): Uint8Array {
  if (r.fragment.length > 0xffff) throw new DtlsDecodeError(`record fragment too long: ${r.fragment.length}`);
  const out = new Uint8Array(RECORD_HEADER_LENGTH + r.fragment.length);
  writeRecordHeader(out, 0, { ...r, length: r.fragment.length });
  out.set(r.fragment, RECORD_HEADER_LENGTH);
  return out;
}

export function readUint48(buf: Uint8Array, offset: number): number {
  const hi = (buf[offset] << 8) | buf[offset + 1];
  const lo = ((buf[offset + 2] << 24) >>> 0) +
    ((buf[offset + 3] << 16) | (buf[offset + 4] << 8) | buf[offset + 5]);
  return hi * 0x1_0000_0000 + lo;
}

export function writeUint48(buf: Uint8Array, offset: number, value: number): void {
  const hi = Math.floor(value / 0x1_0000_0000);
  const lo = value >>> 0;
  buf[offset] = (hi >> 8) & 0xff;
  buf[offset + 1] = hi & 0xff;
  buf[offset + 2] = lo >>> 24;
  buf[offset + 3] = (lo >>> 16) & 0xff;
  buf[offset + 4] = (lo >>> 8) & 0xff;
  buf[offset + 5] = lo & 0xff;
}

/** The largest 48-bit sequence number; a write state must never wrap (RFC 6347 §4.1). */
export const MAX_SEQUENCE = 0xffff_ffff_ffff;
