/** RESET_STREAM frame (RFC 9000 §19.4): the sender abandons a stream at a final size. */
import { type BufferReader, type BufferWriter, varintLength } from "../varint.ts";

export const RESET_STREAM_FRAME_TYPE = 0x04;

export interface ResetStreamFrame {
  type: "reset_stream";
  streamId: number;
  errorCode: number;
  finalSize: number;
}

/** Encoded size. */
export function resetStreamFrameLength(f: ResetStreamFrame): number {
  return 1 + varintLength(f.streamId) + varintLength(f.errorCode) + varintLength(f.finalSize);
}

/** Writes a RESET_STREAM frame. */
export function writeResetStreamFrame(w: BufferWriter, f: ResetStreamFrame): void {
  w.uint8(RESET_STREAM_FRAME_TYPE);
  w.varint(f.streamId);
  w.varint(f.errorCode);
  w.varint(f.finalSize);
}

/** Reads a RESET_STREAM frame whose type byte was consumed. */
export function readResetStreamFrame(r: BufferReader): ResetStreamFrame {
  return { type: "reset_stream", streamId: r.varint(), errorCode: r.varint(), finalSize: r.varint() };
}
