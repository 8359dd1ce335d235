/** Transport error codes (RFC 9000 §20.1) and the errors streams reject with. */
import type { ConnectionCloseInfo } from "./types.ts";

export const TransportErrorCode = {
  NO_ERROR: 0x00,
  INTERNAL_ERROR: 0x01,
  FLOW_CONTROL_ERROR: 0x03,
  STREAM_LIMIT_ERROR: 0x04,
  STREAM_STATE_ERROR: 0x05,
  FINAL_SIZE_ERROR: 0x06,
  FRAME_ENCODING_ERROR: 0x07,
  PROTOCOL_VIOLATION: 0x0a,
} as const;

/** A violation by the peer that closes the connection with `code`. */
export class TransportError extends Error {
  constructor(readonly code: number, message: string, readonly frameType = 0) {
    super(message);
    this.name = "TransportError";
  }
}

/** A stream was reset by the peer (RESET_STREAM / STOP_SENDING) or locally; `code` is the application's. */
export class StreamResetError extends Error {
  readonly code = "STREAM_RESET";
  constructor(readonly errorCode: number, readonly remote: boolean) {
    super(`stream reset ${remote ? "by the peer" : "locally"} with code ${errorCode}`);
    this.name = "StreamResetError";
  }
}

/** The connection ended while the stream was open. */
export class ConnectionClosedError extends Error {
  readonly code = "CONNECTION_CLOSED";
  constructor(readonly info: ConnectionCloseInfo) {
    super(`connection closed (${info.kind}, code ${info.code}${info.reason ? `: ${info.reason}` : ""})`);
    this.name = "ConnectionClosedError";
  }
}
