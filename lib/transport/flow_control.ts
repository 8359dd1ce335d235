/**
 * Credit-based flow control (RFC 9000 §4): what the peer may send us (ReceiveWindow, with
 * window auto-tuning in the manner of quic-go) and what we may send it (SendCredit).
 */

/** Send a window update once this fraction of the window has been consumed since the last one. */
const UPDATE_THRESHOLD = 0.25;

export class ReceiveWindow {
  /** The highest offset the peer may send up to (the last limit advertised). */
  limit: number;
  /** Bytes the application has consumed. */
  consumed = 0;
  /** Highest offset received. */
  highestReceived = 0;
  #epochStart: number;
  #epochOffset = 0;

  constructor(public windowSize: number, readonly maxWindowSize: number, now: number) {
    this.limit = windowSize;
    this.#epochStart = now;
  }

  /** False when the peer overran its credit (RFC 9000 §4.1: FLOW_CONTROL_ERROR). */
  onReceived(endOffset: number): boolean {
    if (endOffset > this.limit) return false;
    if (endOffset > this.highestReceived) this.highestReceived = endOffset;
    return true;
  }

  /** The application consumed n bytes; returns a new limit to advertise when one is due. */
  onConsumed(n: number, now: number, smoothedRtt: number): number | undefined {
    this.consumed += n;
    if (this.limit - this.consumed > this.windowSize * (1 - UPDATE_THRESHOLD)) return undefined;
    this.#autoTune(now, smoothedRtt);
    this.limit = this.consumed + this.windowSize;
    return this.limit;
  }

  /**
   * Grows the window when the reader drained the last one in about two round trips or less: the window,
   * not the reader, is then the bottleneck.
   */
  #autoTune(now: number, smoothedRtt: number): void {
    const consumedInEpoch = this.consumed - this.#epochOffset;
    const elapsed = now - this.#epochStart;
    const fraction = consumedInEpoch / this.windowSize;
    if (this.windowSize < this.maxWindowSize && elapsed < 4 * fraction * smoothedRtt) {
      this.windowSize = Math.min(this.windowSize * 2, this.maxWindowSize);
    }
    this.#epochStart = now;
    this.#epochOffset = this.consumed;
  }

  /** Raises the window to at least `size` (the connection window follows its largest stream window). */
  ensureWindowSize(size: number): void {
    if (size > this.windowSize) this.windowSize = Math.min(size, this.maxWindowSize);
  }
}

export class SendCredit {
  /** Bytes sent (new data, not retransmissions). */
  used = 0;

  constructor(public limit: number) {}

  get available(): number {
    return this.limit - this.used;
  }

  /** The peer raised the limit (MAX_DATA / MAX_STREAM_DATA); lower values are stale and ignored. */
  update(limit: number): boolean {
    if (limit <= this.limit) return false;
    this.limit = limit;
    return true;
  }
}
