/** STREAM frame (RFC 9000 §19.8): stream id, offset, length and FIN, then the bytes. */
import { type BufferReader, type BufferWriter, FrameDecodeError, varintLength } from "../varint.ts";

export const STREAM_FRAME_TYPE = 0x08;
const FIN_BIT = 0x01;
const LEN_BIT = 0x02;
const OFF_BIT = 0x04;
/** Final sizes and offsets are limited to 2^62 - 1 by the RFC; numbers here stop at 2^53 - 1. */
export const MAX_STREAM_OFFSET = Number.MAX_SAFE_INTEGER;

export interface StreamFrame {
  type: "stream";
  streamId: number;
  offset: number;
  /** A view into the packet on decode; the caller's bytes on encode. */
  data: Uint8Array;
  fin: boolean;
}

/** Size of the frame header (type, id, offset, explicit length) for a payload of `length` bytes. */
export function streamFrameHeaderLength(streamId: number, offset: number, length: number): number {
  return 1 + varintLength(streamId) + (offset > 0 ? varintLength(offset) : 0) + varintLength(length);
}

/** Writes the header of a STREAM frame with an explicit length; the caller copies the payload after it. */
export function writeStreamFrameHeader(
  w: BufferWriter,
  streamId: number,
  offset: number,
  length: number,
  fin: boolean,
): void {
  w.uint8(STREAM_FRAME_TYPE | LEN_BIT | (offset > 0 ? OFF_BIT : 0) | (fin ? FIN_BIT : 0));
  w.varint(streamId);
  if (offset > 0) w.varint(offset);
  w.varint(length);
}

/** Encoded size of a whole STREAM frame. */
export function streamFrameLength(f: StreamFrame): number {
  return streamFrameHeaderLength(f.streamId, f.offset, f.data.length) + f.data.length;
}

/** Writes a whole STREAM frame. */
export function writeStreamFrame(w: BufferWriter, f: StreamFrame): void {
  writeStreamFrameHeader(w, f.streamId, f.offset, f.data.length, f.fin);
  w.bytesFrom(f.data);
}

/** True for the eight STREAM frame type values 0x08..0x0f. */
export function isStreamFrameType(type: number): boolean {
  return (type & 0xf8) === STREAM_FRAME_TYPE;
}

/** Reads a STREAM frame whose type byte (given) was consumed; without LEN the data runs to the packet end. */
export function readStreamFrame(r: BufferReader, type: number): StreamFrame {
  const streamId = r.varint();
  const offset = type & OFF_BIT ? r.varint() : 0;
  const length = type & LEN_BIT ? r.varint() : r.remaining;
  if (offset + length > MAX_STREAM_OFFSET) throw new FrameDecodeError("STREAM frame ends past 2^53 - 1");
  const data = r.bytesView(length);
  return { type: "stream", streamId, offset, data, fin: (type & FIN_BIT) !== 0 };
}
