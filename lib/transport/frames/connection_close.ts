/** CONNECTION_CLOSE frame (RFC 9000 §19.19, transport variant 0x1c): an error code, the frame type at fault, a reason. */
import { type BufferReader, type BufferWriter, FrameDecodeError, varintLength } from "../varint.ts";

export const CONNECTION_CLOSE_FRAME_TYPE = 0x1c;
/** Reasons longer than this are cut, so a close always fits the smallest packet. */
export const MAX_REASON_BYTES = 512;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

export interface ConnectionCloseFrame {
  type: "connection_close";
  errorCode: number;
  /** The frame type that caused the error, 0 when none. */
  frameType: number;
  reason: string;
}

function reasonBytes(reason: string): Uint8Array {
  const b = encoder.encode(reason);
  return b.length > MAX_REASON_BYTES ? b.subarray(0, MAX_REASON_BYTES) : b;
}

/** Encoded size. */
export function connectionCloseFrameLength(f: ConnectionCloseFrame): number {
  const reason = reasonBytes(f.reason);
  return 1 + varintLength(f.errorCode) + varintLength(f.frameType) + varintLength(reason.length) +
    reason.length;
}

/** Writes a CONNECTION_CLOSE frame. */
export function writeConnectionCloseFrame(w: BufferWriter, f: ConnectionCloseFrame): void {
  const reason = reasonBytes(f.reason);
  w.uint8(CONNECTION_CLOSE_FRAME_TYPE);
  w.varint(f.errorCode);
  w.varint(f.frameType);
  w.varint(reason.length);
  w.bytesFrom(reason);
}

/** Reads a CONNECTION_CLOSE frame whose type byte was consumed. */
export function readConnectionCloseFrame(r: BufferReader): ConnectionCloseFrame {
  const errorCode = r.varint();
  const frameType = r.varint();
  const len = r.varint();
  if (len > r.remaining) {
    throw new FrameDecodeError(`CONNECTION_CLOSE reason of ${len} bytes exceeds the packet`);
  }
  return { type: "connection_close", errorCode, frameType, reason: decoder.decode(r.bytesView(len)) };
}
