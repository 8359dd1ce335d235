/**
 * When certificates are renewed and how failed orders back off: pure functions of the certificate's
 * dates, the wall-clock time and a random source, so the schedule is tested without waiting.
 */

/** A certificate's validity, in epoch milliseconds. */
export interface Validity {
  notBefore: number;
  notAfter: number;
}

/** Renewal starts once a third of the lifetime is left: 30 days before expiry for 90-day certificates. */
export function renewalTime(v: Validity): number {
  return v.notAfter - (v.notAfter - v.notBefore) / 3;
}

/** Whether the certificate is due for renewal at `now`. */
export function isDue(v: Validity, now: number): boolean {
  return now >= renewalTime(v);
}

export interface BackoffPolicy {
  /** Delay after the first failure. */
  baseMs: number;
  /** Longest delay between attempts. */
  maxMs: number;
}

/** The default: 1 minute after the first failure, doubling, at most 6 hours apart. */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 60_000, maxMs: 6 * 3_600_000 };

/**
 * Delay before the next attempt after `failures` consecutive failures (≥ 1): exponential, capped,
 * then spread by ±20% so servers that failed together do not retry together.
 */
export function retryDelay(failures: number, random: () => number, policy = DEFAULT_BACKOFF): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (0.8 + 0.4 * random()));
}

/**
 * The moment this server will try to renew: the renewal time plus up to `spreadMs` of jitter, so
 * certificates issued together (a start-up with many domains) are not renewed in one burst.
 */
export function plannedRenewal(v: Validity, random: () => number, spreadMs: number): number {
  return renewalTime(v) + Math.round(random() * spreadMs);
}
