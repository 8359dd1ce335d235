/**
 * Packet header: one type byte and the full packet number as a varint. DTLS already encrypts and
 * authenticates each datagram, so there is no header protection or connection id (cf. RFC 9000 §17.3).
 */
import { type Frame, readFrame, writeFrame } from "./frames/frame.ts";
import { BufferReader, BufferWriter, FrameDecodeError } from "./varint.ts";

/** First byte of every packet: a version marker, so a future format can coexist. */
export const PACKET_TYPE_V1 = 0x41;

export interface PacketHeader {
  packetNumber: number;
}
/** Writes the header; frames follow at w.pos. */
export function writePacketHeader(w: BufferWriter, packetNumber: number): void {
  w.uint8(PACKET_TYPE_V1);
  w.varint(packetNumber);
}

/** Reads the header, leaving r at the first frame. Throws FrameDecodeError. */
export function readPacketHeader(r: BufferReader): PacketHeader {
  const type = r.uint8();
  if (type !== PACKET_TYPE_V1) throw new FrameDecodeError(`unknown packet type 0x${type.toString(16)}`);
  const packetNumber = r.varint();
  if (r.remaining === 0) throw new FrameDecodeError("packet carries no frames");
  return { packetNumber };
}

/** Encodes a whole packet (tests and tools; the connection writes packets in place). */
export function encodePacket(packetNumber: number, frames: Frame[]): Uint8Array {
  const buf = new Uint8Array(65536);
  const w = new BufferWriter(buf);
  writePacketHeader(w, packetNumber);
  for (const f of frames) writeFrame(w, f);
  return buf.slice(0, w.pos);
}

/** Decodes a whole packet. Throws FrameDecodeError. */
export function decodePacket(bytes: Uint8Array): { packetNumber: number; frames: Frame[] } {
  const r = new BufferReader(bytes);
  const { packetNumber } = readPacketHeader(r);
  const frames: Frame[] = [];
  while (r.remaining > 0) frames.push(readFrame(r));
  return { packetNumber, frames };
}
