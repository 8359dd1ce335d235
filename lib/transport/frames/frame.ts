/** The frame union, PING and PADDING (RFC 9000 §19.1–19.2), and the type dispatch used by the packet decoder. */
import { BufferReader, BufferWriter, FrameDecodeError } from "../varint.ts";
import { type AckFrame, ackFrameLength, readAckFrame, writeAckFrame } from "./ack.ts";
import {
  type ConnectionCloseFrame,
  connectionCloseFrameLength,
  readConnectionCloseFrame,
  writeConnectionCloseFrame,
} from "./connection_close.ts";
import {
  type MaxDataFrame,
  maxDataFrameLength,
  type MaxStreamDataFrame,
  maxStreamDataFrameLength,
  type MaxStreamsFrame,
  maxStreamsFrameLength,
  readMaxDataFrame,
  readMaxStreamDataFrame,
  readMaxStreamsFrame,
  writeMaxDataFrame,
  writeMaxStreamDataFrame,
  writeMaxStreamsFrame,
} from "./flow_control.ts";
import {
  readResetStreamFrame,
  type ResetStreamFrame,
  resetStreamFrameLength,
  writeResetStreamFrame,
} from "./reset_stream.ts";
import {
  readStopSendingFrame,
  type StopSendingFrame,
  stopSendingFrameLength,
  writeStopSendingFrame,
} from "./stop_sending.ts";
import {
  isStreamFrameType,
  readStreamFrame,
  type StreamFrame,
  streamFrameLength,
  writeStreamFrame,
} from "./stream.ts";

export const PADDING_FRAME_TYPE = 0x00;
export const PING_FRAME_TYPE = 0x01;

export interface PaddingFrame {
  type: "padding";
  /** Number of zero bytes. */
  length: number;
}

export interface PingFrame {
  type: "ping";
}

export type Frame =
  | PaddingFrame
  | PingFrame
  | AckFrame
  | ResetStreamFrame
  | StopSendingFrame
  | StreamFrame
  | MaxDataFrame
  | MaxStreamDataFrame
  | MaxStreamsFrame
  | ConnectionCloseFrame;

/** Frames that oblige the peer to acknowledge (RFC 9002 §2: all but ACK, PADDING and CONNECTION_CLOSE). */
export function isAckEliciting(f: Frame): boolean {
  return f.type !== "ack" && f.type !== "padding" && f.type !== "connection_close";
}

/** Encoded size of any frame. */
export function frameLength(f: Frame): number {
  switch (f.type) {
    case "padding":
      return f.length;
    case "ping":
      return 1;
    case "ack":
      return ackFrameLength(f);
    case "reset_stream":
      return resetStreamFrameLength(f);
    case "stop_sending":
      return stopSendingFrameLength(f);
    case "stream":
      return streamFrameLength(f);
    case "max_data":
      return maxDataFrameLength(f);
    case "max_stream_data":
      return maxStreamDataFrameLength(f);
    case "max_streams":
      return maxStreamsFrameLength(f);
    case "connection_close":
      return connectionCloseFrameLength(f);
  }
}

/** Writes any frame. */
export function writeFrame(w: BufferWriter, f: Frame): void {
  switch (f.type) {
    case "padding":
      w.bytes.fill(0, w.pos, w.pos + f.length);
      w.pos += f.length;
      return;
    case "ping":
      w.uint8(PING_FRAME_TYPE);
      return;
    case "ack":
      return writeAckFrame(w, f);
    case "reset_stream":
      return writeResetStreamFrame(w, f);
    case "stop_sending":
      return writeStopSendingFrame(w, f);
    case "stream":
      return writeStreamFrame(w, f);
    case "max_data":
      return writeMaxDataFrame(w, f);
    case "max_stream_data":
      return writeMaxStreamDataFrame(w, f);
    case "max_streams":
      return writeMaxStreamsFrame(w, f);
    case "connection_close":
      return writeConnectionCloseFrame(w, f);
  }
}

/** Reads one frame; a run of PADDING bytes becomes one PaddingFrame. Throws FrameDecodeError. */
export function readFrame(r: BufferReader): Frame {
  const type = r.uint8();
  switch (type) {
    case PADDING_FRAME_TYPE: {
      let length = 1;
      while (r.pos < r.end && r.bytes[r.pos] === 0) {
        r.pos++;
        length++;
      }
      return { type: "padding", length };
    }
    case PING_FRAME_TYPE:
      return { type: "ping" };
    case 0x02:
      return readAckFrame(r);
    case 0x04:
      return readResetStreamFrame(r);
    case 0x05:
      return readStopSendingFrame(r);
    case 0x10:
      return readMaxDataFrame(r);
    case 0x11:
      return readMaxStreamDataFrame(r);
    case 0x12:
      return readMaxStreamsFrame(r);
    case 0x1c:
      return readConnectionCloseFrame(r);
    default:
      if (isStreamFrameType(type)) return readStreamFrame(r, type);
      throw new FrameDecodeError(`unknown frame type 0x${type.toString(16)}`);
  }
}

/** Encodes frames back to back. */
export function encodeFrames(frames: Frame[]): Uint8Array {
  let n = 0;
  for (const f of frames) n += frameLength(f);
  const w = new BufferWriter(new Uint8Array(n));
  for (const f of frames) writeFrame(w, f);
  return w.bytes;
}

/** Decodes a run of frames filling `bytes`. Throws FrameDecodeError. */
export function decodeFrames(bytes: Uint8Array): Frame[] {
  const r = new BufferReader(bytes);
  const out: Frame[] = [];
  while (r.remaining > 0) out.push(readFrame(r));
  return out;
}
