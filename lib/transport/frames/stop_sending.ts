/** STOP_SENDING frame (RFC 9000 §19.5): the receiver asks the peer to stop sending on a stream. */
import { type BufferReader, type BufferWriter, varintLength } from "../varint.ts";

export const STOP_SENDING_FRAME_TYPE = 0x05;

export interface StopSendingFrame {
  type: "stop_sending";
  streamId: number;
  errorCode: number;
}

/** Encoded size. */
export function stopSendingFrameLength(f: StopSendingFrame): number {
  return 1 + varintLength(f.streamId) + varintLength(f.errorCode);
}

/** Writes a STOP_SENDING frame. */
export function writeStopSendingFrame(w: BufferWriter, f: StopSendingFrame): void {
  w.uint8(STOP_SENDING_FRAME_TYPE);
  w.varint(f.streamId);
  w.varint(f.errorCode);
}

/** Reads a STOP_SENDING frame whose type byte was consumed. */
export function readStopSendingFrame(r: BufferReader): StopSendingFrame {
  return { type: "stop_sending", streamId: r.varint(), errorCode: r.varint() };
}
