/**
 * Typed DTLS errors. Each carries a stable `code` so callers (the tunnel client, the admin API,
 * tests) can branch on the kind of failure without parsing messages.
 */

export type DtlsErrorCode =
  | "DTLS_DECODE_ERROR"
  | "DTLS_AUTH_FAILED"
  | "DTLS_TIMEOUT"
  | "DTLS_HANDSHAKE_FAILED"
  | "DTLS_SERVER_CLOSED";

export class DtlsError extends Error {
  constructor(readonly code: DtlsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DtlsError";
  }
}

/** Bytes that do not parse as the structure expected; thrown by the pure codecs. */
export class DtlsDecodeError extends DtlsError {
  constructor(message: string) {
    super("DTLS_DECODE_ERROR", message);
    this.name = "DtlsDecodeError";
  }
}

/**
 * The server rejected the handshake's keys (decrypt_error, bad_record_mac, handshake_failure,
 * unknown_psk_identity): the identity or the key is wrong, and retrying cannot help.
 */
export class DtlsAuthError extends DtlsError {
  constructor(message: string, readonly alert?: string) {
    super("DTLS_AUTH_FAILED", message);
    this.name = "DtlsAuthError";
  }
}

/** The handshake did not complete in time (every attempt); the server may be down or unreachable. */
export class DtlsTimeoutError extends DtlsError {
  constructor(message: string, readonly attempts: number) {
    super("DTLS_TIMEOUT", message);
    this.name = "DtlsTimeoutError";
  }
}

/** The handshake failed for another reason (protocol alert, socket error) after every attempt. */
export class DtlsHandshakeError extends DtlsError {
  constructor(message: string, options?: ErrorOptions) {
    super("DTLS_HANDSHAKE_FAILED", message, options);
    this.name = "DtlsHandshakeError";
  }
}

/**
 * The TCP carrier: the server's certificate did not verify, and retrying cannot help until the
 * trust setting changes. Here rather than in tcp_client.ts so that catching it does not load
 * node:tls (issue 13).
 */
export class CarrierCertificateError extends Error {
  readonly code = "CARRIER_CERTIFICATE";
  constructor(message: string, readonly reason: string) {
    super(message);
    this.name = "CarrierCertificateError";
  }
}
