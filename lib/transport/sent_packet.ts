/** What the sender remembers about a packet until it is acknowledged or declared lost. */

/**
 * Who learns a sent frame's fate (quic-go's ackhandler frame handler): the frame's owner, which alone
 * decides what an acknowledgement means and what a loss re-queues (RFC 9000 §13.3: frames, not packets,
 * are retransmitted, with current values).
 */
export interface FrameFate {
  onAcked(f: SentFrame): void;
  onLost(f: SentFrame): void;
}

/** The fate of a frame nobody needs to hear about (PING: its loss is not repaired). */
export const IGNORED_FATE: FrameFate = { onAcked() {}, onLost() {} };

/** A sent frame as metadata rather than bytes, with the owner that learns its fate. */
export type SentFrame =
  & (
    | { kind: "stream"; streamId: number; offset: number; length: number; fin: boolean }
    | { kind: "reset_stream"; streamId: number }
    | { kind: "stop_sending"; streamId: number }
    | { kind: "max_data" }
    | { kind: "max_stream_data"; streamId: number }
    | { kind: "max_streams" }
    | { kind: "ping" }
  )
  & { readonly fate: FrameFate };

export const enum PacketState {
  Outstanding = 0,
  Acked = 1,
  Lost = 2,
}

export interface SentPacket {
  packetNumber: number;
  timeSent: number;
  /** Datagram size in bytes. */
  size: number;
  ackEliciting: boolean;
  /** Counted in bytesInFlight (RFC 9002 §2). */
  inFlight: boolean;
  /** A packet size probe: its loss says nothing about congestion (RFC 9000 §14.4). */
  isPmtuProbe: boolean;
  frames: SentFrame[];
  state: PacketState;
}
