/** The transport layer's public surface: reliable multiplexed streams over a DatagramSession. */
export { Connection } from "./connection.ts";
export type { DatagramSession, DatagramSessionEnd } from "./datagram_session.ts";
export {
  type ConnectionOptions,
  INITIAL_CONNECTION_WINDOW,
  INITIAL_STREAM_WINDOW,
} from "./connection_options.ts";
export { type CongestionController, NewReno } from "./congestion.ts";
export { ConnectionClosedError, StreamResetError, TransportError, TransportErrorCode } from "./errors.ts";
export { UdpSession, type UdpSessionOptions } from "./udp_session.ts";
export type { ConnectionCloseInfo, ConnectionStats, TransportConnection, TransportStream } from "./types.ts";
