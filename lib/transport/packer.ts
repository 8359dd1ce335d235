/**
 * Packet assembly: an ACK when one is owed, control frames, then STREAM frames from the round-robin
 * scheduler, filling the packet up to the current datagram size (RFC 9000 §12.4, §13).
 */
import type { AckTracker } from "./ack_tracker.ts";
import type { ReceiveWindow, SendCredit } from "./flow_control.ts";
import { ackFrameLength, writeAckFrame } from "./frames/ack.ts";
import { writeConnectionCloseFrame } from "./frames/connection_close.ts";
import { PING_FRAME_TYPE } from "./frames/frame.ts";
import { writeMaxDataFrame, writeMaxStreamDataFrame, writeMaxStreamsFrame } from "./frames/flow_control.ts";
import { writeResetStreamFrame } from "./frames/reset_stream.ts";
import { writeStopSendingFrame } from "./frames/stop_sending.ts";
import { writePacketHeader } from "./packet.ts";
import type { RoundRobinScheduler } from "./scheduler.ts";
import { PacketState, type SentFrame, type SentPacket } from "./sent_packet.ts";
import type { Stream } from "./stream.ts";
import type { StreamMap } from "./stream_map.ts";
import { BufferWriter } from "./varint.ts";

/** Generous upper bound of any one control frame (type + three 8-byte varints). */
const MAX_CONTROL_FRAME = 25;
/** Below this much room a STREAM frame is not worth starting. */
const MIN_STREAM_FRAME_ROOM = 16;

/** What the packer reads from and updates on the connection. */
export interface PackerHost {
  readonly acks: AckTracker;
  readonly scheduler: RoundRobinScheduler<Stream>;
  readonly controlStreams: Set<Stream>;
  readonly connBlocked: Stream[];
  readonly streamMap: StreamMap;
  readonly connSend: SendCredit;
  readonly connRecv: ReceiveWindow;
  needsMaxData: boolean;
  needsPing: boolean;
}

export interface PackedPacket {
  sent: SentPacket;
  bytes: Uint8Array;
}

export class Packer {
  #nextPacketNumber = 0;

  constructor(readonly host: PackerHost) {}

  hasControlFrames(): boolean {
    const h = this.host;
    return h.needsMaxData || h.needsPing || h.streamMap.needsMaxStreams || h.controlStreams.size > 0;
  }

  /**
   * Packets are assembled here and copied out at their exact length: sessions may keep the bytes (UDP
   * sends asynchronously), and a fresh buffer of the full datagram size for every small ACK costs more.
   */
  #scratch = new Uint8Array(0);

  #begin(size: number): { w: BufferWriter; packetNumber: number } {
    if (this.#scratch.length < size) this.#scratch = new Uint8Array(size);
    const w = new BufferWriter(this.#scratch.subarray(0, size));
    const packetNumber = this.#nextPacketNumber;
    writePacketHeader(w, packetNumber);
    return { w, packetNumber };
  }

  #finish(
    w: BufferWriter,
    packetNumber: number,
    now: number,
    frames: SentFrame[],
    ackEliciting: boolean,
    probe = false,
  ) {
    this.#nextPacketNumber++;
    const sent: SentPacket = {
      packetNumber,
      timeSent: now,
      size: w.pos,
      ackEliciting,
      inFlight: ackEliciting,
      isPmtuProbe: probe,
      frames,
      state: PacketState.Outstanding,
    };
    return { sent, bytes: w.bytes.slice(0, w.pos) };
  }

  /** Builds the next packet, or undefined when there is nothing to say. `ping` forces it ack-eliciting. */
  pack(now: number, size: number, allowData: boolean, ping: boolean): PackedPacket | undefined {
    const { w, packetNumber } = this.#begin(size);
    const headerEnd = w.pos;
    const h = this.host;
    if (h.acks.hasNewPackets) {
      const ack = h.acks.buildAckFrame(now);
      if (ackFrameLength(ack) <= w.remaining) {
        writeAckFrame(w, ack);
        h.acks.onAckSent();
      }
    }
    const frames: SentFrame[] = [];
    this.#writeControlFrames(w, frames);
    if (allowData) this.#writeStreamFrames(w, frames);
    if ((ping || h.needsPing) && frames.length === 0 && w.remaining > 0) {
      w.uint8(PING_FRAME_TYPE);
      frames.push({ kind: "ping" });
    }
    if (h.needsPing && frames.length > 0) h.needsPing = false;
    if (w.pos === headerEnd) return undefined;
    return this.#finish(w, packetNumber, now, frames, frames.length > 0);
  }

  /** A padded PING of exactly `size` bytes (RFC 8899 §4.1 probe packet). */
  packPmtuProbe(now: number, size: number): PackedPacket {
    const { w, packetNumber } = this.#begin(size);
    w.uint8(PING_FRAME_TYPE);
    w.bytes.fill(0, w.pos, size); // the rest is PADDING: zero bytes
    w.pos = size;
    return this.#finish(w, packetNumber, now, [{ kind: "ping" }], true, true);
  }

  /** A packet carrying only CONNECTION_CLOSE; it is never retransmitted. */
  packConnectionClose(now: number, size: number, code: number, reason: string): Uint8Array {
    const { w, packetNumber } = this.#begin(size);
    writeConnectionCloseFrame(w, { type: "connection_close", errorCode: code, frameType: 0, reason });
    return this.#finish(w, packetNumber, now, [], false).bytes;
  }

  #writeControlFrames(w: BufferWriter, frames: SentFrame[]): void {
    const h = this.host;
    if (h.needsMaxData && w.remaining >= MAX_CONTROL_FRAME) {
      writeMaxDataFrame(w, { type: "max_data", maximumData: h.connRecv.limit });
      frames.push({ kind: "max_data" });
      h.needsMaxData = false;
    }
    if (h.streamMap.needsMaxStreams && w.remaining >= MAX_CONTROL_FRAME) {
      writeMaxStreamsFrame(w, { type: "max_streams", maximumStreams: h.streamMap.advertisedMaxStreams });
      frames.push({ kind: "max_streams" });
      h.streamMap.needsMaxStreams = false;
    }
    for (const s of h.controlStreams) {
      if (w.remaining < 3 * MAX_CONTROL_FRAME) return;
      h.controlStreams.delete(s);
      if (s.needsResetStream) {
        s.needsResetStream = false;
        writeResetStreamFrame(w, {
          type: "reset_stream",
          streamId: s.id,
          errorCode: s.send.resetCode ?? 0,
          finalSize: s.send.sentOffset,
        });
        frames.push({ kind: "reset_stream", streamId: s.id });
      }
      if (s.needsStopSending) {
        s.needsStopSending = false;
        writeStopSendingFrame(w, { type: "stop_sending", streamId: s.id, errorCode: s.stopSendingCode ?? 0 });
        frames.push({ kind: "stop_sending", streamId: s.id });
      }
      if (s.needsMaxStreamData) {
        s.needsMaxStreamData = false;
        writeMaxStreamDataFrame(w, {
          type: "max_stream_data",
          streamId: s.id,
          maximumStreamData: s.recv.window.limit,
        });
        frames.push({ kind: "max_stream_data", streamId: s.id });
      }
    }
  }

  /** Round robin: each stream writes one frame per turn; one with more to send goes to the back. */
  #writeStreamFrames(w: BufferWriter, frames: SentFrame[]): void {
    const h = this.host;
    while (w.remaining >= MIN_STREAM_FRAME_ROOM) {
      const s = h.scheduler.pop();
      if (s === undefined) return;
      const connAvailable = h.connSend.available;
      if (!s.send.hasData(connAvailable)) {
        if (s.send.blockedOnConnection(connAvailable)) h.connBlocked.push(s);
        continue;
      }
      const meta = s.send.writeFrame(w, s.id, w.remaining, connAvailable);
      if (meta === undefined) {
        h.scheduler.pushFront(s);
        return;
      }
      h.connSend.used += meta.newBytes;
      frames.push({
        kind: "stream",
        streamId: s.id,
        offset: meta.offset,
        length: meta.length,
        fin: meta.fin,
      });
      if (s.send.hasData(h.connSend.available)) h.scheduler.push(s);
      else if (s.send.blockedOnConnection(h.connSend.available)) h.connBlocked.push(s);
    }
  }
}
