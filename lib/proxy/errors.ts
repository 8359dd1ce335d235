/**
 * Why forwarding a request through a tunnel failed. Each error carries the HTTP status the
 * front answers with and a stable `code` for the error page / JSON body.
 */
import type { TunnelErrorCode } from "../protocol/mod.ts";

/** Base of every forwarding failure. */
export class TunnelError extends Error {
  override name = "TunnelError";
  constructor(readonly status: number, readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** No response head arrived within the timeout (504). */
export class TunnelTimeoutError extends TunnelError {
  override name = "TunnelTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(504, "tunnel_timeout", `the tunnel client sent no response within ${timeoutMs} ms`);
  }
}

/**
 * The client answered with an ERROR message: its local service is unreachable or failed (502),
 * no service of the client serves the path (404), or the request could not be replayed (400).
 */
export class TunnelLocalError extends TunnelError {
  override name = "TunnelLocalError";
  constructor(readonly localCode: TunnelErrorCode, message: string) {
    super(LOCAL_STATUS[localCode], localCode, message);
  }
}

const LOCAL_STATUS: Record<TunnelErrorCode, number> = {
  local_unreachable: 502,
  local_error: 502,
  no_service: 404,
  bad_request: 400,
};

/** The stream or the connection died before the response head (502). */
export class TunnelDroppedError extends TunnelError {
  override name = "TunnelDroppedError";
  constructor(message: string, options?: ErrorOptions) {
    super(502, "tunnel_dropped", message, options);
  }
}

/** The client broke the protocol (502). */
export class TunnelProtocolError extends TunnelError {
  override name = "TunnelProtocolError";
  constructor(message: string, options?: ErrorOptions) {
    super(502, "tunnel_protocol_error", message, options);
  }
}

/** The request was aborted by the browser before the head arrived (no one is left to answer). */
export class TunnelAbortedError extends TunnelError {
  override name = "TunnelAbortedError";
  constructor() {
    super(499, "client_closed_request", "the browser went away before the response");
  }
}
