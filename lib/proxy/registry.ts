/**
 * Live tunnel sessions by domain. A domain may have several sessions (several clients, or a
 * reconnect overlapping the old one); requests rotate among the live ones whose announced
 * service prefixes cover the path.
 *
 * Liveness: the transport notices a vanished client (killed, network gone) only at its idle
 * timeout (30 s), and until then requests routed to it wait. So while a session that can answer
 * PING carries requests, it is probed: a PING every PROBE_INTERVAL_MS, and a session that leaves
 * one unanswered for PROBE_TIMEOUT_MS (or 8 smoothed RTTs, if more) is aborted. Its requests then
 * fail as dropped (bodiless ones are retried on another session by the gateway) within seconds.
 */
import { type Clock, systemClock } from "../log/clock.ts";
import type { TransportConnection } from "../transport/types.ts";
import type { ControlChannel } from "./control.ts";
import { longestPrefix } from "./prefix.ts";

export interface TunnelSession {
  id: string;
  domain: string;
  remoteAddress: string;
  connectedAt: Date;
  requestsServed: number;
  /** Path prefixes the client announced in HELLO. */
  services: string[];
  connection: TransportConnection;
  /** The control stream, used to say GOODBYE. */
  control?: ControlChannel;
  /** The carrier: DTLS over UDP, or the TLS-over-TCP fallback (absent: udp). */
  carrier?: "udp" | "tcp";
}

export type RouteResult =
  | { kind: "ok"; session: TunnelSession; prefix: string }
  /** No live session for the domain (502 "tunnel offline"). */
  | { kind: "offline" }
  /** Live sessions exist but none announced a prefix covering the path (404). */
  | { kind: "no_service" };

export type SessionCountListener = (domain: string, count: number) => void;

export interface RegistryOptions {
  /** Times the liveness probes and the leave grace (default: the real clock; tests drive a manual one). */
  clock?: Clock;
}

const normalize = (domain: string) => domain.toLowerCase().replace(/\.$/, "");

/** Pause between liveness probes of a session carrying requests. */
export const PROBE_INTERVAL_MS = 1000;
/** Longest wait for a PONG before the session is considered gone. */
export const PROBE_TIMEOUT_MS = 4000;
/** How long a client that said GOODBYE may keep requests unanswered before its session is aborted. */
export const LEAVE_GRACE_MS = PROBE_INTERVAL_MS + PROBE_TIMEOUT_MS;
/** Longest wait for the PONG of a session suspected stale because a newer one arrived. */
export const SUSPECT_TIMEOUT_MS = 750;

/** True while a session has streams open besides its control stream. */
function busy(session: TunnelSession): boolean {
  try {
    return session.connection.stats().openStreams > 1;
  } catch {
    return false;
  }
}

function rttMs(session: TunnelSession): number {
  try {
    return session.connection.stats().smoothedRttMs;
  } catch {
    return 0;
  }
}

/** Domain → live sessions, routed round-robin by path, and a listener for count changes. */
export class SessionRegistry {
  #byDomain = new Map<string, TunnelSession[]>();
  #byId = new Map<string, TunnelSession>();
  #dead = new Set<string>();
  #cursor = new Map<string, number>();
  #listeners = new Set<SessionCountListener>();
  #probing = new Set<string>();
  /** Sessions being probed because a newer session of their domain arrived; routed to last. */
  #suspect = new Set<string>();
  #ended = new WeakSet<TunnelSession>();
  /** The clock of the liveness probes; the acceptor gives it to each session's control channel too. */
  readonly clock: Clock;

  constructor(options: RegistryOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  /** Registers a session; it is removed by itself when its connection closes. */
  add(session: TunnelSession): void {
    if (this.#byId.has(session.id)) throw new Error(`session ${session.id} is already registered`);
    const domain = normalize(session.domain);
    this.#byId.set(session.id, session);
    const list = this.#byDomain.get(domain) ?? [];
    list.push(session);
    this.#byDomain.set(domain, list);
    const ended = () => {
      this.#ended.add(session);
      this.remove(session.id);
    };
    session.connection.closed.then(ended, ended);
    this.#emit(domain);
  }

  /** Unregisters a session; false if it was not registered. */
  remove(id: string): boolean {
    const session = this.#byId.get(id);
    if (!session) return false;
    const domain = normalize(session.domain);
    this.#byId.delete(id);
    this.#dead.delete(id);
    this.#suspect.delete(id);
    const list = (this.#byDomain.get(domain) ?? []).filter((s) => s.id !== id);
    if (list.length > 0) this.#byDomain.set(domain, list);
    else {
      this.#byDomain.delete(domain);
      this.#cursor.delete(domain);
    }
    this.#emit(domain);
    this.#reapIfLeft(session);
    return true;
  }

  /**
   * A session unregistered while its connection is still open (the client said GOODBYE) keeps
   * the requests it carries; if it has not closed LEAVE_GRACE_MS later, it is aborted so that they
   * fail (bodiless ones are retried elsewhere) rather than wait for the transport's idle timeout.
   */
  #reapIfLeft(session: TunnelSession): void {
    if (!session.control || this.#ended.has(session) || !busy(session)) return;
    const clock = this.clock;
    const timer = clock.setTimeout(() => {
      if (!this.#ended.has(session)) {
        session.connection.abort(0, "the client left with requests unanswered");
      }
    }, LEAVE_GRACE_MS);
    const clear = () => clock.clearTimeout(timer);
    session.connection.closed.then(clear, clear);
  }

  get(id: string): TunnelSession | undefined {
    return this.#byId.get(id);
  }

  /** Live sessions of a domain (all domains when omitted). */
  list(domain?: string): TunnelSession[] {
    const all = domain === undefined
      ? [...this.#byId.values()]
      : (this.#byDomain.get(normalize(domain)) ?? []);
    return all.filter((s) => !this.#dead.has(s.id));
  }

  /** Number of live sessions of a domain (all domains when omitted). */
  count(domain?: string): number {
    return this.list(domain).length;
  }

  /** The next live session of a domain whose announced services cover `path`. */
  route(domain: string, path: string): RouteResult {
    const d = normalize(domain);
    if (this.list(d).length === 0) return { kind: "offline" };
    const prefixOf = new Map<string, string>();
    const session = this.#rotate(d, (s) => {
      const prefix = longestPrefix(s.services, path, (p) => p);
      if (prefix === undefined) return false;
      prefixOf.set(s.id, prefix);
      return true;
    });
    if (session) this.#watch(session);
    return session ? { kind: "ok", session, prefix: prefixOf.get(session.id)! } : { kind: "no_service" };
  }

  /** Probes a session while it carries requests; aborts it when a PING goes unanswered. */
  #watch(session: TunnelSession): void {
    const control = session.control;
    if (!control?.canPing || this.#probing.has(session.id)) return;
    this.#probing.add(session.id);
    const live = () => this.#byId.get(session.id) === session && !this.#dead.has(session.id);
    const gone = new AbortController();
    session.connection.closed.then(() => gone.abort(), () => gone.abort());
    const clock = this.clock;
    const pause = () =>
      new Promise<void>((resolve) => {
        const done = () => {
          clock.clearTimeout(timer);
          gone.signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = clock.setTimeout(done, PROBE_INTERVAL_MS);
        gone.signal.addEventListener("abort", done);
      });
    (async () => {
      while (live()) {
        await pause();
        if (!live() || !busy(session)) return;
        const answered = await control.ping(Math.max(PROBE_TIMEOUT_MS, 8 * rttMs(session)));
        if (!answered && live()) {
          session.connection.abort(0, "the client did not answer a liveness probe");
          return;
        }
      }
    })().catch(() => {}).finally(() => this.#probing.delete(session.id));
  }

  #rotate(domain: string, accept: (s: TunnelSession) => boolean): TunnelSession | undefined {
    const list = this.#byDomain.get(domain);
    if (!list || list.length === 0) return undefined;
    const start = this.#cursor.get(domain) ?? 0;
    // Suspects only when nothing else fits: a client that reconnected from a new address left
    // its old session behind, and requests routed there would wait for the probe to fail.
    for (const allowSuspect of [false, true]) {
      for (let i = 0; i < list.length; i++) {
        const index = (start + i) % list.length;
        const s = list[index];
        if (this.#dead.has(s.id) || (!allowSuspect && this.#suspect.has(s.id)) || !accept(s)) continue;
        this.#cursor.set(domain, index + 1);
        return s;
      }
      if (this.#suspect.size === 0) break;
    }
    return undefined;
  }

  /**
   * A new session of a domain arrived: the client behind an older one may have reconnected from
   * a new address (NAT rebinding, server restart seen late), leaving that one dead. Each older
   * session is routed to last and probed at once; one that does not answer is aborted, so its
   * requests fail as dropped (bodiless ones are retried on a live session) within seconds.
   */
  probeOthers(id: string): void {
    const fresh = this.#byId.get(id);
    if (!fresh) return;
    for (const s of this.list(fresh.domain)) {
      const control = s.control;
      if (s.id === id || !control?.canPing || this.#suspect.has(s.id)) continue;
      this.#suspect.add(s.id);
      control.ping(Math.max(SUSPECT_TIMEOUT_MS, 6 * rttMs(s))).then((answered) => {
        this.#suspect.delete(s.id);
        if (!answered && this.#byId.get(s.id) === s) {
          s.connection.abort(0, "a newer session arrived and this one did not answer a liveness probe");
        }
      });
    }
  }

  /** Says GOODBYE to every session of a domain (best effort), closes them, and returns how many. */
  async closeDomain(domain: string, reason: string): Promise<number> {
    const sessions = this.list(domain);
    await Promise.all(sessions.map((s) => this.#close(s, reason)));
    return sessions.length;
  }

  /** closeDomain for every domain (server shutdown). */
  async closeAll(reason: string): Promise<number> {
    const sessions = this.list();
    await Promise.all(sessions.map((s) => this.#close(s, reason)));
    return sessions.length;
  }

  async #close(session: TunnelSession, reason: string): Promise<void> {
    this.#dead.add(session.id);
    this.#emit(normalize(session.domain));
    await session.control?.goodbye(reason).catch(() => {});
    await session.connection.close(0, reason).catch(() => {});
    this.remove(session.id);
  }

  /** Calls `listener(domain, liveCount)` whenever a domain's live session count changes; returns an unsubscribe. */
  onChange(listener: SessionCountListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(domain: string): void {
    const count = this.count(domain);
    for (const l of this.#listeners) {
      try {
        l(domain, count);
      } catch {
        // A listener's failure must not break session bookkeeping.
      }
    }
  }
}
