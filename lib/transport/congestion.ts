/**
 * Congestion control behind one interface (NewReno today, CUBIC or BBR later) and the pacer.
 * Windows are in bytes; `maxDatagramSize` follows packet size discovery.
 */

/** What loss recovery tells a congestion controller. */
export interface CongestionController {
  readonly congestionWindow: number;
  readonly slowStartThreshold: number;
  /** A packet counted in bytesInFlight was acknowledged; priorInFlight is bytesInFlight before the ACK. */
  onPacketAcked(bytes: number, timeSent: number, now: number, priorInFlight: number): void;
  /** A packet sent at timeSent was declared lost (RFC 9002 §7.3.2). */
  onCongestionEvent(timeSent: number, now: number): void;
  /** RFC 9002 §7.6.2: collapse to the minimum window. */
  onPersistentCongestion(): void;
  /** Packet size discovery changed the packet size. */
  setMaxDatagramSize(size: number): void;
}

/** RFC 9002 §7.2: the initial window. */
export function initialWindow(maxDatagramSize: number): number {
  return Math.min(10 * maxDatagramSize, Math.max(14720, 2 * maxDatagramSize));
}

/** NewReno (RFC 9002 §7.3 and Appendix B). */
export class NewReno implements CongestionController {
  congestionWindow: number;
  slowStartThreshold = Infinity;
  #maxDatagramSize: number;
  #congestionRecoveryStartTime = -Infinity;
  #bytesAckedInAvoidance = 0;

  constructor(maxDatagramSize: number) {
    this.#maxDatagramSize = maxDatagramSize;
    this.congestionWindow = initialWindow(maxDatagramSize);
  }

  get minimumWindow(): number {
    return 2 * this.#maxDatagramSize;
  }

  #inRecovery(timeSent: number): boolean {
    return timeSent <= this.#congestionRecoveryStartTime;
  }

  onPacketAcked(bytes: number, timeSent: number, _now: number, priorInFlight: number): void {
    if (this.#inRecovery(timeSent)) return;
    // RFC 9002 §7.8: do not grow a window the application is not using.
    if (2 * priorInFlight < this.congestionWindow) return;
    if (this.congestionWindow < this.slowStartThreshold) {
      this.congestionWindow += bytes; // RFC 9002 §7.3.1 slow start
      return;
    }
    // RFC 9002 §7.3.3 congestion avoidance: one datagram per window acknowledged.
    this.#bytesAckedInAvoidance += bytes;
    if (this.#bytesAckedInAvoidance >= this.congestionWindow) {
      this.#bytesAckedInAvoidance -= this.congestionWindow;
      this.congestionWindow += this.#maxDatagramSize;
    }
  }

  onCongestionEvent(timeSent: number, now: number): void {
    if (this.#inRecovery(timeSent)) return; // RFC 9002 §7.3.2: one reduction per round trip
    this.#congestionRecoveryStartTime = now;
    this.slowStartThreshold = Math.max(this.congestionWindow / 2, this.minimumWindow);
    this.congestionWindow = this.slowStartThreshold;
    this.#bytesAckedInAvoidance = 0;
  }

  onPersistentCongestion(): void {
    this.congestionWindow = this.minimumWindow;
    this.#congestionRecoveryStartTime = -Infinity;
  }

  setMaxDatagramSize(size: number): void {
    // Keep the window worth the same number of packets (the initial window is counted in packets too).
    const packets = this.congestionWindow / this.#maxDatagramSize;
    this.#maxDatagramSize = size;
    this.congestionWindow = Math.max(this.congestionWindow, Math.min(packets, 10) * size, this.minimumWindow);
  }
}

/** RFC 9002 §7.7: a token bucket that spreads a window over a smoothed RTT (N = 1.25). */
export class Pacer {
  #budget: number;
  #lastRefill: number;
  #rate = 0; // bytes per ms
  #maxBurst: number;

  /** `granularityMs`: how late the sender may resume after a wait; the bucket must cover it. */
  constructor(maxDatagramSize: number, now: number, readonly granularityMs = 4) {
    this.#maxBurst = 10 * maxDatagramSize;
    this.#budget = this.#maxBurst;
    this.#lastRefill = now;
  }

  /** Sets the rate from the window and the smoothed RTT. */
  update(congestionWindow: number, smoothedRtt: number, maxDatagramSize: number): void {
    this.#rate = (1.25 * congestionWindow) / Math.max(smoothedRtt, 0.01);
    // The sender resumes up to granularityMs late (timers are clamped to a few ms); the bucket covers that.
    this.#maxBurst = Math.max(4 * maxDatagramSize, this.#rate * this.granularityMs);
  }

  #refill(now: number): void {
    if (now > this.#lastRefill) {
      this.#budget = Math.min(this.#maxBurst, this.#budget + (now - this.#lastRefill) * this.#rate);
      this.#lastRefill = now;
    }
  }

  /** Milliseconds to wait before `bytes` may go out; 0 when now. */
  timeUntilSend(now: number, bytes: number): number {
    this.#refill(now);
    if (this.#budget >= bytes || this.#rate === 0) return 0;
    return (bytes - this.#budget) / this.#rate;
  }

  onPacketSent(now: number, bytes: number): void {
    this.#refill(now);
    this.#budget -= bytes;
  }
}
