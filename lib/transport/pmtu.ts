/**
 * Packet size discovery after RFC 8899 (DPLPMTUD): start at a safe base size, probe larger sizes with
 * padded PING packets, raise the size when a probe is acknowledged. A lost probe is not congestion.
 * When the path shrinks under a live connection (a black hole, §4.3), fall back to the base size and
 * search again later, waiting longer after each fallback so an unstable path is not probed constantly.
 */

/** RFC 8899 §5.1.2 MAX_PROBES: failures at one size before it is considered too large. */
export const MAX_PROBES = 3;
/** Searching stops when the gap between confirmed and failed sizes is this small. */
export const SEARCH_GRANULARITY = 32;
/** RFC 9000 §14: every path carries 1200-byte datagrams. */
export const BASE_DATAGRAM_SIZE = 1200;
/** Wait before searching again after the first black hole; doubles after each one. */
export const BLACK_HOLE_BACKOFF_MS = 2_000;
/** RFC 8899 §5.1.1 PMTU_RAISE_TIMER: the longest wait before searching again. */
export const MAX_BLACK_HOLE_BACKOFF_MS = 600_000;

export class PathMtuDiscovery {
  /** The largest size confirmed: what ordinary packets use. */
  current: number;
  #high: number;
  #candidate: number | undefined;
  #failures = 0;
  #probeInFlight = false;
  readonly #ceiling: number;
  #resumeAt = -Infinity;
  #backoff = BLACK_HOLE_BACKOFF_MS;
  blackHoles = 0;

  constructor(maxDatagramSize: number, enabled: boolean) {
    this.current = Math.min(BASE_DATAGRAM_SIZE, maxDatagramSize);
    this.#high = enabled ? maxDatagramSize : this.current;
    this.#ceiling = this.#high;
    // Try the ceiling first (the usual answer on loopback and LANs), then bisect.
    this.#candidate = this.#high > this.current ? this.#high : undefined;
  }

  get searching(): boolean {
    return this.#candidate !== undefined;
  }

  /** The size to probe now, if a probe is due. */
  probeSize(now: number): number | undefined {
    return this.#probeInFlight || now < this.#resumeAt ? undefined : this.#candidate;
  }

  /**
   * RFC 8899 §4.3, §5.2 (black hole detected): packets larger than the base size stopped arriving. Back to
   * the base size; the search restarts from the ceiling after the back-off.
   */
  onBlackHole(now: number): void {
    this.blackHoles++;
    this.current = Math.min(BASE_DATAGRAM_SIZE, this.#ceiling);
    this.#high = this.#ceiling;
    this.#failures = 0;
    this.#probeInFlight = false;
    this.#resumeAt = now + this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, MAX_BLACK_HOLE_BACKOFF_MS);
    this.#candidate = this.#high > this.current ? this.#high : undefined;
  }

  onProbeSent(): void {
    this.#probeInFlight = true;
  }

  /** A probe was acknowledged: the size works. Returns the new size. */
  onProbeAcked(size: number): number {
    this.#probeInFlight = false;
    if (size > this.current) this.current = size;
    this.#failures = 0;
    this.#candidate = this.#next();
    return this.current;
  }

  /** A probe was lost (or the session refused its size); `definite` when the size is known to fail. */
  onProbeLost(size: number, definite = false): void {
    this.#probeInFlight = false;
    if (size <= this.current || size > this.#high) return;
    this.#failures++;
    if (definite || this.#failures >= MAX_PROBES) {
      this.#high = size - 1;
      this.#failures = 0;
      this.#candidate = this.#next();
    }
  }

  /** The session's own limit dropped below what we use (RFC 8899 §4.4: a PTB-like signal). */
  onSizeRefused(max: number): void {
    this.#high = Math.min(this.#high, max);
    this.current = Math.min(this.current, max);
    this.#candidate = undefined;
    this.#probeInFlight = false;
  }

  #next(): number | undefined {
    if (this.#high - this.current < SEARCH_GRANULARITY) return undefined;
    return Math.floor((this.current + this.#high + 1) / 2);
  }
}
