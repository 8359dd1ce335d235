/**
 * Packet size discovery after RFC 8899 (DPLPMTUD): start at a safe base size, probe larger sizes with
 * padded PING packets, raise the size when a probe is acknowledged. A lost probe is not congestion.
 */

/** RFC 8899 §5.1.2 MAX_PROBES: failures at one size before it is considered too large. */
export const MAX_PROBES = 3;
/** Searching stops when the gap between confirmed and failed sizes is this small. */
export const SEARCH_GRANULARITY = 32;
/** RFC 9000 §14: every path carries 1200-byte datagrams. */
export const BASE_DATAGRAM_SIZE = 1200;

export class PathMtuDiscovery {
  /** The largest size confirmed: what ordinary packets use. */
  current: number;
  #high: number;
  #candidate: number | undefined;
  #failures = 0;
  #probeInFlight = false;

  constructor(maxDatagramSize: number, enabled: boolean) {
    this.current = Math.min(BASE_DATAGRAM_SIZE, maxDatagramSize);
    this.#high = enabled ? maxDatagramSize : this.current;
    // Try the ceiling first (the usual answer on loopback and LANs), then bisect.
    this.#candidate = this.#high > this.current ? this.#high : undefined;
  }

  get searching(): boolean {
    return this.#candidate !== undefined;
  }

  /** The size to probe now, if a probe is due. */
  probeSize(): number | undefined {
    return this.#probeInFlight ? undefined : this.#candidate;
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
    if (size <= this.current) return;
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
