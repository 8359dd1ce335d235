/**
 * The datagram session both DTLS sides expose, and the only thing the transport layer sees.
 * Small and transport-agnostic: an in-memory link implements it too.
 */

/** Why a session ended. `remote` is true when the peer closed or failed it. */
export interface CloseReason {
  code:
    | "closed" // close() called locally
    | "close_notify" // the peer sent close_notify
    | "alert" // a fatal alert arrived or was sent
    | "idle_timeout"
    | "socket_error"
    | "server_shutdown";
  message: string;
  remote: boolean;
}

export interface PeerAddress {
  hostname: string;
  port: number;
}

/** A datagram session: each send is one datagram (one DTLS record), delivered at most once, maybe out of order. */
export interface DatagramSession {
  /** Short unique id for logs and the admin API. */
  readonly id: string;
  /** The authenticated PSK identity (the domain). */
  readonly identity: string;
  readonly remoteAddress: PeerAddress;
  /** Largest payload `send` accepts now, in bytes. */
  readonly maxDatagramSize: number;
  /** Sends one datagram. Throws DatagramTooLargeError past maxDatagramSize, SessionClosedError once closed. */
  send(data: Uint8Array): void;
  /** Sets the receiver of incoming datagrams; the receiver owns the bytes it is given. */
  onDatagram(receiver: ((data: Uint8Array) => void) | null): void;
  /** Closes the session (close_notify to the peer); idempotent. */
  close(message?: string): void;
  /** Resolves once, when the session has ended, with the reason. */
  readonly closed: Promise<CloseReason>;
  /**
   * Optional: called on an unauthenticated hint that the peer lost this session (the DTLS
   * client's stale-session hint). Anyone on the path can forge it: probe the session, never close.
   */
  onPathHint?(listener: (() => void) | null): void;
}

export class DatagramTooLargeError extends Error {
  readonly code = "DATAGRAM_TOO_LARGE";
  constructor(readonly size: number, readonly max: number) {
    super(`datagram of ${size} bytes exceeds the session's maximum of ${max} bytes`);
    this.name = "DatagramTooLargeError";
  }
}

export class SessionClosedError extends Error {
  readonly code = "SESSION_CLOSED";
  constructor(readonly reason?: CloseReason) {
    super(`session is closed${reason ? `: ${reason.code} (${reason.message})` : ""}`);
    this.name = "SessionClosedError";
  }
}

/**
 * Where a session's datagrams go: to the receiver the transport registered, or, while it has none yet,
 * into a short queue handed over on registration (datagrams that race the connection's set-up).
 */
export class DatagramInbox {
  #receiver: ((data: Uint8Array) => void) | null = null;
  #early: Uint8Array[];

  constructor(readonly maxEarly: number, early: Uint8Array[] = []) {
    this.#early = early.slice(0, maxEarly);
  }

  /** DatagramSession.onDatagram: sets the receiver and hands it what waited. */
  set(receiver: ((data: Uint8Array) => void) | null): void {
    this.#receiver = receiver;
    if (receiver === null) return;
    const early = this.#early;
    this.#early = [];
    for (const d of early) receiver(d);
  }

  deliver(data: Uint8Array): void {
    if (this.#receiver !== null) this.#receiver(data);
    else if (this.#early.length < this.maxEarly) this.#early.push(data);
  }

  /** The session ended: nothing more is delivered or kept. */
  clear(): void {
    this.#receiver = null;
    this.#early = [];
  }
}
