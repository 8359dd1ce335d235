/**
 * The receive side of a connection: a packet's frames decoded, then each acted on (RFC 9000 §12.4) by the
 * piece of state it concerns. What reaches beyond those pieces goes back through the callbacks.
 */
import { TransportError, TransportErrorCode } from "./errors.ts";
import type { ReceiveWindow, SendCredit } from "./flow_control.ts";
import type { AckFrame } from "./frames/ack.ts";
import { MAX_STREAM_DATA_FRAME_TYPE } from "./frames/flow_control.ts";
import { type Frame, isAckEliciting, readFrame } from "./frames/frame.ts";
import { RESET_STREAM_FRAME_TYPE } from "./frames/reset_stream.ts";
import { STOP_SENDING_FRAME_TYPE } from "./frames/stop_sending.ts";
import { STREAM_FRAME_TYPE } from "./frames/stream.ts";
import type { Framer } from "./framer.ts";
import { readPacketHeader } from "./packet.ts";
import type { Stream } from "./stream.ts";
import type { StreamMap } from "./stream_map.ts";
import { BufferReader, FrameDecodeError } from "./varint.ts";

export interface ReceivedPacket {
  packetNumber: number;
  frames: Frame[];
  ackEliciting: boolean;
}

/**
 * Decodes a received packet: undefined when the header is not ours (dropped silently), a TransportError
 * FRAME_ENCODING_ERROR when a frame is malformed (RFC 9000 §12.4: the peer broke the protocol).
 */
export function readPacket(data: Uint8Array): ReceivedPacket | undefined {
  const r = new BufferReader(data);
  let packetNumber: number;
  try {
    packetNumber = readPacketHeader(r).packetNumber;
  } catch {
    return undefined; // not ours or truncated
  }
  const frames: Frame[] = [];
  let ackEliciting = false;
  try {
    while (r.remaining > 0) {
      const f = readFrame(r);
      if (isAckEliciting(f)) ackEliciting = true;
      frames.push(f);
    }
  } catch (e) {
    if (e instanceof FrameDecodeError) {
      throw new TransportError(TransportErrorCode.FRAME_ENCODING_ERROR, e.message);
    }
    throw e;
  }
  return { packetNumber, frames, ackEliciting };
}

/** The connection state frames act on. */
export interface FrameHandlerHost {
  readonly streamMap: StreamMap;
  readonly connSend: SendCredit;
  readonly connRecv: ReceiveWindow;
  readonly framer: Framer;
  /** Stream bytes the application will never read count as consumed at once. */
  onConsumed(stream: Stream, n: number): void;
}

/** The connection-wide reactions to frames. */
export interface FrameEvents {
  /** An ACK frame: loss recovery, then what depends on it (pacing, packet size, a pending close). */
  onAck(ack: AckFrame, now: number): void;
  /** The peer's CONNECTION_CLOSE. */
  onPeerClose(code: number, reason: string): void;
}

/** Acts on one received frame. Throws TransportError when the peer broke the protocol. */
export function handleFrame(host: FrameHandlerHost, events: FrameEvents, f: Frame, now: number): void {
  switch (f.type) {
    case "padding":
    case "ping":
      return;
    case "ack":
      events.onAck(f, now);
      return;
    case "stream": {
      const s = host.streamMap.get(f.streamId, STREAM_FRAME_TYPE);
      if (s === undefined) return;
      const before = s.recv.window.highestReceived;
      s.onData(f.offset, f.data, f.fin);
      onStreamBytes(host, s, before);
      return;
    }
    case "reset_stream": {
      const s = host.streamMap.get(f.streamId, RESET_STREAM_FRAME_TYPE);
      if (s === undefined) return;
      const before = s.recv.window.highestReceived;
      s.onResetStream(f.errorCode, f.finalSize);
      onStreamBytes(host, s, before);
      return;
    }
    case "stop_sending":
      host.streamMap.get(f.streamId, STOP_SENDING_FRAME_TYPE)?.onStopSending(f.errorCode);
      return;
    case "max_data":
      if (host.connSend.update(f.maximumData)) {
        host.framer.onConnectionCreditRaised();
      }
      return;
    case "max_stream_data":
      host.streamMap.get(f.streamId, MAX_STREAM_DATA_FRAME_TYPE)?.onMaxStreamData(f.maximumStreamData);
      return;
    case "max_streams":
      host.streamMap.onMaxStreams(f.maximumStreams);
      return;
    case "connection_close":
      events.onPeerClose(f.errorCode, f.reason);
      return;
  }
}

/** Connection-level accounting of new stream bytes (RFC 9000 §4.1); discarded bytes count as consumed. */
function onStreamBytes(host: FrameHandlerHost, s: Stream, before: number): void {
  const added = s.recv.window.highestReceived - before;
  if (added <= 0) return;
  if (!host.connRecv.onReceived(host.connRecv.highestReceived + added)) {
    throw new TransportError(TransportErrorCode.FLOW_CONTROL_ERROR, "connection data exceeds MAX_DATA");
  }
  if (s.discarding) host.onConsumed(s, added);
}
