/**
 * The DTLS layer's public face: a PSK server and a client adapter, both handing out
 * DatagramSessions. Everything else in lib/dtls is internal.
 */
export { type DtlsServer, type DtlsServerOptions, type DtlsServerStats, startDtlsServer } from "./server.ts";
export type { DtlsServerLimits } from "./limits.ts";
export { type ClientCipherSuite, connectDtls, type ConnectDtlsOptions } from "./client.ts";
export {
  DtlsAuthError,
  DtlsDecodeError,
  DtlsError,
  type DtlsErrorCode,
  DtlsHandshakeError,
  DtlsTimeoutError,
} from "./errors.ts";
export {
  type CloseReason,
  type DatagramSession,
  DatagramTooLargeError,
  type PeerAddress,
  SessionClosedError,
} from "./session.ts";
