/** RTT estimation (RFC 9002 §5): latest, minimum, smoothed and variance, with ack delay subtracted. */

/** Timer granularity (RFC 9002 §6.1.2, kGranularity). */
export const GRANULARITY_MS = 1;

export class RttEstimator {
  latestRtt = 0;
  minRtt = 0;
  smoothedRtt: number;
  rttvar: number;
  hasSample = false;

  constructor(readonly initialRtt: number) {
    // RFC 9002 §5.3: before the first sample.
    this.smoothedRtt = initialRtt;
    this.rttvar = initialRtt / 2;
  }

  /** RFC 9002 §5.3: folds one sample in; ackDelay is already capped at max_ack_delay by the caller. */
  update(latestRtt: number, ackDelay: number): void {
    this.latestRtt = latestRtt;
    if (!this.hasSample) {
      this.hasSample = true;
      this.minRtt = latestRtt;
      this.smoothedRtt = latestRtt;
      this.rttvar = latestRtt / 2;
      return;
    }
    this.minRtt = Math.min(this.minRtt, latestRtt);
    let adjusted = latestRtt;
    if (latestRtt >= this.minRtt + ackDelay) adjusted = latestRtt - ackDelay;
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.smoothedRtt - adjusted);
    this.smoothedRtt = 0.875 * this.smoothedRtt + 0.125 * adjusted;
  }

  /** RFC 9002 §6.2.1: the probe timeout before backoff. */
  pto(maxAckDelay: number): number {
    return this.smoothedRtt + Math.max(4 * this.rttvar, GRANULARITY_MS) + maxAckDelay;
  }
}
