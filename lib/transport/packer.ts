/**
 * Packet assembly: an ACK when one is owed, control frames, then STREAM frames, both from the framer,
 * filling the packet up to the current datagram size (RFC 9000 §12.4, §13).
 */
import type { AckTracker } from "./ack_tracker.ts";
import { ackFrameLength, writeAckFrame } from "./frames/ack.ts";
import { writeConnectionCloseFrame } from "./frames/connection_close.ts";
import { PING_FRAME_TYPE } from "./frames/frame.ts";
import type { Framer } from "./framer.ts";
import { writePacketHeader } from "./packet.ts";
import { IGNORED_FATE, PacketState, type SentFrame, type SentPacket } from "./sent_packet.ts";
import { BufferWriter } from "./varint.ts";

/** What the packer reads from and updates on the connection. */
export interface PackerHost {
  readonly acks: AckTracker;
  /** The source of control and STREAM frames. */
  readonly framer: Framer;
}

export interface PackedPacket {
  sent: SentPacket;
  bytes: Uint8Array;
}

/**
 * Packets are assembled here and copied out at their exact length: sessions may keep the bytes (UDP
 * sends asynchronously), and a fresh buffer of the full datagram size for every small ACK costs more.
 * One buffer for every connection of the process: assembly is synchronous (begin → frames → copy
 * out, no await between), so connections never share it at the same time; one per connection cost
 * 16 KB of each idle session (issue 13, measured with scripts/bench/heap_diff.ts).
 */
let scratch = new Uint8Array(0);

export class Packer {
  #nextPacketNumber = 0;

  constructor(readonly host: PackerHost) {}

  hasControlFrames(): boolean {
    return this.host.framer.hasControlFrames();
  }

  #begin(size: number): { w: BufferWriter; packetNumber: number } {
    if (scratch.length < size) scratch = new Uint8Array(size);
    const w = new BufferWriter(scratch.subarray(0, size));
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
    h.framer.writeControlFrames(w, frames);
    if (allowData) h.framer.writeStreamFrames(w, frames);
    if ((ping || h.framer.pingPending) && frames.length === 0 && w.remaining > 0) {
      w.uint8(PING_FRAME_TYPE);
      frames.push({ kind: "ping", fate: IGNORED_FATE });
    }
    if (frames.length > 0) h.framer.onAckElicitingSent();
    if (w.pos === headerEnd) return undefined;
    return this.#finish(w, packetNumber, now, frames, frames.length > 0);
  }

  /** A padded PING of exactly `size` bytes (RFC 8899 §4.1 probe packet). */
  packPmtuProbe(now: number, size: number): PackedPacket {
    const { w, packetNumber } = this.#begin(size);
    w.uint8(PING_FRAME_TYPE);
    w.bytes.fill(0, w.pos, size); // the rest is PADDING: zero bytes
    w.pos = size;
    return this.#finish(w, packetNumber, now, [{ kind: "ping", fate: IGNORED_FATE }], true, true);
  }

  /** A packet carrying only CONNECTION_CLOSE; it is never retransmitted. */
  packConnectionClose(now: number, size: number, code: number, reason: string): Uint8Array {
    const { w, packetNumber } = this.#begin(size);
    writeConnectionCloseFrame(w, { type: "connection_close", errorCode: code, frameType: 0, reason });
    return this.#finish(w, packetNumber, now, [], false).bytes;
  }
}
