/**
 * What packet fates say about the packet size (RFC 8899): a size probe acknowledged or lost moves the
 * search, and large packets that keep getting lost while smaller ones arrive are a black hole (§4.3).
 * Fed by loss recovery's acked/lost hooks; needs no connection, no clock and no socket.
 */
import { BASE_DATAGRAM_SIZE, MAX_PROBES, type PathMtuDiscovery } from "./pmtu.ts";

/** Consecutive PTOs with packets above the base size outstanding that make a black hole suspect. */
export const BLACK_HOLE_PTO_COUNT = 2;

/** The facts about a sent packet this module reads (a SentPacket satisfies it). */
export interface PacketFate {
  readonly packetNumber: number;
  readonly timeSent: number;
  readonly size: number;
  readonly ackEliciting: boolean;
  readonly isPmtuProbe: boolean;
}

export class BlackHoleDetector {
  /** Packets above the base size lost since one was last acknowledged. */
  #largeLost = 0;
  #firstLargeLost = Infinity;
  #largeLostFrom = Infinity;
  #largeLostTo = -Infinity;
  #smallAckedSinceLargeLost = false;
  #largestLargeAcked = -1;

  constructor(readonly pmtu: PathMtuDiscovery) {}

  /** A packet was acknowledged. Returns the confirmed size when it was a size probe, else undefined. */
  onPacketAcked(p: PacketFate): number | undefined {
    if (p.isPmtuProbe) return this.pmtu.onProbeAcked(p.size);
    if (p.size > BASE_DATAGRAM_SIZE) {
      if (p.packetNumber > this.#largestLargeAcked) this.#largestLargeAcked = p.packetNumber;
      if (p.packetNumber > this.#firstLargeLost) this.#clear();
    } else if (p.ackEliciting && p.packetNumber > this.#firstLargeLost) {
      this.#smallAckedSinceLargeLost = true;
    }
    return undefined;
  }

  /** A packet was declared lost. */
  onPacketLost(p: PacketFate): void {
    if (p.isPmtuProbe) {
      this.pmtu.onProbeLost(p.size);
      return;
    }
    // Evidence only when no large packet sent after this one has been acknowledged.
    if (
      p.size > BASE_DATAGRAM_SIZE && this.pmtu.current > BASE_DATAGRAM_SIZE &&
      p.packetNumber > this.#largestLargeAcked
    ) {
      this.#largeLost++;
      if (p.packetNumber < this.#firstLargeLost) this.#firstLargeLost = p.packetNumber;
      if (p.timeSent < this.#largeLostFrom) this.#largeLostFrom = p.timeSent;
      if (p.timeSent > this.#largeLostTo) this.#largeLostTo = p.timeSent;
    }
  }

  /**
   * RFC 8899 §4.3: large packets keep getting lost (none acknowledged since) while smaller ones sent after
   * them arrive, and this lasts: the losses span at least a PTO's worth of sending (smoothed RTT plus
   * max_ack_delay). A random loss is cleared by the next large packet's acknowledgement; a burst of drops
   * from a full receive buffer (which also favours small packets) is over sooner.
   */
  detected(smoothedRtt: number, maxAckDelay: number): boolean {
    if (this.#largeLost < MAX_PROBES || !this.#smallAckedSinceLargeLost) return false;
    return this.#largeLostTo - this.#largeLostFrom >= smoothedRtt + maxAckDelay;
  }

  /** Back to the base size (the search resumes after a back-off); the evidence is spent. */
  fallBack(now: number): void {
    this.pmtu.onBlackHole(now);
    this.#clear();
  }

  /**
   * From the second PTO in a row with packets above the base size outstanding, PTO probes go out at the
   * base size: if they are acknowledged while the large ones are lost, that is a black hole.
   */
  probeAtBaseSize(ptoCount: number, largeOutstanding: () => boolean): boolean {
    return ptoCount >= BLACK_HOLE_PTO_COUNT && this.pmtu.current > BASE_DATAGRAM_SIZE && largeOutstanding();
  }

  #clear(): void {
    this.#largeLost = 0;
    this.#firstLargeLost = Infinity;
    this.#largeLostFrom = Infinity;
    this.#largeLostTo = -Infinity;
    this.#smallAckedSinceLargeLost = false;
  }
}
