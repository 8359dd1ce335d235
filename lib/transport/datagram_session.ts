/**
 * The datagram carrier the transport runs over, declared here by its consumer: only what a connection
 * uses. DTLS sessions (lib/dtls/session.ts declares its own, richer interface for its implementations),
 * the plain UDP session and in-memory links satisfy it structurally; dtls never imports transport.
 */

/** Why the carrier ended, as much of it as the transport reports. */
export interface DatagramSessionEnd {
  code: string;
  message: string;
}

/** One datagram per send, delivered at most once, maybe out of order. */
export interface DatagramSession {
  /** Short unique id for logs. */
  readonly id: string;
  /** Largest payload `send` accepts now, in bytes. */
  readonly maxDatagramSize: number;
  /**
   * Sends one datagram. Throws DatagramTooLargeError past maxDatagramSize and SessionClosedError once
   * closed (both from lib/dtls/session.ts, the layer below, so every carrier throws the same errors).
   */
  send(data: Uint8Array): void;
  /** Sets the receiver of incoming datagrams; the receiver owns the bytes it is given. */
  onDatagram(receiver: ((data: Uint8Array) => void) | null): void;
  /** Closes the carrier; idempotent. */
  close(message?: string): void;
  /** Resolves once, when the carrier has ended. */
  readonly closed: Promise<DatagramSessionEnd>;
}
