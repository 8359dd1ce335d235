/**
 * Token buckets per source address, for rate limits on unauthenticated work (DTLS handshakes,
 * admin API bearer attempts). Bounded: at most `maxAddresses` buckets; a full bucket is the same as
 * no bucket, so the fullest ones are forgotten first when the table overflows.
 */

export interface BucketOptions {
  /** Tokens an address starts with and can save up (the burst). */
  burst: number;
  /** Tokens added per second. */
  perSecond: number;
  /** Most addresses tracked at once (default 65 536). */
  maxAddresses?: number;
  /** Milliseconds, monotonic. */
  now: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-address token buckets with lazy refill. */
export class AddressBuckets {
  readonly #o: Required<BucketOptions>;
  readonly #buckets = new Map<string, Bucket>();

  constructor(o: BucketOptions) {
    this.#o = { maxAddresses: 65_536, ...o };
  }

  /** Tokens the address has now (fractional). */
  tokens(address: string): number {
    const b = this.#buckets.get(address);
    return b === undefined ? this.#o.burst : this.#refill(b);
  }

  /** Whether the address has at least one token, without taking it. */
  allows(address: string): boolean {
    return this.tokens(address) >= 1;
  }

  /** Takes one token; false (nothing taken) when the address has none. */
  take(address: string): boolean {
    let b = this.#buckets.get(address);
    if (b === undefined) {
      this.#makeRoom();
      b = { tokens: this.#o.burst, at: this.#o.now() };
      this.#buckets.set(address, b);
    } else this.#refill(b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Seconds until the address has a token again (0 when it has one). */
  retryAfterSeconds(address: string): number {
    const missing = 1 - this.tokens(address);
    return missing <= 0 ? 0 : Math.ceil(missing / this.#o.perSecond);
  }

  /** Addresses tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  #refill(b: Bucket): number {
    const now = this.#o.now();
    b.tokens = Math.min(this.#o.burst, b.tokens + ((now - b.at) / 1000) * this.#o.perSecond);
    b.at = now;
    return b.tokens;
  }

  #makeRoom(): void {
    if (this.#buckets.size < this.#o.maxAddresses) return;
    for (const [address, b] of this.#buckets) {
      if (this.#refill(b) >= this.#o.burst) this.#buckets.delete(address);
    }
    // Everyone is in debt: drop the oldest entry (Map order) rather than grow without bound.
    if (this.#buckets.size >= this.#o.maxAddresses) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
  }
}

/**
 * At most `perWindow` log lines per key per window, and a count of the ones held back, so a flood
 * cannot flood the log too. `allow` returns the number suppressed since the last line, or -1 to stay quiet.
 */
export class LogThrottle {
  readonly #seen = new Map<string, { start: number; count: number; suppressed: number }>();
  constructor(
    private readonly now: () => number,
    private readonly perWindow = 5,
    private readonly windowMs = 10_000,
    private readonly maxKeys = 4096,
  ) {}

  /** -1: drop this line; otherwise log it, with this many lines suppressed before it. */
  allow(key: string): number {
    const now = this.now();
    let e = this.#seen.get(key);
    if (e === undefined || now - e.start >= this.windowMs) {
      const suppressed = e?.suppressed ?? 0;
      if (e === undefined && this.#seen.size >= this.maxKeys) this.#seen.clear();
      e = { start: now, count: 0, suppressed: 0 };
      this.#seen.set(key, e);
      e.count = 1;
      return suppressed;
    }
    if (e.count < this.perWindow) {
      e.count++;
      return 0;
    }
    e.suppressed++;
    return -1;
  }
}
