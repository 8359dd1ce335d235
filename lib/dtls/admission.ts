/**
 * Who may start a DTLS handshake, and what it may hold: the per-address budgets checked before any
 * cookie or crypto work (ClientHellos per second, failed handshakes per second), the bound on
 * handshakes in progress per address and overall, and the eviction that keeps a flood from many
 * addresses from holding a legitimate client off. Owns the table of handshakes in progress.
 */
import type { Logger } from "../log/logger.ts";
import { AddressBuckets, LogThrottle } from "./address_buckets.ts";
import type { DtlsServerLimits } from "./limits.ts";

export interface AdmissionStats {
  /** Handshakes in progress. */
  handshakes: number;
  failed: number;
  /** ClientHellos dropped by the per-address budgets. */
  rateLimited: number;
  /** Half-open handshakes dropped to make room for a less busy address. */
  evicted: number;
}

export class HandshakeAdmission {
  /** Keys (ip|port) of the handshakes in progress per IP, oldest first. */
  readonly #inProgress = new Map<string, Set<string>>();
  readonly #hellos: AddressBuckets;
  readonly #failures: AddressBuckets;
  readonly #logThrottle: LogThrottle;
  readonly #limits: Required<DtlsServerLimits>;
  readonly #log: Logger;
  #count = 0;
  #failed = 0;
  #rateLimited = 0;
  #evicted = 0;

  constructor(limits: Required<DtlsServerLimits>, now: () => number, log: Logger) {
    this.#limits = limits;
    this.#log = log;
    this.#hellos = new AddressBuckets({ burst: limits.helloBurst, perSecond: limits.helloPerSecond, now });
    this.#failures = new AddressBuckets({
      burst: limits.failureBurst,
      perSecond: limits.failurePerSecond,
      now,
    });
    this.#logThrottle = new LogThrottle(now);
  }

  /** Handshakes in progress. */
  get count(): number {
    return this.#count;
  }

  stats(): AdmissionStats {
    return {
      handshakes: this.#count,
      failed: this.#failed,
      rateLimited: this.#rateLimited,
      evicted: this.#evicted,
    };
  }

  /** Whether a ClientHello from `ip` is worth looking at: its failure budget and hello rate allow it. */
  withinRate(ip: string): boolean {
    if (this.#failures.allows(ip) && this.#hellos.take(ip)) return true;
    this.#rateLimited++;
    const suppressed = this.#logThrottle.allow(`limit|${ip}`);
    if (suppressed >= 0) {
      this.#log.warn(
        { address: ip, suppressed, retry_after_s: this.#failures.retryAfterSeconds(ip) },
        "dtls: handshakes from this address are rate limited",
      );
    }
    return false;
  }

  /**
   * Whether a new handshake from `ip` fits. `replacing`: it takes the place of one of that address's
   * handshakes; `associations`: handshakes and sessions besides the one it replaces. With every slot
   * taken, `evict` ends the oldest handshake of the busiest address if that address holds more than
   * this one would.
   */
  admit(ip: string, replacing: boolean, associations: number, evict: (key: string) => void): boolean {
    const mine = replacing ? 1 : 0;
    const perIp = (this.#inProgress.get(ip)?.size ?? 0) - mine;
    if (perIp >= this.#limits.maxHandshakesPerAddress || associations >= this.#limits.maxSessions) {
      return false;
    }
    if (this.#count - mine < this.#limits.maxHandshakes) return true;
    let busiest: Set<string> | undefined;
    for (const keys of this.#inProgress.values()) {
      if (busiest === undefined || keys.size > busiest.size) busiest = keys;
    }
    if (busiest === undefined || busiest.size <= perIp + 1) return false;
    this.#evicted++;
    evict(busiest.values().next().value as string);
    return this.#count - mine < this.#limits.maxHandshakes;
  }

  /** A handshake started. */
  started(ip: string, key: string): void {
    this.#count++;
    let keys = this.#inProgress.get(ip);
    if (keys === undefined) this.#inProgress.set(ip, keys = new Set());
    keys.add(key);
  }

  /** A handshake ended, either way. */
  ended(ip: string, key: string): void {
    const keys = this.#inProgress.get(ip);
    if (keys === undefined || !keys.delete(key)) return;
    this.#count--;
    if (keys.size === 0) this.#inProgress.delete(ip);
  }

  /** Charges a failure to the address's budget; logs it at warn (fail2ban-ready), at a bounded rate. */
  failed(ip: string, key: string, identity: string | undefined, reason: string, quiet: boolean): void {
    this.#failed++;
    if (quiet) return;
    this.#failures.take(ip);
    const suppressed = this.#logThrottle.allow(`fail|${ip}`);
    if (suppressed < 0) return;
    this.#log.warn(
      { address: ip, peer: key, identity: identity ?? null, reason, suppressed },
      "dtls: handshake failed",
    );
  }
}
