/** The server's resource limits and their defaults: every table the server keeps is bounded by one of these. */
import { MAX_PLAINTEXT_LENGTH } from "./record.ts";

export interface DtlsServerLimits {
  /** Handshakes in progress from one IP address (default 8). */
  maxHandshakesPerAddress?: number;
  /**
   * Handshakes in progress in total (default 1024). When full, a new one from an address holding
   * fewer takes the place of the oldest from the address holding the most, so a flood from many
   * addresses cannot hold a legitimate client off.
   */
  maxHandshakes?: number;
  /** ClientHellos one IP address may send in a burst (default 200), before any cookie or crypto work. */
  helloBurst?: number;
  /** ClientHellos per second one IP address earns back (default 100). */
  helloPerSecond?: number;
  /** Failed handshakes one IP address may have in a burst (default 20); past it, its ClientHellos are dropped. */
  failureBurst?: number;
  /** Failed handshakes per second one IP address earns back (default 1). */
  failurePerSecond?: number;
  /** Established sessions (default 10 000). */
  maxSessions?: number;
  /** A session with no authenticated record for this long is closed (default 60 000 ms). */
  idleTimeoutMs?: number;
  /** Largest plaintext per record, i.e. the sessions' maxDatagramSize (default and maximum 16 384). */
  maxDatagramSize?: number;
  /** Largest datagram a handshake flight uses (default 1200, safe on any path). */
  handshakeMtu?: number;
  /** A handshake not finished within this is dropped (default 30 000 ms). */
  handshakeTimeoutMs?: number;
  /** Initial flight retransmission timer (default 1000 ms, RFC 6347 §4.2.4.1), doubled up to maxRetransmitMs. */
  retransmitInitialMs?: number;
  maxRetransmitMs?: number;
  /** Cookie secret rotation period (default 300 000 ms). */
  cookieRotateMs?: number;
}

/** Fills in defaults; maxDatagramSize is capped at the protocol maximum. */
export function resolveLimits(l: DtlsServerLimits = {}): Required<DtlsServerLimits> {
  return {
    maxHandshakesPerAddress: l.maxHandshakesPerAddress ?? 8,
    maxHandshakes: l.maxHandshakes ?? 1024,
    helloBurst: l.helloBurst ?? 200,
    helloPerSecond: l.helloPerSecond ?? 100,
    failureBurst: l.failureBurst ?? 20,
    failurePerSecond: l.failurePerSecond ?? 1,
    maxSessions: l.maxSessions ?? 10_000,
    idleTimeoutMs: l.idleTimeoutMs ?? 60_000,
    maxDatagramSize: Math.min(l.maxDatagramSize ?? MAX_PLAINTEXT_LENGTH, MAX_PLAINTEXT_LENGTH),
    handshakeMtu: l.handshakeMtu ?? 1200,
    handshakeTimeoutMs: l.handshakeTimeoutMs ?? 30_000,
    retransmitInitialMs: l.retransmitInitialMs ?? 1000,
    maxRetransmitMs: l.maxRetransmitMs ?? 8000,
    cookieRotateMs: l.cookieRotateMs ?? 300_000,
  };
}
