/**
 * Decides when each host's certificate is ordered: missing ones at once, valid ones at their planned
 * renewal, failed ones after a backoff. At most `maxConcurrent` orders run at a time and order starts
 * are at least `minStartIntervalMs` apart (a start-up with many domains issues at a bounded rate).
 * One host never has two orders at once. Time comes from an injected clock.
 */
import { type Clock, systemClock, type TimerId } from "../log/clock.ts";
import { type Logger, silentLogger } from "../log/logger.ts";
import { type BackoffPolicy, DEFAULT_BACKOFF, plannedRenewal, retryDelay, type Validity } from "./renewal.ts";

export interface CertificateFacts extends Validity {
  serial: string;
}

/** What one renewal attempt came to. */
export type RenewOutcome =
  /** A new certificate was ordered and stored. */
  | { kind: "issued"; cert: CertificateFacts }
  /** A stored certificate (from an earlier run or another server) is still good; no order. */
  | { kind: "loaded"; cert: CertificateFacts }
  /** Another server holds the host's order lease; look again later. */
  | { kind: "busy" }
  /** The host is no longer served. */
  | { kind: "gone" };

/** A host's certificate as the admin API shows it. */
export interface CertificateState {
  hostname: string;
  /** pending (none yet), ordering, issued, renewing, failed (none and the last order failed), expired */
  status: "pending" | "ordering" | "issued" | "renewing" | "failed" | "expired";
  issued: boolean;
  serial: string | null;
  not_before: string | null;
  not_after: string | null;
  /** When the next order is planned (renewal, or a retry after a failure); null while ordering. */
  next_renewal: string | null;
  last_error: string | null;
  last_error_at: string | null;
  /** Consecutive failed orders. */
  failures: number;
}

export interface SchedulerOptions {
  /** Orders (or loads) the host's certificate; `forced` skips the "stored one is still good" check. */
  renew(hostname: string, forced: boolean): Promise<RenewOutcome>;
  clock?: Clock;
  /** Wall-clock time in epoch ms (certificate dates are wall-clock). */
  now?: () => number;
  random?: () => number;
  maxConcurrent?: number;
  minStartIntervalMs?: number;
  /** Longest sleep between two looks at a host (also keeps timers under setTimeout's 24.8-day limit). */
  checkIntervalMs?: number;
  /** Jitter added to each planned renewal. */
  renewalSpreadMs?: number;
  /** Wait before looking again when another server is ordering the host. */
  busyRetryMs?: number;
  backoff?: BackoffPolicy;
  logger?: Logger;
}

interface Entry {
  hostname: string;
  cert?: CertificateFacts;
  /** Planned renewal (epoch ms) of `cert`. */
  renewAt?: number;
  /** Planned retry after a failure or a busy lease (epoch ms). */
  retryAt?: number;
  timer?: TimerId;
  queued: boolean;
  forced: boolean;
  ordering: boolean;
  failures: number;
  lastError?: { message: string; at: number };
}

export interface RenewalScheduler {
  /** Starts looking after a host; `cert` is what is already stored for it. */
  track(hostname: string, cert?: CertificateFacts): void;
  /** Stops looking after a host; an order in flight finishes but its outcome is dropped. */
  untrack(hostname: string): void;
  /** Another server stored a newer certificate for the host: plan from it. */
  update(hostname: string, cert: CertificateFacts): void;
  /** Orders a new certificate now (after any order in flight for the host). */
  force(hostname: string): void;
  state(hostname: string): CertificateState | null;
  /** Hosts tracked. */
  hosts(): string[];
  /** Resolves when no order is queued or running (tests). */
  idle(): Promise<void>;
  close(): void;
}

const HOUR = 3_600_000;

/** Creates the scheduler; nothing runs until hosts are tracked. */
export function createRenewalScheduler(options: SchedulerOptions): RenewalScheduler {
  const clock = options.clock ?? systemClock;
  const now = options.now ?? (() => Date.now());
  const random = options.random ?? Math.random;
  const maxConcurrent = options.maxConcurrent ?? 2;
  const minStartIntervalMs = options.minStartIntervalMs ?? 1000;
  const checkIntervalMs = options.checkIntervalMs ?? 12 * HOUR;
  const spreadMs = options.renewalSpreadMs ?? HOUR;
  const busyRetryMs = options.busyRetryMs ?? 30_000;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const log = (options.logger ?? silentLogger).child({ component: "acme" });

  const entries = new Map<string, Entry>();
  const queue: Entry[] = [];
  let active = 0;
  let lastStart = -Infinity;
  let pumpTimer: TimerId | undefined;
  let closed = false;
  let idleWaiters: (() => void)[] = [];

  const settleIdle = () => {
    if (active === 0 && queue.length === 0) {
      for (const w of idleWaiters) w();
      idleWaiters = [];
    }
  };

  function clearTimer(e: Entry) {
    if (e.timer !== undefined) clock.clearTimeout(e.timer);
    e.timer = undefined;
  }

  function wakeAt(e: Entry, at: number) {
    clearTimer(e);
    if (closed) return;
    const delay = Math.max(0, Math.min(at - now(), checkIntervalMs));
    e.timer = clock.setTimeout(() => {
      e.timer = undefined;
      plan(e);
    }, delay);
  }

  /** Queues the host if it is due (or has no certificate), else sleeps until it is. */
  function plan(e: Entry) {
    if (closed || entries.get(e.hostname) !== e || e.ordering || e.queued) return;
    const at = e.retryAt ?? (e.cert ? e.renewAt! : -Infinity);
    if (now() >= at) enqueue(e, false);
    else wakeAt(e, at);
  }

  function enqueue(e: Entry, forced: boolean) {
    e.forced ||= forced;
    if (e.queued || closed) return;
    clearTimer(e);
    e.queued = true;
    queue.push(e);
    pump();
  }

  function pump() {
    if (closed) return;
    while (active < maxConcurrent && queue.length > 0) {
      const wait = lastStart + minStartIntervalMs - now();
      if (wait > 0) {
        if (pumpTimer === undefined) {
          pumpTimer = clock.setTimeout(() => {
            pumpTimer = undefined;
            pump();
          }, wait);
        }
        return;
      }
      const e = queue.shift()!;
      e.queued = false;
      if (entries.get(e.hostname) !== e) continue;
      lastStart = now();
      void run(e);
    }
    settleIdle();
  }

  async function run(e: Entry) {
    active++;
    e.ordering = true;
    const forced = e.forced;
    e.forced = false;
    let outcome: RenewOutcome | undefined;
    let error: Error | undefined;
    try {
      outcome = await options.renew(e.hostname, forced);
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    active--;
    e.ordering = false;
    if (entries.get(e.hostname) === e && !closed) settle(e, outcome, error, forced);
    pump();
  }

  function settle(e: Entry, outcome: RenewOutcome | undefined, error: Error | undefined, forced: boolean) {
    if (error || !outcome) {
      e.failures++;
      e.lastError = { message: error?.message ?? "no outcome", at: now() };
      const delay = retryDelay(e.failures, random, backoff);
      e.retryAt = now() + delay;
      log.warn(
        { domain: e.hostname, error: e.lastError.message, failures: e.failures, retry_in_ms: delay },
        "certificate order failed",
      );
    } else if (outcome.kind === "busy") {
      // A forced renewal is not lost while another server holds the lease.
      e.forced ||= forced;
      e.retryAt = now() + busyRetryMs;
      if (e.forced) {
        wakeAt(e, e.retryAt);
        return;
      }
    } else if (outcome.kind === "gone") {
      untrack(e.hostname);
      return;
    } else {
      setCert(e, outcome.cert);
      e.failures = 0;
      e.retryAt = undefined;
      e.lastError = undefined;
    }
    if (e.forced) enqueue(e, true);
    else plan(e);
  }

  function setCert(e: Entry, cert: CertificateFacts) {
    e.cert = cert;
    e.renewAt = plannedRenewal(cert, random, Math.min(spreadMs, (cert.notAfter - cert.notBefore) / 30));
  }

  function untrack(hostname: string) {
    const e = entries.get(hostname);
    if (!e) return;
    clearTimer(e);
    entries.delete(hostname);
    const i = queue.indexOf(e);
    if (i >= 0) queue.splice(i, 1);
    settleIdle();
  }

  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

  return {
    track(hostname, cert) {
      if (closed || entries.has(hostname)) return;
      const e: Entry = { hostname, queued: false, forced: false, ordering: false, failures: 0 };
      if (cert) setCert(e, cert);
      entries.set(hostname, e);
      plan(e);
    },
    untrack,
    update(hostname, cert) {
      const e = entries.get(hostname);
      if (!e || e.cert?.serial === cert.serial) return;
      setCert(e, cert);
      if (e.ordering || e.queued) return;
      e.failures = 0;
      e.retryAt = undefined;
      e.lastError = undefined;
      clearTimer(e);
      plan(e);
    },
    force(hostname) {
      const e = entries.get(hostname);
      if (!e) return;
      e.retryAt = undefined;
      if (e.ordering) e.forced = true;
      else enqueue(e, true);
    },
    state(hostname) {
      const e = entries.get(hostname);
      if (!e) return null;
      const t = now();
      const busy = e.ordering || e.queued;
      const status: CertificateState["status"] = e.ordering
        ? (e.cert ? "renewing" : "ordering")
        : e.cert
        ? (t >= e.cert.notAfter ? "expired" : "issued")
        : (e.failures > 0 ? "failed" : "pending");
      return {
        hostname,
        status,
        issued: e.cert !== undefined,
        serial: e.cert?.serial ?? null,
        not_before: iso(e.cert?.notBefore),
        not_after: iso(e.cert?.notAfter),
        next_renewal: busy ? null : iso(e.retryAt ?? e.renewAt),
        last_error: e.lastError?.message ?? null,
        last_error_at: iso(e.lastError?.at),
        failures: e.failures,
      };
    },
    hosts: () => [...entries.keys()],
    idle() {
      if (active === 0 && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    close() {
      closed = true;
      for (const e of entries.values()) clearTimer(e);
      if (pumpTimer !== undefined) clock.clearTimeout(pumpTimer);
      queue.length = 0;
      settleIdle();
    },
  };
}
