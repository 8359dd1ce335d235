/**
 * Loss recovery (RFC 9002 §6, Appendix A): sent packets in packet-number order, ACK processing,
 * packet- and time-threshold loss detection, the probe timeout and persistent congestion.
 */
import type { CongestionController } from "./congestion.ts";
import { TransportError, TransportErrorCode } from "./errors.ts";
import { ACK_FRAME_TYPE, type AckFrame } from "./frames/ack.ts";
import { GRANULARITY_MS, type RttEstimator } from "./rtt.ts";
import { PacketState, type SentFrame, type SentPacket } from "./sent_packet.ts";

const NO_FRAMES: SentFrame[] = [];
/** What a resolved packet's slot holds until the array is compacted. */
const RELEASED: SentPacket = Object.freeze({
  packetNumber: -1,
  timeSent: 0,
  size: 0,
  ackEliciting: false,
  inFlight: false,
  isPmtuProbe: false,
  frames: NO_FRAMES,
  state: PacketState.Acked,
}) as SentPacket;

/** RFC 9002 §6.1.1 kPacketThreshold. */
export const PACKET_THRESHOLD = 3;
/** RFC 9002 §6.1.2 kTimeThreshold. */
export const TIME_THRESHOLD = 9 / 8;
/** RFC 9002 §7.6.1 kPersistentCongestionThreshold. */
export const PERSISTENT_CONGESTION_THRESHOLD = 3;

export interface RecoveryEvents {
  onPacketAcked(p: SentPacket): void;
  onPacketLost(p: SentPacket): void;
}

export class LossRecovery {
  largestAcked = -1;
  bytesInFlight = 0;
  ptoCount = 0;
  packetsLost = 0;
  #lossTime: number | undefined;
  #timeOfLastAckElicitingPacket = 0;
  #ackElicitingInFlight = 0;
  #firstRttSampleTime: number | undefined;
  /** Outstanding packets from #head on, in increasing packet number; acked or lost ones are skipped. */
  #packets: SentPacket[] = [];
  #head = 0;
  #largestSent = -1;

  constructor(
    readonly rtt: RttEstimator,
    readonly cc: CongestionController,
    readonly maxAckDelay: number,
    readonly events: RecoveryEvents,
  ) {}

  get outstandingCount(): number {
    return this.#packets.length - this.#head;
  }

  onPacketSent(p: SentPacket): void {
    this.#largestSent = p.packetNumber;
    if (!p.ackEliciting && !p.inFlight) return; // pure ACKs need no tracking
    this.#packets.push(p);
    if (p.inFlight) this.bytesInFlight += p.size;
    if (p.ackEliciting) {
      this.#ackElicitingInFlight++;
      this.#timeOfLastAckElicitingPacket = p.timeSent;
    }
  }

  #indexOf(packetNumber: number): number {
    let lo = this.#head;
    let hi = this.#packets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#packets[mid].packetNumber < packetNumber) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #resolve(p: SentPacket, state: PacketState): void {
    p.state = state;
    if (p.inFlight) this.bytesInFlight -= p.size;
    if (p.ackEliciting) this.#ackElicitingInFlight--;
  }

  /**
   * Drops resolved packets from the front. Their slots are released at once: a resolved packet's
   * frames reach their streams, and a window of them kept until a later compaction held every
   * finished request's objects for half a second, long enough for the young-generation GC to promote
   * them (a quarter of all allocation survived each scavenge; pauses of 5-13 ms every 0.1 s).
   */
  #trim(): void {
    const ps = this.#packets;
    let head = this.#head;
    while (head < ps.length && ps[head].state !== PacketState.Outstanding) {
      ps[head] = RELEASED;
      head++;
    }
    if (head === ps.length) {
      this.#packets = [];
      this.#head = 0;
    } else if (head > 64 && head * 2 > ps.length) {
      this.#packets = ps.slice(head);
      this.#head = 0;
    } else this.#head = head;
  }

  /** RFC 9002 §A.7 OnAckReceived. Throws TransportError for an ACK of a packet never sent. */
  onAckReceived(ack: AckFrame, now: number): void {
    const largest = ack.ranges[0].largest;
    if (largest > this.#largestSent) {
      throw new TransportError(
        TransportErrorCode.PROTOCOL_VIOLATION,
        `ACK of unsent packet ${largest}`,
        ACK_FRAME_TYPE,
      );
    }
    if (largest > this.largestAcked) this.largestAcked = largest;
    const priorInFlight = this.bytesInFlight;
    let largestNewlyAcked: SentPacket | undefined;
    let ackElicitingAcked = false;
    const acked: SentPacket[] = [];
    for (const range of ack.ranges) {
      const ps = this.#packets;
      for (let i = this.#indexOf(range.smallest); i < ps.length && ps[i].packetNumber <= range.largest; i++) {
        const p = ps[i];
        if (p.state !== PacketState.Outstanding) continue;
        this.#resolve(p, PacketState.Acked);
        acked.push(p);
        if (p.ackEliciting) ackElicitingAcked = true;
        if (largestNewlyAcked === undefined || p.packetNumber > largestNewlyAcked.packetNumber) {
          largestNewlyAcked = p;
        }
      }
    }
    if (largestNewlyAcked === undefined) return;
    // RFC 9002 §5.1: a sample only when the largest acknowledged is newly acknowledged and ack-eliciting.
    if (largestNewlyAcked.packetNumber === largest && ackElicitingAcked) {
      const ackDelay = Math.min(ack.ackDelayUs / 1000, this.maxAckDelay);
      this.rtt.update(Math.max(now - largestNewlyAcked.timeSent, 0.001), ackDelay);
      this.#firstRttSampleTime ??= now;
    }
    this.#detectLostPackets(now);
    for (const p of acked) {
      if (p.inFlight && !p.isPmtuProbe) this.cc.onPacketAcked(p.size, p.timeSent, now, priorInFlight);
      this.events.onPacketAcked(p);
      p.frames = NO_FRAMES; // their fates are done: the streams they name need not be kept
    }
    this.ptoCount = 0;
    this.#trim();
  }

  /** RFC 9002 §6.1 / §A.10 DetectAndRemoveLostPackets. */
  #detectLostPackets(now: number): void {
    this.#lossTime = undefined;
    const lossDelay = Math.max(
      TIME_THRESHOLD * Math.max(this.rtt.latestRtt, this.rtt.smoothedRtt),
      GRANULARITY_MS,
    );
    const lostSendTime = now - lossDelay;
    const ps = this.#packets;
    let largestLostTime: number | undefined;
    let runStart: number | undefined;
    let persistent = false;
    const pcDuration = this.rtt.pto(this.maxAckDelay) * PERSISTENT_CONGESTION_THRESHOLD;
    for (let i = this.#head; i < ps.length && ps[i].packetNumber <= this.largestAcked; i++) {
      const p = ps[i];
      if (p.state === PacketState.Acked) {
        runStart = undefined;
        continue;
      }
      if (p.state === PacketState.Lost) continue;
      if (p.timeSent <= lostSendTime || this.largestAcked >= p.packetNumber + PACKET_THRESHOLD) {
        this.#resolve(p, PacketState.Lost);
        this.packetsLost++;
        this.events.onPacketLost(p);
        p.frames = NO_FRAMES; // requeued by their owners; a late ACK of a lost packet is ignored
        if (p.isPmtuProbe) continue;
        largestLostTime = largestLostTime === undefined ? p.timeSent : Math.max(largestLostTime, p.timeSent);
        // RFC 9002 §7.6.2: ack-eliciting losses spanning the persistent congestion duration, none acked between.
        if (
          p.ackEliciting && this.#firstRttSampleTime !== undefined && p.timeSent > this.#firstRttSampleTime
        ) {
          runStart ??= p.timeSent;
          if (p.timeSent - runStart > pcDuration) persistent = true;
        }
      } else {
        const t = p.timeSent + lossDelay;
        this.#lossTime = this.#lossTime === undefined ? t : Math.min(this.#lossTime, t);
      }
    }
    if (largestLostTime !== undefined) this.cc.onCongestionEvent(largestLostTime, now);
    if (persistent) this.cc.onPersistentCongestion();
  }

  /** RFC 9002 §A.8 SetLossDetectionTimer: when the loss or probe timer fires, or undefined. */
  lossDetectionDeadline(): number | undefined {
    if (this.#lossTime !== undefined) return this.#lossTime;
    if (this.#ackElicitingInFlight === 0) return undefined;
    return this.#timeOfLastAckElicitingPacket + this.rtt.pto(this.maxAckDelay) * 2 ** this.ptoCount;
  }

  /** RFC 9002 §A.9 OnLossDetectionTimeout: true when probes must be sent (PTO), false after time-threshold loss. */
  onLossDetectionTimeout(now: number): boolean {
    if (this.#lossTime !== undefined) {
      this.#detectLostPackets(now);
      this.#trim();
      return false;
    }
    this.ptoCount++;
    return true;
  }

  /** Some outstanding ack-eliciting packet (not a size probe) is larger than `size` bytes. */
  hasOutstandingLargerThan(size: number): boolean {
    const ps = this.#packets;
    for (let i = this.#head; i < ps.length; i++) {
      const p = ps[i];
      if (p.state === PacketState.Outstanding && p.ackEliciting && !p.isPmtuProbe && p.size > size) {
        return true;
      }
    }
    return false;
  }

  /**
   * Declares every outstanding packet larger than `size` lost without a congestion response: the path
   * stopped carrying them (a black hole, RFC 8899 §4.3), which says nothing about congestion.
   */
  discardLargerThan(size: number): void {
    const ps = this.#packets;
    for (let i = this.#head; i < ps.length; i++) {
      const p = ps[i];
      if (p.state !== PacketState.Outstanding || p.size <= size) continue;
      this.#resolve(p, PacketState.Lost);
      this.packetsLost++;
      this.events.onPacketLost(p);
      p.frames = NO_FRAMES;
    }
    this.#trim();
  }

  /** The oldest outstanding ack-eliciting packets, whose frames a probe resends (RFC 9002 §6.2.4). */
  oldestOutstanding(max: number): SentPacket[] {
    const out: SentPacket[] = [];
    const ps = this.#packets;
    for (let i = this.#head; i < ps.length && out.length < max; i++) {
      if (ps[i].state === PacketState.Outstanding && ps[i].ackEliciting && ps[i].frames.length > 0) {
        out.push(ps[i]);
      }
    }
    return out;
  }
}
