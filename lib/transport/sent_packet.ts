/** What the sender remembers about a packet until it is acknowledged or declared lost. */

/** A frame worth retransmitting (or acting on when acknowledged), as metadata rather than bytes. */
export type SentFrame =
  | { kind: "stream"; streamId: number; offset: number; length: number; fin: boolean }
  | { kind: "reset_stream"; streamId: number }
  | { kind: "stop_sending"; streamId: number }
  | { kind: "max_data" }
  | { kind: "max_stream_data"; streamId: number }
  | { kind: "max_streams" }
  | { kind: "ping" };

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
