/**
 * The contract between the public fronts (HTTP/1.1 on our own parser, HTTP/2 on node:http2) and
 * the gateway: a raw request (method, request-target bytes, header lines as they came, a body
 * source, trailers) and a raw response writer. No Web Request/Response on the tunnelled path.
 */
import type { ByteSink, ByteSource, HeaderLine, RawDuplex } from "../protocol/body.ts";

export interface FrontRequest {
  method: string;
  /** The request-target exactly as sent (a byte string: raw UTF-8 stays raw); for HTTP/2, :path. */
  target: string;
  /** Header lines in order, names as sent (HTTP/2: lower case, pseudo-headers removed). */
  headers: HeaderLine[];
  /** HTTP/1.1 Host, or HTTP/2 :authority (which wins over a host header); "" when absent. */
  authority: string;
  httpVersion: "1.0" | "1.1" | "2";
  /** The peer's address (IPv4-mapped IPv6 unwrapped) and port. */
  remoteAddr: string;
  remotePort: number;
  proto: "http" | "https";
  /**
   * null when the request has no body (no Content-Length > 0 and not chunked; HTTP/2: END_STREAM
   * on the headers). Trailers arrive through the consumer's `end`.
   */
  body: ByteSource | null;
  /** Content-Length when the request declared one. */
  contentLength: number | undefined;
  /** HTTP/1.1 request with `Connection: upgrade` + `Upgrade`: the response may switch protocols. */
  upgrade: boolean;
  /** Called once if the browser goes away before the response ended (connection closed, RST_STREAM). */
  onAbort(callback: () => void): void;
}

export interface FrontResponse {
  /**
   * Sends the status line and header lines (hop-by-hop lines already removed by the caller, names
   * and order kept). The front adds only its own framing: on HTTP/1.1, `Transfer-Encoding: chunked`
   * when there is a body without Content-Length (or with trailers), `Connection: close` when it will
   * close; on HTTP/2 nothing.
   */
  head(status: number, statusText: string, headers: HeaderLine[]): void;
  /** The body, after head(). HEAD requests and 204/304 take no body bytes (the front drops them). */
  readonly body: ByteSink;
  /**
   * For an `upgrade` request whose origin answered 101: writes the 101 head and hands over the raw
   * connection (bytes after the head, both ways). HTTP/1.1 only.
   */
  switchProtocols(statusText: string, headers: HeaderLine[]): RawDuplex;
  /** True once head() was called. */
  readonly headSent: boolean;
}

/**
 * What the gateway gives the fronts. It may be async: a throw or rejection before the head went out
 * is answered 500, after it the connection (HTTP/1.1) or stream (HTTP/2) is reset.
 */
export interface FrontHandler {
  (request: FrontRequest, response: FrontResponse): void | Promise<void>;
}
