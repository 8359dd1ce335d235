/** ACK frame (RFC 9000 §19.3): the largest acknowledged packet, the ack delay and ranges, newest first. */
import { type BufferReader, type BufferWriter, FrameDecodeError, varintLength } from "../varint.ts";

export const ACK_FRAME_TYPE = 0x02;
/** ack_delay_exponent (RFC 9000 §18.2): the delay travels in units of 2^3 µs. */
export const ACK_DELAY_EXPONENT = 3;

/** A closed interval of packet numbers. */
export interface AckRange {
  smallest: number;
  largest: number;
}

export interface AckFrame {
  type: "ack";
  /** Microseconds the receiver held the largest packet before acknowledging it. */
  ackDelayUs: number;
  /** Disjoint ranges in descending order; ranges[0].largest is largestAcked. */
  ranges: AckRange[];
}

/** Encoded size of an ACK frame. */
export function ackFrameLength(f: AckFrame): number {
  const first = f.ranges[0];
  let n = 1 + varintLength(first.largest) + varintLength(f.ackDelayUs >>> ACK_DELAY_EXPONENT) +
    varintLength(f.ranges.length - 1) + varintLength(first.largest - first.smallest);
  for (let i = 1; i < f.ranges.length; i++) {
    const r = f.ranges[i];
    n += varintLength(f.ranges[i - 1].smallest - r.largest - 2) + varintLength(r.largest - r.smallest);
  }
  return n;
}

/** Writes an ACK frame. */
export function writeAckFrame(w: BufferWriter, f: AckFrame): void {
  const first = f.ranges[0];
  w.uint8(ACK_FRAME_TYPE);
  w.varint(first.largest);
  w.varint(Math.floor(f.ackDelayUs) >>> ACK_DELAY_EXPONENT);
  w.varint(f.ranges.length - 1);
  w.varint(first.largest - first.smallest);
  for (let i = 1; i < f.ranges.length; i++) {
    const r = f.ranges[i];
    w.varint(f.ranges[i - 1].smallest - r.largest - 2);
    w.varint(r.largest - r.smallest);
  }
}

/** Reads an ACK frame whose type byte was consumed. */
export function readAckFrame(r: BufferReader): AckFrame {
  const largest = r.varint();
  const ackDelayUs = r.varint() * (1 << ACK_DELAY_EXPONENT);
  const count = r.varint();
  const firstLen = r.varint();
  if (firstLen > largest) {
    throw new FrameDecodeError(`ACK first range ${firstLen} exceeds largest ${largest}`);
  }
  // Each further range takes at least two bytes, so a bogus count fails on bounds, not on memory.
  if (count > r.remaining / 2) throw new FrameDecodeError(`ACK range count ${count} exceeds the packet`);
  const ranges: AckRange[] = [{ smallest: largest - firstLen, largest }];
  let smallest = largest - firstLen;
  for (let i = 0; i < count; i++) {
    const gap = r.varint();
    const len = r.varint();
    const hi = smallest - gap - 2;
    const lo = hi - len;
    if (hi < 0 || lo < 0) throw new FrameDecodeError("ACK range below packet number 0");
    ranges.push({ smallest: lo, largest: hi });
    smallest = lo;
  }
  return { type: "ack", ackDelayUs, ranges };
}
