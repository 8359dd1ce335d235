/** The local HTTP client's contract: the request it replays and the handler the answer goes to. */
import type { ByteSink, ByteSource, HeaderLine, RawDuplex } from "../protocol/body.ts";

export interface LocalRequest {
  method: string;
  /** Path and query as a byte string (one char per byte; raw UTF-8 stays raw bytes on the wire). */
  target: string;
  /**
   * Header lines to send, in order, names as given, duplicates kept; includes Host (over h2c it
   * becomes `:authority`). Hop-by-hop lines are removed by the caller, except that an `upgrade`
   * request keeps its `Upgrade` line (and `Connection: upgrade`, added here when missing).
   * Framing lines (Content-Length, Transfer-Encoding) are ignored: `contentLength` decides.
   */
  headers: HeaderLine[];
  /** The request body; its trailers arrive through the consumer's `end` (sent when chunked or h2c). */
  body: ByteSource | null;
  /** When the browser sent one: sent as Content-Length (no chunked); the body must match it. */
  contentLength?: number;
  protocol: "h1" | "h2c";
  /** An HTTP/1.1 Upgrade request (WebSocket…): a 101 answer hands over the connection. */
  upgrade?: boolean;
}

/**
 * Why a request failed before its response head: connecting failed (`local_unreachable`), the
 * request cannot be written as given (`bad_request`: a control character in the target, an invalid
 * header name or value), or anything else (`local_error`). The codes are the protocol's ERROR codes.
 */
export class LocalRequestError extends Error {
  override name = "LocalRequestError";
  constructor(
    readonly code: "local_unreachable" | "local_error" | "bad_request",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Where the answer goes. Exactly one of `head`, `upgraded` or `error` is called, at most once, and
 * none after `abort()`. Response header lines arrive as received (names' case, order, duplicates,
 * and hop-by-hop lines such as Connection/Transfer-Encoding, which the caller drops).
 */
export interface LocalResponseHandler {
  /** The final response head (1xx answers other than 101 are skipped); returns where the body goes. */
  head(status: number, statusText: string, headers: HeaderLine[]): ByteSink;
  /** A 101 answer to an `upgrade` request: the raw connection, starting with the bytes after the head. */
  upgraded(statusText: string, headers: HeaderLine[], raw: RawDuplex): void;
  error(e: LocalRequestError): void;
}

export interface LocalHttpOptions {
  /** Connecting (TCP, and TLS for https:) must finish within this; default 10 s. */
  connectTimeoutMs?: number;
  /**
   * CA certificates (PEM) trusted for https: origins instead of the process's trust store (Deno's
   * bundled roots, or the system's with DENO_TLS_CA_STORE=system; mkcert-style dev CAs live there).
   */
  ca?: string[];
}

/** A request in flight: `abort` destroys the local request and aborts a body sink handed out. */
export interface LocalExchange {
  abort(reason?: Error): void;
}
