/**
 * Per-client token buckets for a domain's rate limit: `perSecond` tokens a second up to `burst`.
 * Memory stays bounded: a bucket idle long enough to be full again is the same as no bucket and is
 * dropped; past `maxBuckets` the least recently used goes (that client starts with a full bucket).
 */

export interface RateLimiter {
  /** Takes a token for `key` at `now` (ms); when none is left, how long until one is. */
  take(key: string, now: number): { ok: true } | { ok: false; retryAfterMs: number };
  /** Buckets held now. */
  size(): number;
}

interface Bucket {
  tokens: number;
  last: number;
}

/** How many old buckets each call looks at for idleness: amortised O(1) cleanup. */
const SWEEP_PER_CALL = 4;

/** Creates a limiter; `perSecond` > 0, `burst` ≥ 1. */
export function createRateLimiter(perSecond: number, burst: number, maxBuckets = 10_000): RateLimiter {
  // Map order is insertion order; a touched bucket is re-inserted, so the first entries are the stalest.
  const buckets = new Map<string, Bucket>();
  const refillMs = (burst / perSecond) * 1000;
  const sweep = (now: number) => {
    let looked = 0;
    for (const [key, b] of buckets) {
      if (looked++ >= SWEEP_PER_CALL) break;
      if (now - b.last >= refillMs) buckets.delete(key);
      else break;
    }
    while (buckets.size > maxBuckets) buckets.delete(buckets.keys().next().value!);
  };
  return {
    take(key, now) {
      sweep(now);
      const b = buckets.get(key) ?? { tokens: burst, last: now };
      buckets.delete(key);
      b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.last) * perSecond) / 1000);
      b.last = now;
      buckets.set(key, b);
      if (buckets.size > maxBuckets) buckets.delete(buckets.keys().next().value!);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterMs: Math.ceil(((1 - b.tokens) / perSecond) * 1000) };
    },
    size: () => buckets.size,
  };
}
