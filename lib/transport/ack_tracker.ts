/**
 * The receiver's side of acknowledgements: which packet numbers arrived, when an ACK is due
 * (RFC 9000 §13.2.1–13.2.2), and the ACK frame that reports them.
 */
import type { AckFrame, AckRange } from "./frames/ack.ts";
import { RangeSet } from "./range_set.ts";

/** Older ranges are forgotten past this; a very late duplicate is then processed again, which is harmless. */
const MAX_TRACKED_RANGES = 64;
/** Ranges reported in one ACK frame. */
const MAX_ACK_RANGES = 32;

export class AckTracker {
  #received = new RangeSet();
  largestReceived = -1;
  #largestReceivedTime = 0;
  #ackElicitingSinceAck = 0;
  #somethingToAck = false;
  #ackNow = false;
  /** When a delayed ACK falls due, or undefined. */
  ackDeadline: number | undefined;

  constructor(readonly maxAckDelay: number, readonly ackElicitingThreshold: number) {}

  /**
   * Records a packet; false when it is a duplicate to drop. `ackDelay` (≤ maxAckDelay) is how long a lone
   * packet may wait: on fast paths a quarter RTT, so a tail packet's ACK is not held for a whole max_ack_delay.
   */
  onPacketReceived(
    packetNumber: number,
    ackEliciting: boolean,
    now: number,
    ackDelay = this.maxAckDelay,
  ): boolean {
    if (this.#received.has(packetNumber)) return false;
    const reordered = packetNumber < this.largestReceived;
    const gap = this.largestReceived >= 0 && packetNumber > this.largestReceived + 1;
    this.#received.add(packetNumber, packetNumber + 1);
    if (this.#received.count > MAX_TRACKED_RANGES) this.#received.removeFirst();
    if (packetNumber > this.largestReceived) {
      this.largestReceived = packetNumber;
      this.#largestReceivedTime = now;
    }
    this.#somethingToAck = true;
    if (!ackEliciting) return true;
    this.#ackElicitingSinceAck++;
    // RFC 9000 §13.2.1: acknowledge at once when packets arrive out of order, else every few packets.
    if (reordered || gap || this.#ackElicitingSinceAck >= this.ackElicitingThreshold) this.#ackNow = true;
    else if (this.ackDeadline === undefined) this.ackDeadline = now + Math.min(ackDelay, this.maxAckDelay);
    return true;
  }

  /** An ACK must go out now (alone if nothing else is sent). */
  ackDue(now: number): boolean {
    return this.#ackNow || (this.ackDeadline !== undefined && now >= this.ackDeadline);
  }

  /** There are unreported packets, worth piggybacking on any outgoing packet. */
  get hasNewPackets(): boolean {
    return this.#somethingToAck;
  }

  /** The ACK frame for everything received, newest ranges first. */
  buildAckFrame(now: number): AckFrame {
    const ranges: AckRange[] = [];
    for (let i = this.#received.count - 1; i >= 0 && ranges.length < MAX_ACK_RANGES; i--) {
      ranges.push({ smallest: this.#received.start(i), largest: this.#received.end(i) - 1 });
    }
    return { type: "ack", ackDelayUs: Math.max(0, (now - this.#largestReceivedTime) * 1000), ranges };
  }

  /** An ACK frame went out. */
  onAckSent(): void {
    this.#ackElicitingSinceAck = 0;
    this.#somethingToAck = false;
    this.#ackNow = false;
    this.ackDeadline = undefined;
  }
}
