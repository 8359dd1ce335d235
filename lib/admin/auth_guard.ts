/**
 * Brute-force protection for the admin API's bearer key: each failed attempt takes a token from its
 * source address's bucket; an address with none left gets 429 and Retry-After without its key being
 * looked at. Failures are logged at warn with the address (one line a fail2ban filter can match).
 */
import { AddressBuckets, LogThrottle } from "../dtls/address_buckets.ts";
import type { Logger } from "../log/logger.ts";
import { silentLogger } from "../log/logger.ts";

export interface AuthGuardOptions {
  /** Failed attempts an address may make in a burst (default 10). */
  burst?: number;
  /** Failed attempts per second an address earns back (default 0.2: one every 5 s). */
  perSecond?: number;
  now?: () => number;
  logger?: Logger;
}

export interface AuthGuardStats {
  /** Requests with a missing or wrong key. */
  failures: number;
  /** Requests answered 429 because their address had used up its failures. */
  rateLimited: number;
}

export interface AuthGuard {
  /** Seconds the address must wait, or 0 when it may try. */
  retryAfter(address: string): number;
  /** Records a failed attempt. */
  failed(address: string, detail: { method: string; path: string; reason: string }): void;
  /** Records a 429 answer. */
  limited(address: string): void;
  stats(): AuthGuardStats;
}

/** The guard the admin API consults before and after checking a bearer key. */
export function createAuthGuard(o: AuthGuardOptions = {}): AuthGuard {
  const now = o.now ?? (() => performance.now());
  const buckets = new AddressBuckets({ burst: o.burst ?? 10, perSecond: o.perSecond ?? 0.2, now });
  const throttle = new LogThrottle(now, 10, 10_000);
  const log = (o.logger ?? silentLogger).child({ component: "admin" });
  const stats: AuthGuardStats = { failures: 0, rateLimited: 0 };
  return {
    retryAfter: (address) => buckets.retryAfterSeconds(address),
    failed(address, detail) {
      stats.failures++;
      buckets.take(address);
      const suppressed = throttle.allow(`fail|${address}`);
      if (suppressed >= 0) {
        log.warn({ address, ...detail, suppressed }, "admin: authentication failed");
      }
    },
    limited(address) {
      stats.rateLimited++;
      const suppressed = throttle.allow(`limit|${address}`);
      if (suppressed >= 0) {
        log.warn(
          { address, retry_after_s: buckets.retryAfterSeconds(address), suppressed },
          "admin: authentication rate limited",
        );
      }
    },
    stats: () => ({ ...stats }),
  };
}
